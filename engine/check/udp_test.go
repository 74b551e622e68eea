package check

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// udpEcho starts a UDP echo server on loopback; it stays silent for
// payloads starting with "quiet".
func udpEcho(t *testing.T) net.Addr {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if bytes.HasPrefix(buf[:n], []byte("quiet")) {
				continue
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	return pc.LocalAddr()
}

func TestUDP(t *testing.T) {
	echo := udpEcho(t)
	for _, tc := range []struct {
		name    string
		addr    func() net.Addr
		spec    config.UDPSpec
		ok      bool
		reason  string
		timeout time.Duration
	}{
		{"up/echo, any reply", func() net.Addr { return echo }, config.UDPSpec{Payload: []byte("ping"), RequireReply: true}, true, "", time.Second},
		{"up/pattern with wildcards", func() net.Addr { return echo },
			config.UDPSpec{Payload: []byte{0xde, 0xad, 0xbe, 0xef}, RequireReply: true, ReplyPattern: "dexx bxef"}, true, "", time.Second},
		{"up/pattern longer than reply", func() net.Addr { return echo },
			config.UDPSpec{Payload: []byte{0xde}, RequireReply: true, ReplyPattern: "de ad"}, true, "", time.Second},
		{"down/pattern mismatch", func() net.Addr { return echo },
			config.UDPSpec{Payload: []byte{0xde, 0xad}, RequireReply: true, ReplyPattern: "dexf00"}, false, "mismatch", time.Second},
		{"down/reply too short", func() net.Addr { return echo },
			config.UDPSpec{Payload: []byte{0xde, 0xad}, RequireReply: true, ReplyPattern: "dead", MinReplyLength: 3}, false, "mismatch", time.Second},
		{"up/no reply needed, silence", func() net.Addr { return echo }, config.UDPSpec{Payload: []byte("quiet")}, true, "", 300 * time.Millisecond},
		{"slow/reply needed, silence", func() net.Addr { return echo }, config.UDPSpec{Payload: []byte("quiet"), RequireReply: true}, false, "timeout", 300 * time.Millisecond},
		{"down/port unreachable", func() net.Addr { return net.UDPAddrFromAddrPort(closedPort(t, "udp")) }, config.UDPSpec{Payload: []byte("x")}, false, "refused", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			tg := &Target{Type: config.UDPCheck, Addr: addrOf(tc.addr()), Timeout: tc.timeout, UDP: &spec}
			probe(t, ProbeUDP, tg, tc.ok, tc.reason)
		})
	}
}

func TestParsePattern(t *testing.T) {
	p, err := ParsePattern("0a xB Cx")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   []byte
		want bool
	}{
		{[]byte{0x0a, 0x1b, 0xc7}, true},
		{[]byte{0x0a, 0xfb, 0xcf}, true},
		{[]byte{0x0a, 0x1c, 0xc7}, false},
		{[]byte{0x0a}, true}, // only the shorter is compared, as keepalived
		{[]byte{0x0b}, false},
	} {
		if got := p.Match(tc.in); got != tc.want {
			t.Errorf("Match(%x) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "abc", "zz", "0g"} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) accepted", bad)
		}
	}
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"0a xB Cx", "dead", "xx", "", "abc"} {
		f.Add(s, []byte{0xde, 0xad})
	}
	f.Fuzz(func(t *testing.T, s string, reply []byte) {
		p, err := ParsePattern(s)
		if err != nil {
			return
		}
		if len(p.data) != len(p.mask) {
			t.Fatal("data and mask lengths differ")
		}
		p.Match(reply)
		if !p.Match(nil) {
			t.Fatal("an empty reply compares no bytes and must match")
		}
	})
}
