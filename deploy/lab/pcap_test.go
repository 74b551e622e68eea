package lab

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"testing"
	"time"
)

// pcapFile builds a classic pcap file (microsecond or nanosecond magic,
// little- or big-endian) holding the given frames.
func pcapFile(order binary.ByteOrder, nanos bool, link uint32, at time.Time, frames ...[]byte) []byte {
	var b bytes.Buffer
	magic := uint32(0xa1b2c3d4)
	if nanos {
		magic = 0xa1b23c4d
	}
	h := make([]byte, 24)
	order.PutUint32(h[0:], magic)
	order.PutUint16(h[4:], 2)
	order.PutUint16(h[6:], 4)
	order.PutUint32(h[16:], 262144)
	order.PutUint32(h[20:], link)
	b.Write(h)
	for _, f := range frames {
		r := make([]byte, 16)
		order.PutUint32(r[0:], uint32(at.Unix()))
		frac := uint32(at.Nanosecond())
		if !nanos {
			frac /= 1000
		}
		order.PutUint32(r[4:], frac)
		order.PutUint32(r[8:], uint32(len(f)))
		order.PutUint32(r[12:], uint32(len(f)))
		b.Write(r)
		b.Write(f)
	}
	return b.Bytes()
}

// vrrp4 is an IPv4 VRRPv3 advert (RFC 9568 §5.1.1.3, §5.2) from src for vrid.
func vrrp4(src netip.Addr, vrid byte) []byte {
	ip := make([]byte, 20+12)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	ip[8], ip[9] = 255, 112
	copy(ip[12:16], src.AsSlice())
	copy(ip[16:20], []byte{224, 0, 0, 18})
	ip[20], ip[21] = 0x31, vrid
	return ip
}

func ether(proto uint16, vlan bool, payload []byte) []byte {
	f := make([]byte, 12, 18+len(payload))
	if vlan {
		f = binary.BigEndian.AppendUint16(f, 0x8100)
		f = binary.BigEndian.AppendUint16(f, 7)
	}
	f = binary.BigEndian.AppendUint16(f, proto)
	return append(f, payload...)
}

func TestPcapReader(t *testing.T) {
	src := netip.MustParseAddr("192.0.2.1")
	at := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	adv := vrrp4(src, 42)
	v6 := make([]byte, 40+8)
	v6[0] = 0x60
	binary.BigEndian.PutUint16(v6[4:], 8)
	v6[6] = 112
	ll := netip.MustParseAddr("fe80::1")
	copy(v6[8:24], ll.AsSlice())
	v6[40], v6[41] = 0x31, 7
	for _, c := range []struct {
		name  string
		order binary.ByteOrder
		nanos bool
		link  uint32
		frame func([]byte, uint16) []byte
	}{
		{"ethernet-le-us", binary.LittleEndian, false, linkEthernet, func(p []byte, proto uint16) []byte { return ether(proto, false, p) }},
		{"ethernet-vlan-be-ns", binary.BigEndian, true, linkEthernet, func(p []byte, proto uint16) []byte { return ether(proto, true, p) }},
		{"sll", binary.LittleEndian, false, linkSLL, func(p []byte, proto uint16) []byte {
			h := make([]byte, 14, 16+len(p))
			return append(binary.BigEndian.AppendUint16(h, proto), p...)
		}},
		{"raw", binary.LittleEndian, true, linkRaw, func(p []byte, _ uint16) []byte { return p }},
	} {
		t.Run(c.name, func(t *testing.T) {
			arp := c.frame(make([]byte, 28), 0x0806)
			file := pcapFile(c.order, c.nanos, c.link, at, c.frame(adv, 0x0800), arp, c.frame(v6, 0x86dd))
			r, err := newPcapReader(bytes.NewReader(file))
			if err != nil {
				t.Fatal(err)
			}
			ts, ip, err := r.next()
			if err != nil {
				t.Fatal(err)
			}
			if !ts.Equal(at) {
				t.Errorf("time %v, want %v", ts, at)
			}
			s, proto, payload, ok := ipPacket(ip)
			if !ok || s != src || proto != 112 || len(payload) != 12 || payload[1] != 42 {
				t.Errorf("IPv4 advert: src %v proto %d payload %x ok %v", s, proto, payload, ok)
			}
			if _, ip, err = r.next(); err != nil || (c.link != linkRaw && ip != nil) {
				t.Errorf("ARP frame: ip %x, err %v; want nil, nil", ip, err)
			}
			if _, ip, err = r.next(); err != nil {
				t.Fatal(err)
			}
			s, proto, payload, ok = ipPacket(ip)
			if !ok || s != ll || proto != 112 || len(payload) != 8 || payload[1] != 7 {
				t.Errorf("IPv6 advert: src %v proto %d payload %x ok %v", s, proto, payload, ok)
			}
			if _, _, err := r.next(); err != io.EOF {
				t.Errorf("after the last record: %v, want EOF", err)
			}
		})
	}
}

// Bad files are errors, never panics: a wrong magic, an unknown link type,
// a truncated record, headers shorter than they claim.
func TestPcapReaderBadInput(t *testing.T) {
	if _, err := newPcapReader(bytes.NewReader([]byte("not a pcap file at all.."))); err == nil {
		t.Error("bad magic accepted")
	}
	if _, err := newPcapReader(bytes.NewReader(pcapFile(binary.LittleEndian, false, 228+1000, time.Now()))); err == nil {
		t.Error("unknown link type accepted")
	}
	file := pcapFile(binary.LittleEndian, false, linkEthernet, time.Now(), ether(0x0800, false, vrrp4(netip.MustParseAddr("192.0.2.1"), 1)))
	r, err := newPcapReader(bytes.NewReader(file[:len(file)-5]))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.next(); err == nil {
		t.Error("truncated record read without error")
	}
	for _, b := range [][]byte{nil, {0x45}, {0x4f, 0, 0, 0}, {0x60, 0}, {0x10}} {
		if _, _, _, ok := ipPacket(b); ok {
			t.Errorf("ipPacket(%x) ok", b)
		}
	}
}
