package notify

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// sendLowerAdvert sends one VRRPv3 advert for vrid at prio from 192.0.2.2
// out of ifname inside the named namespace, carrying vip, so the master
// there hears a lower priority.
func sendLowerAdvert(t *testing.T, ns, ifname string, vrid, prio int, interval time.Duration, vip netip.Addr) {
	t.Helper()
	src, dst := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("224.0.0.18")
	a := vrrp.Advertisement{Version: vrrp.Version3, Type: vrrp.TypeAdvertisement, VRID: uint8(vrid), Priority: uint8(prio),
		Family: vrrp.IPv4, Addresses: []netip.Addr{vip}}
	if err := a.SetInterval(interval); err != nil {
		t.Fatal(err)
	}
	msg, err := a.AppendWithChecksum(nil, src, dst, vrrp.ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	ih := vrrp.NewIPv4Header(src, dst, 1, 255, len(msg))
	pkt, err := ih.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	pkt = append(pkt, msg...)

	if err := doInNS(t, ns, func() error {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		if err := syscall.SetsockoptString(fd, syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, ifname); err != nil {
			return err
		}
		return syscall.Sendto(fd, pkt, 0, &syscall.SockaddrInet4{Addr: dst.As4()})
	}); err != nil {
		t.Fatalf("sending the lower-priority advert: %v", err)
	}
}
