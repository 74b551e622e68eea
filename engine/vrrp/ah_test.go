package vrrp_test

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/vrrptest"
)

// TestGoldenAH checks every advert keepalived 2.2.7 sent with auth_type AH
// (auth_pass s3cret, vrrptest/testdata/README.md): the AH header's fields,
// the ICV as we compute it, and that we build the identical packet.
func TestGoldenAH(t *testing.T) {
	key := vrrp.PassAuthData("s3cret")
	nodeA := netip.MustParseAddr("192.0.2.1")
	frames := vrrptest.Read(t, "v2-ipv4-ah.pcap")
	if n := len(frames); n < 4 || n > 5 {
		t.Fatalf("%d AH frames, want 3 or 4 at priority 150 and one at 0", n)
	}
	for _, fr := range frames {
		if fr.AH == nil {
			t.Fatalf("frame %d: no AH header", fr.Index)
		}
		if fr.IPv4.Protocol != vrrp.ProtocolAH || fr.IPv4.TTL != 255 || fr.IPv4.TOS != 0xc0 {
			t.Errorf("frame %d: proto %d TTL %d TOS %#x, want 51 255 0xc0", fr.Index, fr.IPv4.Protocol, fr.IPv4.TTL, fr.IPv4.TOS)
		}
		var h vrrp.AH
		if err := h.Parse(fr.AH); err != nil {
			t.Fatalf("frame %d: %v", fr.Index, err)
		}
		// keepalived's SPI is its source address; its sequence counts from 1.
		want := vrrp.NewAH(nodeA.As4(), uint32(fr.Index))
		want.ICV = h.ICV
		if h != want {
			t.Errorf("frame %d: AH %+v, want %+v", fr.Index, h, want)
		}
		if !vrrp.VerifyAH(key, fr.Header, fr.AH, fr.Msg, false) {
			t.Errorf("frame %d: ICV %x does not verify", fr.Index, h.ICV)
		}
		// Each input that the ICV covers matters: a wrong key, a changed
		// message, the TTL zeroed as for unicast, another IP ID.
		if vrrp.VerifyAH(vrrp.PassAuthData("s3cres"), fr.Header, fr.AH, fr.Msg, false) {
			t.Errorf("frame %d: verifies with the wrong key", fr.Index)
		}
		if vrrp.VerifyAH(key, fr.Header, fr.AH, fr.Msg, true) {
			t.Errorf("frame %d: verifies with the TTL zeroed", fr.Index)
		}
		msg := bytes.Clone(fr.Msg)
		msg[2]++
		if vrrp.VerifyAH(key, fr.Header, fr.AH, msg, false) {
			t.Errorf("frame %d: verifies with the priority changed", fr.Index)
		}
		hdr := bytes.Clone(fr.Header)
		hdr[5]++
		if vrrp.VerifyAH(key, hdr, fr.AH, fr.Msg, false) {
			t.Errorf("frame %d: verifies with the IP ID changed", fr.Index)
		}
		// Mutable fields do not matter.
		hdr = bytes.Clone(fr.Header)
		hdr[1], hdr[6], hdr[10] = 0, 0x40, 0
		if !vrrp.VerifyAH(key, hdr, fr.AH, fr.Msg, false) {
			t.Errorf("frame %d: TOS, DF or checksum changed the ICV", fr.Index)
		}

		// The message: auth type 2, its authentication field zero.
		var a vrrp.Advertisement
		if err := a.Decode(fr.Msg, vrrp.IPv4); err != nil {
			t.Fatalf("frame %d: %v", fr.Index, err)
		}
		if a.AuthType != vrrp.AuthAH || a.AuthData != [vrrp.AuthDataLen]byte{} {
			t.Errorf("frame %d: auth type %v data %x, want ah and zeros", fr.Index, a.AuthType, a.AuthData)
		}
		if !vrrp.VerifyChecksum(fr.Msg, nodeA, vrrp.GroupIPv4, vrrp.ChecksumAsV2) {
			t.Errorf("frame %d: VRRP checksum does not verify", fr.Index)
		}

		// Build the same packet: header with protocol 51 and the longer
		// total length, AH, message, then seal.
		ip := vrrp.NewIPv4Header(nodeA, vrrp.GroupIPv4, fr.IPv4.ID, vrrp.TTL, vrrp.AHLen+len(fr.Msg))
		ip.Protocol = vrrp.ProtocolAH
		pkt, err := ip.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		ah := vrrp.NewAH(nodeA.As4(), uint32(fr.Index))
		pkt, _ = ah.AppendBinary(pkt)
		a.Checksum = 0
		pkt, err = a.AppendWithChecksum(pkt, nodeA, vrrp.GroupIPv4, vrrp.ChecksumAsV2)
		if err != nil {
			t.Fatal(err)
		}
		if err := vrrp.SealAH(key, pkt, vrrp.IPv4HeaderLen, false); err != nil {
			t.Fatal(err)
		}
		wantPkt := append(append(bytes.Clone(fr.Header), fr.AH...), fr.Msg...)
		if !bytes.Equal(pkt, wantPkt) {
			t.Errorf("frame %d: built\n %x\nwant\n %x", fr.Index, pkt, wantPkt)
		}
	}
}

func TestAHParseErrors(t *testing.T) {
	var h vrrp.AH
	if err := h.Parse(make([]byte, vrrp.AHLen-1)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short: %v", err)
	}
	b := make([]byte, vrrp.AHLen)
	b[1] = 5
	if err := h.Parse(b); !errors.Is(err, vrrp.ErrAH) {
		t.Errorf("payload length 5: %v", err)
	}
	if vrrp.VerifyAH([8]byte{}, make([]byte, 19), b, nil, false) {
		t.Error("a 19-byte IP header verified")
	}
	if vrrp.VerifyAH([8]byte{}, make([]byte, 20), b, make([]byte, 2000), false) {
		t.Error("an oversized message verified")
	}
	if err := vrrp.SealAH([8]byte{}, make([]byte, 30), 20, false); !errors.Is(err, vrrp.ErrAH) {
		t.Errorf("SealAH on a short packet: %v", err)
	}
}
