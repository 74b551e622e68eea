package notify

import (
	"net/netip"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

func TestFormat(t *testing.T) {
	v4 := &config.VirtualServer{Addr: netip.MustParseAddr("192.0.2.1"), Port: 80, Protocol: "TCP"}
	v6 := &config.VirtualServer{Addr: netip.MustParseAddr("2001:db8::1"), Port: 53, Protocol: "UDP"}
	fwm := &config.VirtualServer{FWMark: 7}
	grp := &config.VirtualServer{Group: "web", Port: 443}
	rs := &config.RealServer{Addr: netip.MustParseAddr("198.51.100.1")}
	for _, tc := range []struct{ got, want string }{
		{string(vrrpLine(false, "VI_1", "MASTER", 100)), "INSTANCE \"VI_1\" MASTER 100\n"},
		{string(vrrpLine(true, "G1", "BACKUP", 0)), "GROUP \"G1\" BACKUP 0\n"},
		{string(vsLine(formatVS(v4), true)), "VS [192.0.2.1]:tcp:80 UP\n"},
		{string(rsLine(formatRS(v4, rs), formatVS(v4), false)), "RS [198.51.100.1]:tcp:80 [192.0.2.1]:tcp:80 DOWN\n"},
		{formatVS(v6), "[2001:db8::1]:udp:53"},
		{formatRS(v6, rs), "[198.51.100.1]:udp:53"},
		{formatVS(fwm), "FWM 7"},
		{formatRS(fwm, &config.RealServer{Addr: netip.MustParseAddr("198.51.100.2"), Port: 80}), "[198.51.100.2]:none:80"},
		{formatVS(grp), "[web]:443"},
		{instanceSubject("lb1", "VI_1", vrrp.StateMaster), "[lb1] VRRP Instance VI_1 - Entering MASTER state"},
		{instanceSubject("lb1", "VI_1", vrrp.StateStop), "[lb1] VRRP Instance VI_1 - Stopping"},
		{groupSubject("lb1", "G1", vrrp.StateFault), "[lb1] VRRP Group G1 - Entering FAULT state"},
		{instanceBody(vrrp.StateFault), "=> VRRP Instance is no longer owning VRRP VIPs <="},
		{groupBody(vrrp.StateStop), "=> All VRRP group instances are now stopping <="},
		{rsSubject("lb1", "[198.51.100.1]:tcp:80", "[192.0.2.1]:tcp:80", true), "[lb1] Realserver [198.51.100.1]:tcp:80 of virtual server [192.0.2.1]:tcp:80 - UP"},
		{vsSubject("lb1", "FWM 7", false), "[lb1] Virtualserver FWM 7 - DOWN"},
		{rsBody("HTTP_GET", true), "=> CHECK succeed on service <="},
		{rsBody("TCP_CHECK", false), "=> TCP CHECK failed on service <="},
		{vsBody(false, true, 3, 1, 4), "=> Gained quorum 3+1=4 <= 4 <="},
		{vsBody(false, false, 3, 1, 1), "=> Lost quorum 3+1=2 <= 1 <="},
		{vsBody(true, false, 3, 1, 0), "=> Starting with quorum down 3+1=4 <= 0 <="},
		{mailDate(time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", -5*3600))), "Fri, 02 Jan 2026 03:04:05 -0500"},
		{oneLine("a\r\nBcc: x"), "a  Bcc: x"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
