package lab

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// pcapReader reads the classic pcap files tcpdump -w writes (not pcapng):
// just enough to find IP packets in a capture. It replaces gopacket in the
// lab so that the agent binary, which carries the lab for `keepwatch lab`,
// does not pay gopacket's package init: its layers package fills 65,536-
// entry tables at start-up, about 5 MiB of resident memory in every agent
// (issue 12).
type pcapReader struct {
	r     *bufio.Reader
	order binary.ByteOrder
	nanos bool
	link  uint32
	hdr   [16]byte
	buf   []byte
}

// Link types (tcpdump.org/linktypes.html) the reader understands.
const (
	linkEthernet = 1
	linkRaw      = 101
	linkSLL      = 113
	linkSLL2     = 276
)

func newPcapReader(r io.Reader) (*pcapReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var h [24]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, fmt.Errorf("pcap header: %w", err)
	}
	p := &pcapReader{r: br}
	switch {
	case binary.LittleEndian.Uint32(h[:4]) == 0xa1b2c3d4:
		p.order = binary.LittleEndian
	case binary.BigEndian.Uint32(h[:4]) == 0xa1b2c3d4:
		p.order = binary.BigEndian
	case binary.LittleEndian.Uint32(h[:4]) == 0xa1b23c4d:
		p.order, p.nanos = binary.LittleEndian, true
	case binary.BigEndian.Uint32(h[:4]) == 0xa1b23c4d:
		p.order, p.nanos = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("not a pcap file (magic %x)", h[:4])
	}
	p.link = p.order.Uint32(h[20:24]) & 0x0fffffff
	switch p.link {
	case linkEthernet, linkRaw, linkSLL, linkSLL2:
	default:
		return nil, fmt.Errorf("pcap link type %d not supported", p.link)
	}
	return p, nil
}

// next returns the next packet's capture time and, if it is IPv4 or IPv6,
// the IP packet (header and payload; nil for other packets). io.EOF at the
// end; a truncated tail is also an error.
func (p *pcapReader) next() (t time.Time, ip []byte, err error) {
	if _, err := io.ReadFull(p.r, p.hdr[:]); err != nil {
		return t, nil, err
	}
	sec, frac := p.order.Uint32(p.hdr[0:4]), p.order.Uint32(p.hdr[4:8])
	n := p.order.Uint32(p.hdr[8:12])
	if n > 1<<18 {
		return t, nil, errors.New("pcap record too long")
	}
	if !p.nanos {
		frac *= 1000
	}
	t = time.Unix(int64(sec), int64(frac))
	if cap(p.buf) < int(n) {
		p.buf = make([]byte, n)
	}
	data := p.buf[:n]
	if _, err := io.ReadFull(p.r, data); err != nil {
		return t, nil, err
	}
	var proto uint16
	switch p.link {
	case linkEthernet:
		if len(data) < 14 {
			return t, nil, nil
		}
		proto, data = binary.BigEndian.Uint16(data[12:14]), data[14:]
		for (proto == 0x8100 || proto == 0x88a8) && len(data) >= 4 { // 802.1Q/802.1ad tags
			proto, data = binary.BigEndian.Uint16(data[2:4]), data[4:]
		}
	case linkSLL:
		if len(data) < 16 {
			return t, nil, nil
		}
		proto, data = binary.BigEndian.Uint16(data[14:16]), data[16:]
	case linkSLL2:
		if len(data) < 20 {
			return t, nil, nil
		}
		proto, data = binary.BigEndian.Uint16(data[0:2]), data[20:]
	case linkRaw:
		if len(data) > 0 {
			switch data[0] >> 4 {
			case 4:
				proto = 0x0800
			case 6:
				proto = 0x86dd
			}
		}
	}
	if proto != 0x0800 && proto != 0x86dd {
		return t, nil, nil
	}
	return t, data, nil
}

// ipPacket is the source, protocol and payload of an IPv4 or IPv6 packet
// (RFC 791 §3.1, RFC 8200 §3; IPv6 extension headers are not followed,
// VRRP adverts carry none). ok is false for anything malformed.
func ipPacket(b []byte) (src netip.Addr, proto uint8, payload []byte, ok bool) {
	if len(b) < 1 {
		return src, 0, nil, false
	}
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return src, 0, nil, false
		}
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if total < ihl || total > len(b) {
			total = len(b)
		}
		return netip.AddrFrom4([4]byte(b[12:16])), b[9], b[ihl:total], true
	case 6:
		if len(b) < 40 {
			return src, 0, nil, false
		}
		end := 40 + int(binary.BigEndian.Uint16(b[4:6]))
		if end > len(b) {
			end = len(b)
		}
		return netip.AddrFrom16([16]byte(b[8:24])), b[6], b[40:end], true
	}
	return src, 0, nil, false
}
