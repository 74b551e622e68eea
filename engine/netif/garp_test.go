package netif_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"
	"github.com/mdlayher/ndp"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/vrrp/vrrptest"
)

// readPcap returns every frame of a pcap file.
func readPcap(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return frames
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, bytes.Clone(data))
	}
}

// vectorPath is one of keepalived 2.2.7's own captures (vrrptest.Dir).
func vectorPath(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(vrrptest.Dir(t), name)
}

// isGARP and isNA pick keepalived's announcements out of a capture.
func isGARP(f []byte) bool { return len(f) >= 42 && f[12] == 0x08 && f[13] == 0x06 }
func isNA(f []byte) bool {
	return len(f) >= 86 && f[12] == 0x86 && f[13] == 0xdd && f[20] == 58 && f[54] == 136
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestFramesMatchKeepalived builds every announcement in keepalived's
// captures and compares byte for byte.
func TestFramesMatchKeepalived(t *testing.T) {
	n := 0
	for _, file := range []string{"v2-ipv4-noauth.pcap", "v2-ipv4-pass.pcap", "v3-ipv4.pcap", "v3-ipv4-unicast.pcap"} {
		for _, f := range readPcap(t, vectorPath(t, file)) {
			// Only gratuitous requests: sender IP = target IP (the unicast
			// capture also holds the kernel's own ARP for the peer).
			if !isGARP(f) || f[21] != 1 || !bytes.Equal(f[28:32], f[38:42]) {
				continue
			}
			mac := net.HardwareAddr(f[6:12])
			vip := netip.AddrFrom4([4]byte(f[28:32]))
			if got := netif.AppendGARP(nil, mac, vip); !bytes.Equal(got, f[:netif.GARPLen]) {
				t.Errorf("%s: GARP for %s\n got %x\nwant %x", file, vip, got, f[:netif.GARPLen])
			}
			n++
		}
	}
	for _, f := range readPcap(t, vectorPath(t, "v3-ipv6.pcap")) {
		if !isNA(f) {
			continue
		}
		mac := net.HardwareAddr(f[6:12])
		vip := netip.AddrFrom16([16]byte(f[22:38]))
		router := f[58]&0x80 != 0
		if got := netif.AppendUnsolicitedNA(nil, mac, vip, router); !bytes.Equal(got, f[:netif.NALen]) {
			t.Errorf("NA for %s\n got %x\nwant %x", vip, got, f[:netif.NALen])
		}
		n++
	}
	// 5 GARPs per VIP in each IPv4 capture (1+2+3+1 VIPs), 5 NAs per IPv6 VIP (2).
	if n != 5*(1+2+3+1)+5*2 {
		t.Errorf("compared %d announcements, want 45", n)
	}
}

func TestFrameFormat(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0, 0x5e, 0, 0x01, 0x2a}
	// Expected bytes written out from RFC 826 and reference §2.6.
	want := mustHex("ffffffffffff" + "02005e00012a" + "0806" +
		"0001" + "0800" + "06" + "04" + "0001" +
		"02005e00012a" + "c0000264" + "ffffffffffff" + "c0000264")
	if got := netif.AppendGARP(nil, mac, netip.MustParseAddr("192.0.2.100")); !bytes.Equal(got, want) {
		t.Errorf("GARP\n got %x\nwant %x", got, want)
	}

	for _, router := range []bool{false, true} {
		vip := netip.MustParseAddr("2001:db8::100")
		b := netif.AppendUnsolicitedNA(nil, mac, vip, router)
		if len(b) != netif.NALen {
			t.Fatalf("NA length %d", len(b))
		}
		// An independent parser (mdlayher/ndp) reads the same fields.
		m, err := ndp.ParseMessage(b[54:])
		if err != nil {
			t.Fatal(err)
		}
		na, ok := m.(*ndp.NeighborAdvertisement)
		if !ok {
			t.Fatalf("parsed %T", m)
		}
		if na.TargetAddress != vip || !na.Override || na.Solicited || na.Router != router {
			t.Errorf("NA %+v (router %t)", na, router)
		}
		if len(na.Options) != 1 {
			t.Fatalf("options %+v", na.Options)
		}
		lla, ok := na.Options[0].(*ndp.LinkLayerAddress)
		if !ok || lla.Direction != ndp.Target || !bytes.Equal(lla.Addr, mac) {
			t.Errorf("option %+v", na.Options[0])
		}
	}
}
