package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

// Handle is the kernel's IPVS through generic netlink: moby/ipvs for reads
// and single operations, plus a batching path (ApplyBatch) that sends many
// requests per system call. Open returns one.
type Handle struct {
	*ipvs.Handle
	batch *batchConn
}

var (
	_ Kernel  = (*Handle)(nil)
	_ Batcher = (*Handle)(nil)
)

// Close releases both netlink sockets.
func (h *Handle) Close() {
	h.Handle.Close()
	h.batch.close()
}

// ApplyBatch implements Batcher.
func (h *Handle) ApplyBatch(ops []Op) []error { return h.batch.apply(ops) }

// Batcher is an optional fast path of a Kernel: it applies ops in order and
// returns one error per op (nil for success). Apply uses it when present.
type Batcher interface {
	ApplyBatch(ops []Op) []error
}

// The IPVS generic netlink interface (include/uapi/linux/ip_vs.h).
const (
	ipvsGenlVersion = 1

	cmdNewService = 1
	cmdSetService = 2
	cmdDelService = 3
	cmdNewDest    = 5
	cmdSetDest    = 6
	cmdDelDest    = 7

	attrService = 1
	attrDest    = 2

	svcAF        = 1
	svcProtocol  = 2
	svcAddr      = 3
	svcPort      = 4
	svcFWMark    = 5
	svcSchedName = 6
	svcFlags     = 7
	svcTimeout   = 8
	svcNetmask   = 9
	svcPEName    = 11

	dstAddr      = 1
	dstPort      = 2
	dstFwdMethod = 3
	dstWeight    = 4
	dstUThresh   = 5
	dstLThresh   = 6
	dstAF        = 11
	dstTunType   = 13 // u8, Linux 5.2+
	dstTunPort   = 14 // be16
	dstTunFlags  = 15 // u16, Linux 5.3+

	// batchSize bounds one sendmsg (about 120 bytes a request, well under
	// the default socket send buffer) and the error messages a batch can
	// queue on our socket (each carries its request back).
	batchSize = 256
)

// batchConn is a generic netlink socket for pipelined IPVS requests.
// ipvsadm and moby/ipvs wait for each request's ack before sending the next:
// three system calls per operation. This sends up to batchSize requests in
// one sendmsg, asking for an ack only on the last. Generic netlink handles a
// buffer's messages one after the other, synchronously in the sender's
// sendmsg (netlink_rcv_skb, genl_rcv), and reports a failed request with an
// error message even without NLM_F_ACK; so once the last request's ack is
// read, every earlier failure has been queued before it, and a request
// without a message succeeded. Two system calls per batch.
type batchConn struct {
	mu     sync.Mutex
	fd     int
	family uint16
	seq    uint32
	buf    []byte
	rbuf   []byte
}

func newBatchConn(family uint16) (*batchConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// Room for every ack of a batch with margin; best effort.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	// Bound a wait for acks so a lost ack cannot hang the reconciler.
	tv := unix.Timeval{Sec: 5}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return &batchConn{fd: fd, family: family, rbuf: make([]byte, 1<<16)}, nil
}

func (c *batchConn) close() {
	if c != nil {
		unix.Close(c.fd)
	}
}

func (c *batchConn) apply(ops []Op) []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := make([]error, len(ops))
	for start := 0; start < len(ops); start += batchSize {
		end := min(start+batchSize, len(ops))
		c.round(ops[start:end], errs[start:end])
	}
	return errs
}

// round sends ops as one buffer and fills errs from their acks.
func (c *batchConn) round(ops []Op, errs []error) {
	c.buf = c.buf[:0]
	first := c.seq + 1
	for i := range ops {
		c.seq++
		c.buf = appendRequest(c.buf, c.family, c.seq, &ops[i], i == len(ops)-1)
	}
	if err := unix.Sendto(c.fd, c.buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("netlink send: %w", err)
		}
		return
	}
	last := len(ops) - 1
	seen := make([]bool, len(ops))
	for !seen[last] {
		n, _, err := unix.Recvfrom(c.fd, c.rbuf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			// Outcomes unknown: report them all; the reconciler goes
			// stale and re-reads the kernel.
			for i := range errs {
				if !seen[i] {
					errs[i] = fmt.Errorf("netlink receive: %w", err)
				}
			}
			return
		}
		b := c.rbuf[:n]
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				break
			}
			typ := binary.NativeEndian.Uint16(b[4:6])
			seq := binary.NativeEndian.Uint32(b[8:12])
			i := int(seq - first)
			if typ == unix.NLMSG_ERROR && l >= unix.NLMSG_HDRLEN+4 && i >= 0 && i < len(ops) && !seen[i] {
				seen[i] = true
				if code := int32(binary.NativeEndian.Uint32(b[16:20])); code != 0 {
					errs[i] = unix.Errno(-code)
				}
			}
			b = b[min(nlAlign(l), len(b)):]
		}
	}
}

