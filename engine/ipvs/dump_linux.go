package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TableReader is an optional fast path of a Kernel: it reads the whole
// table itself. Read uses it when present.
type TableReader interface {
	ReadTable(keep func(Key) bool) ([]Service, error)
}

var _ TableReader = (*Handle)(nil)

// ReadTable implements TableReader with the 64-bit counters the kernel
// sends beside the 32-bit ones moby/ipvs reads (IPVS_SVC_ATTR_STATS64,
// IPVS_DEST_ATTR_STATS64, Linux 4.1+): packet and connection counts of a
// busy service pass 2^32 within hours.
func (h *Handle) ReadTable(keep func(Key) bool) ([]Service, error) {
	return h.batch.readTable(keep)
}

const (
	cmdGetService = 4
	cmdGetDest    = 8

	svcStats   = 10
	svcStats64 = 12

	dstActiveConns = 7
	dstInactConns  = 8
	dstStats       = 10
	dstStats64     = 12 // before TUN_TYPE (13), which came later

	statConns    = 1
	statInPkts   = 2
	statOutPkts  = 3
	statInBytes  = 4
	statOutBytes = 5

	nlaTypeMask = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
)

func (c *batchConn) readTable(keep func(Key) bool) ([]Service, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Service
	err := c.dump(cmdGetService, nil, func(attrs []byte) error {
		s, err := parseService(attrs)
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ipvs: list services: %w", err)
	}
	for i := range out {
		s := &out[i]
		if keep != nil && !keep(s.Key) {
			continue
		}
		req := appendServiceID(nil, s)
		s.Destinations = []Destination{}
		err := c.dump(cmdGetDest, req, func(attrs []byte) error {
			d, err := parseDestination(attrs)
			if err != nil {
				return err
			}
			s.Destinations = append(s.Destinations, d)
			return nil
		})
		if errors.Is(err, unix.ESRCH) {
			s.Destinations = nil // deleted since the list
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ipvs: list destinations of %s: %w", s.Key, err)
		}
	}
	return out, nil
}

// appendServiceID appends the nested service attribute naming s.
func appendServiceID(b []byte, s *Service) []byte {
	nest := len(b)
	b = appendAttr(b, attrService, nil)
	b = appendAttr(b, svcAF, binary.NativeEndian.AppendUint16(nil, af(s.Family)))
	if s.FWMark != 0 {
		b = appendAttr(b, svcFWMark, binary.NativeEndian.AppendUint32(nil, s.FWMark))
	} else {
		b = appendAttr(b, svcProtocol, binary.NativeEndian.AppendUint16(nil, uint16(s.Protocol)))
		b = appendAttr(b, svcAddr, s.Addr.AsSlice())
		b = appendAttr(b, svcPort, binary.BigEndian.AppendUint16(nil, s.Port))
	}
	binary.NativeEndian.PutUint16(b[nest:], uint16(len(b)-nest))
	return b
}

// dump sends one dump request and calls each with the payload of the
// single nested attribute (service, destination or daemon) of every reply.
func (c *batchConn) dump(cmd uint8, attrs []byte, each func([]byte) error) error {
	c.seq++
	seq := c.seq
	b := c.buf[:0]
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint16(b, c.family)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, cmd, ipvsGenlVersion, 0, 0)
	b = append(b, attrs...)
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	c.buf = b
	if err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	var failed error
	for {
		n, _, err := unix.Recvfrom(c.fd, c.rbuf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("netlink receive: %w", err)
		}
		done, err := walkDump(c.rbuf[:n], seq, each)
		if err != nil && failed == nil {
			failed = err // keep reading to the end of this dump
		}
		if done {
			return failed
		}
	}
}

// walkDump handles one datagram of a dump reply; done reports its end.
func walkDump(b []byte, seq uint32, each func([]byte) error) (done bool, err error) {
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return true, errors.New("netlink: truncated message")
		}
		typ := binary.NativeEndian.Uint16(b[4:6])
		msg := b[:l]
		b = b[min(nlAlign(l), len(b)):]
		if binary.NativeEndian.Uint32(msg[8:12]) != seq {
			continue // an answer to an earlier request
		}
		switch typ {
		case unix.NLMSG_DONE:
			return true, err
		case unix.NLMSG_ERROR:
			if len(msg) < unix.NLMSG_HDRLEN+4 {
				return true, errors.New("netlink: short error message")
			}
			if code := int32(binary.NativeEndian.Uint32(msg[16:20])); code != 0 {
				return true, unix.Errno(-code)
			}
			return true, err
		}
		// genlmsghdr, then one nested attribute holding the object.
		body := msg[unix.NLMSG_HDRLEN:]
		if len(body) < 4 {
			continue
		}
		walkAttrs(body[4:], func(typ uint16, v []byte) {
			if (typ == attrService || typ == attrDest || typ == attrDaemon) && err == nil {
				err = each(v)
			}
		})
	}
	return false, err
}

// walkAttrs calls f for each well-formed netlink attribute in b.
func walkAttrs(b []byte, f func(typ uint16, v []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < 4 || l > len(b) {
			return
		}
		f(binary.NativeEndian.Uint16(b[2:4])&nlaTypeMask, b[4:l])
		b = b[min(nlAlign(l), len(b)):]
	}
}

func u16(v []byte) uint16 {
	if len(v) < 2 {
		return 0
	}
	return binary.NativeEndian.Uint16(v)
}

func u32(v []byte) uint32 {
	if len(v) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(v)
}

func be16(v []byte) uint16 {
	if len(v) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(v)
}

