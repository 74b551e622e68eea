package netif

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FuzzParse4 feeds arbitrary bytes to the IPv4 receive parser: whatever a
// raw socket hands over must never panic, and what it accepts must split
// the packet into header and message exactly.
func FuzzParse4(f *testing.F) {
	// keepalived's v3 advert (reference §2.2) and broken variants.
	adv := []byte{0x45, 0xc0, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0x18, 0x90, 0xc0, 0x00, 0x02, 0x0a,
		0xe0, 0x00, 0x00, 0x12, 0x31, 0x34, 0x96, 0x01, 0x00, 0x32, 0xd3, 0x35, 0xc0, 0x00, 0x02, 0xc8}
	f.Add(adv)
	f.Add(adv[:20])
	f.Add(adv[:21])
	f.Add([]byte{0x4f})
	f.Add([]byte{0x46, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x60, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if !ParseIPv4(&p, b) {
			return
		}
		if len(p.IPHeader) < 20 || len(p.IPHeader)+len(p.AH)+len(p.VRRP) != len(b) {
			t.Fatalf("header %d + AH %d + message %d != %d", len(p.IPHeader), len(p.AH), len(p.VRRP), len(b))
		}
		if (p.AH != nil) != (b[9] == ProtocolAH) || len(p.AH) > ahLen || (p.AH != nil && len(p.VRRP) > 0 && len(p.AH) != ahLen) {
			t.Fatalf("protocol %d: AH %d bytes, message %d", b[9], len(p.AH), len(p.VRRP))
		}
		_ = p.VRID()
	})
}

// FuzzParseControl feeds arbitrary control-message bytes to the IPv6
// ancillary-data parser.
func FuzzParseControl(f *testing.F) {
	hop := make([]byte, unix.CmsgSpace(4))
	binary.NativeEndian.PutUint64(hop, uint64(unix.CmsgLen(4)))
	binary.NativeEndian.PutUint32(hop[8:], unix.IPPROTO_IPV6)
	binary.NativeEndian.PutUint32(hop[12:], unix.IPV6_HOPLIMIT)
	binary.NativeEndian.PutUint32(hop[16:], 255)
	f.Add(hop)
	f.Add(hop[:10])
	f.Add(append(hop, hop...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 0 {
			// Control messages are 8-byte aligned in the socket's buffer.
			buf := make([]uint64, (len(b)+7)/8)
			al := unsafeBytes(buf)[:len(b)]
			copy(al, b)
			var p Packet
			parseControl(&p, al)
		}
	})
}

func unsafeBytes(u []uint64) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&u[0])), len(u)*8)
}