func nlAlign(n int) int { return (n + 3) &^ 3 }

// appendRequest appends one IPVS request for o, asking for an ack if ack.
func appendRequest(b []byte, family uint16, seq uint32, o *Op, ack bool) []byte {
	var cmd uint8
	switch o.Kind {
	case AddService:
		cmd = cmdNewService
	case UpdateService:
		cmd = cmdSetService
	case DelService:
		cmd = cmdDelService
	case AddDestination:
		cmd = cmdNewDest
	case UpdateDestination:
		cmd = cmdSetDest
	case DelDestination:
		cmd = cmdDelDest
	}
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0) // length, patched below
	b = binary.NativeEndian.AppendUint16(b, family)
	flags := uint16(unix.NLM_F_REQUEST)
	if ack {
		flags |= unix.NLM_F_ACK
	}
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, cmd, ipvsGenlVersion, 0, 0)

	s := &o.Service
	full := o.Kind == AddService || o.Kind == UpdateService
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
	if full {
		ks := kernelService(s) // flags, timeout and netmask exactly as moby/ipvs sends them
		b = appendAttr(b, svcSchedName, append([]byte(ks.SchedName), 0))
		if ks.PEName != "" {
			b = appendAttr(b, svcPEName, append([]byte(ks.PEName), 0))
		}
		fl := binary.NativeEndian.AppendUint32(nil, ks.Flags)
		b = appendAttr(b, svcFlags, binary.NativeEndian.AppendUint32(fl, 0xffffffff))
		b = appendAttr(b, svcTimeout, binary.NativeEndian.AppendUint32(nil, ks.Timeout))
		b = appendAttr(b, svcNetmask, binary.NativeEndian.AppendUint32(nil, ks.Netmask))
	}
	binary.NativeEndian.PutUint16(b[nest:], uint16(len(b)-nest))

	if o.Kind >= DelDestination {
		d := &o.Dest
		nest = len(b)
		b = appendAttr(b, attrDest, nil)
		b = appendAttr(b, dstAddr, d.Addr.AsSlice())
		b = appendAttr(b, dstPort, binary.BigEndian.AppendUint16(nil, d.Port))
		fam := uint16(afInet)
		if d.Addr.Is6() {
			fam = afInet6
		}
		b = appendAttr(b, dstAF, binary.NativeEndian.AppendUint16(nil, fam))
		if o.Kind != DelDestination {
			b = appendAttr(b, dstFwdMethod, binary.NativeEndian.AppendUint32(nil, uint32(d.Forward)))
			b = appendAttr(b, dstWeight, binary.NativeEndian.AppendUint32(nil, uint32(d.Weight)))
			b = appendAttr(b, dstUThresh, binary.NativeEndian.AppendUint32(nil, d.UpperThreshold))
			b = appendAttr(b, dstLThresh, binary.NativeEndian.AppendUint32(nil, d.LowerThreshold))
			// Only a tunnel's own attributes, so a kernel older than the
			// attributes (which rejects unknown ones) still takes every
			// other destination.
			if d.Forward == Tunnel && (d.TunnelType != TunnelIPIP || d.TunnelPort != 0 || d.TunnelFlags != 0) {
				b = appendAttr(b, dstTunType, []byte{byte(d.TunnelType)})
				b = appendAttr(b, dstTunPort, binary.BigEndian.AppendUint16(nil, d.TunnelPort))
				b = appendAttr(b, dstTunFlags, binary.NativeEndian.AppendUint16(nil, uint16(d.TunnelFlags)))
			}
		}
		binary.NativeEndian.PutUint16(b[nest:], uint16(len(b)-nest))
	}
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// appendAttr appends a netlink attribute, padded to 4 bytes. With a nil
// value it appends only the header, for a nest whose length is patched later.
func appendAttr(b []byte, typ uint16, v []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