// parseStats reads a STATS (32-bit counts) or STATS64 nest into c.
func parseStats(v []byte, wide bool, c *Counters) {
	walkAttrs(v, func(typ uint16, v []byte) {
		var x uint64
		switch {
		case wide && len(v) >= 8:
			x = binary.NativeEndian.Uint64(v)
		case !wide && (typ == statInBytes || typ == statOutBytes) && len(v) >= 8:
			x = binary.NativeEndian.Uint64(v)
		default:
			x = uint64(u32(v))
		}
		switch typ {
		case statConns:
			c.Connections = x
		case statInPkts:
			c.PacketsIn = x
		case statOutPkts:
			c.PacketsOut = x
		case statInBytes:
			c.BytesIn = x
		case statOutBytes:
			c.BytesOut = x
		}
	})
}

func addrFrom(v []byte, fam uint16) netip.Addr {
	switch {
	case fam == afInet && len(v) >= 4:
		return netip.AddrFrom4([4]byte(v[:4]))
	case fam == afInet6 && len(v) >= 16:
		return netip.AddrFrom16([16]byte(v[:16]))
	}
	return netip.Addr{}
}

// parseService reads a service nest as the kernel fills it
// (ip_vs_genl_fill_service); it never panics on short or odd input.
func parseService(b []byte) (Service, error) {
	var s Service
	var fam uint16
	var addr []byte
	var flags, timeout, netmask uint32
	var stats, stats64 []byte
	walkAttrs(b, func(typ uint16, v []byte) {
		switch typ {
		case svcAF:
			fam = u16(v)
		case svcProtocol:
			s.Protocol = Protocol(u16(v))
		case svcAddr:
			addr = v
		case svcPort:
			s.Port = be16(v)
		case svcFWMark:
			s.FWMark = u32(v)
		case svcSchedName:
			s.Scheduler = Scheduler(cstring(v))
		case svcPEName:
			s.PersistenceEngine = cstring(v)
		case svcFlags:
			flags = u32(v)
		case svcTimeout:
			timeout = u32(v)
		case svcNetmask:
			netmask = u32(v)
		case svcStats:
			stats = v
		case svcStats64:
			stats64 = v
		}
	})
	if fam != afInet && fam != afInet6 {
		return s, fmt.Errorf("service with address family %d", fam)
	}
	s.Family = vrrp.IPv4
	if fam == afInet6 {
		s.Family = vrrp.IPv6
	}
	if s.FWMark != 0 {
		s.Protocol, s.Port = 0, 0
	} else {
		s.Addr = addrFrom(addr, fam)
	}
	// Decode flags, timeout and netmask the way kernelService encodes them.
	s.Flags = Flags(flags) &^ (flagHashed | flagPersistent)
	if Flags(flags)&flagPersistent != 0 {
		s.Timeout = time.Duration(timeout) * time.Second
	}
	if s.Family == vrrp.IPv6 {
		s.Granularity = int(netmask)
	} else {
		var m [4]byte
		binary.NativeEndian.PutUint32(m[:], netmask)
		s.Granularity = maskBits(m)
	}
	if s.Family == vrrp.IPv4 && s.Granularity == 32 || s.Granularity == 128 {
		s.Granularity = 0
	}
	if stats64 != nil {
		parseStats(stats64, true, &s.Stats)
	} else if stats != nil {
		parseStats(stats, false, &s.Stats)
	}
	return s, nil
}

// parseDestination reads a destination nest (ip_vs_genl_fill_dest).
func parseDestination(b []byte) (Destination, error) {
	var d Destination
	var fam uint16
	var addr, stats, stats64 []byte
	walkAttrs(b, func(typ uint16, v []byte) {
		switch typ {
		case dstAddr:
			addr = v
		case dstPort:
			d.Port = be16(v)
		case dstFwdMethod:
			d.Forward = Forward(u32(v) & 0x7)
		case dstWeight:
			d.Weight = int(u32(v))
		case dstUThresh:
			d.UpperThreshold = u32(v)
		case dstLThresh:
			d.LowerThreshold = u32(v)
		case dstActiveConns:
			d.Stats.ActiveConnections = int(u32(v))
		case dstInactConns:
			d.Stats.InactiveConnections = int(u32(v))
		case dstAF:
			fam = u16(v)
		case dstStats:
			stats = v
		case dstStats64:
			stats64 = v
		case dstTunType:
			if len(v) >= 1 {
				d.TunnelType = TunnelType(v[0])
			}
		case dstTunPort:
			d.TunnelPort = be16(v)
		case dstTunFlags:
			d.TunnelFlags = TunnelFlags(u16(v))
		}
	})
	if fam == 0 { // kernels before 3.18 do not send it
		fam = afInet6
		if len(addr) >= 16 && isZero(addr[4:16]) {
			fam = afInet
		}
	}
	d.Addr = addrFrom(addr, fam)
	if !d.Addr.IsValid() {
		return d, fmt.Errorf("destination with address family %d and %d address bytes", fam, len(addr))
	}
	if stats64 != nil {
		parseStats(stats64, true, &d.Stats)
	} else if stats != nil {
		parseStats(stats, false, &d.Stats)
	}
	return d, nil
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func cstring(v []byte) string {
	for i, c := range v {
		if c == 0 {
			return string(v[:i])
		}
	}
	return string(v)
}

func maskBits(m [4]byte) int {
	n := 0
	for _, x := range m {
		for bit := 7; bit >= 0 && x&(1<<bit) != 0; bit-- {
			n++
		}
		if x != 0xff {
			break
		}
	}
	return n
}
