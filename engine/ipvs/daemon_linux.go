package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

// Timeouts are the kernel's IPVS connection timeouts (keepalived's
// `lvs_timeouts tcp N tcpfin N udp N`, ipvsadm --set). Zero leaves a value
// as it is, in the kernel as in keepalived (ipvs_set_timeouts sends nothing
// when all three are zero).
type Timeouts struct {
	TCP, TCPFin, UDP time.Duration
}

// IsZero reports whether t changes nothing.
func (t Timeouts) IsZero() bool { return t == Timeouts{} }

// SetTimeouts sets the kernel's connection timeouts (IPVS_CMD_SET_CONFIG);
// zero values are left as they are. The kernel counts whole seconds.
func (h *Handle) SetTimeouts(t Timeouts) error {
	if t.IsZero() {
		return nil
	}
	for _, d := range []time.Duration{t.TCP, t.TCPFin, t.UDP} {
		if d < 0 || d > (1<<31-1)*time.Second {
			return fmt.Errorf("ipvs: timeout %v out of range", d)
		}
	}
	if err := h.SetConfig(&ipvs.Config{TimeoutTCP: t.TCP, TimeoutTCPFin: t.TCPFin, TimeoutUDP: t.UDP}); err != nil {
		return fmt.Errorf("ipvs: set timeouts: %w", err)
	}
	return nil
}

// Timeouts reads the kernel's connection timeouts (IPVS_CMD_GET_CONFIG).
func (h *Handle) Timeouts() (Timeouts, error) {
	c, err := h.GetConfig()
	if err != nil {
		return Timeouts{}, fmt.Errorf("ipvs: get timeouts: %w", err)
	}
	return Timeouts{TCP: c.TimeoutTCP, TCPFin: c.TimeoutTCPFin, UDP: c.TimeoutUDP}, nil
}

// SyncState is the role of the kernel's connection-sync daemon
// (IP_VS_STATE_MASTER, IP_VS_STATE_BACKUP). The kernel runs at most one of
// each.
type SyncState uint32

// Sync daemon roles.
const (
	SyncMaster SyncState = 1
	SyncBackup SyncState = 2
)

func (s SyncState) String() string {
	switch s {
	case SyncMaster:
		return "master"
	case SyncBackup:
		return "backup"
	}
	return fmt.Sprintf("state%d", uint32(s))
}

// SyncDaemon is one kernel connection-sync daemon: keepalived's
// `lvs_sync_daemon IF INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]`.
// Zero MaxLen, Port and TTL, and an invalid Group, leave the kernel's
// defaults (payload from the interface's MTU, 8848, 1, 224.0.0.81), as
// keepalived does by not sending them (ipvs_syncd_cmd).
type SyncDaemon struct {
	State     SyncState
	Interface string
	SyncID    uint8
	MaxLen    uint16
	Port      uint16
	TTL       uint8
	Group     netip.Addr
}

// The daemon part of the IPVS generic netlink interface (include/uapi/linux/ip_vs.h).
const (
	cmdNewDaemon = 9
	cmdDelDaemon = 10
	cmdGetDaemon = 11

	attrDaemon = 3

	daemonState      = 1 // u32
	daemonIfName     = 2 // string
	daemonSyncID     = 3 // u32
	daemonSyncMaxLen = 4 // u16
	daemonGroup      = 5 // in_addr
	daemonGroup6     = 6 // in6_addr
	daemonPort       = 7 // u16
	daemonTTL        = 8 // u8

	ifNameSize = 16 // IP_VS_IFNAME_MAXLEN
)

// StartDaemon starts the kernel's sync daemon d (IPVS_CMD_NEW_DAEMON). It
// fails with EEXIST (wrapped) when a daemon of that state already runs.
func (h *Handle) StartDaemon(d SyncDaemon) error {
	if d.State != SyncMaster && d.State != SyncBackup {
		return fmt.Errorf("ipvs: sync daemon state %d is neither master nor backup", uint32(d.State))
	}
	if d.Interface == "" || len(d.Interface) >= ifNameSize {
		return fmt.Errorf("ipvs: sync daemon interface %q: need a name of 1-%d bytes", d.Interface, ifNameSize-1)
	}
	var b []byte
	b = appendAttr(b, daemonState, binary.NativeEndian.AppendUint32(nil, uint32(d.State)))
	b = appendAttr(b, daemonIfName, append([]byte(d.Interface), 0))
	b = appendAttr(b, daemonSyncID, binary.NativeEndian.AppendUint32(nil, uint32(d.SyncID)))
	if d.MaxLen != 0 {
		b = appendAttr(b, daemonSyncMaxLen, binary.NativeEndian.AppendUint16(nil, d.MaxLen))
	}
	if d.Port != 0 {
		b = appendAttr(b, daemonPort, binary.NativeEndian.AppendUint16(nil, d.Port))
	}
	if d.TTL != 0 {
		b = appendAttr(b, daemonTTL, []byte{d.TTL})
	}
	switch g := d.Group.Unmap(); {
	case g.Is4():
		b = appendAttr(b, daemonGroup, g.AsSlice())
	case g.Is6():
		b = appendAttr(b, daemonGroup6, g.AsSlice())
	}
	if err := h.batch.request(cmdNewDaemon, nest(attrDaemon, b)); err != nil {
		return fmt.Errorf("ipvs: start %s sync daemon on %s: %w", d.State, d.Interface, err)
	}
	return nil
}

// StopDaemon stops the kernel's sync daemon of state s
// (IPVS_CMD_DEL_DAEMON). Stopping one that does not run is not an error.
func (h *Handle) StopDaemon(s SyncState) error {
	b := appendAttr(nil, daemonState, binary.NativeEndian.AppendUint32(nil, uint32(s)))
	err := h.batch.request(cmdDelDaemon, nest(attrDaemon, b))
	if errors.Is(err, unix.ESRCH) {
		return nil // ip_vs_sync.c stop_sync_thread: no such daemon
	}
	if err != nil {
		return fmt.Errorf("ipvs: stop %s sync daemon: %w", s, err)
	}
	return nil
}

// Daemons lists the sync daemons the kernel runs (IPVS_CMD_GET_DAEMON).
func (h *Handle) Daemons() ([]SyncDaemon, error) {
	var out []SyncDaemon
	h.batch.mu.Lock()
	defer h.batch.mu.Unlock()
	err := h.batch.dump(cmdGetDaemon, nil, func(v []byte) error {
		var d SyncDaemon
		walkAttrs(v, func(typ uint16, v []byte) {
			switch typ {
			case daemonState:
				d.State = SyncState(u32(v))
			case daemonIfName:
				d.Interface = cstring(v)
			case daemonSyncID:
				d.SyncID = uint8(u32(v))
			case daemonSyncMaxLen:
				d.MaxLen = u16(v)
			case daemonPort:
				d.Port = u16(v)
			case daemonTTL:
				if len(v) > 0 {
					d.TTL = v[0]
				}
			case daemonGroup, daemonGroup6:
				d.Group, _ = netip.AddrFromSlice(v)
			}
		})
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ipvs: list sync daemons: %w", err)
	}
	return out, nil
}

// nest wraps attrs in a nested attribute of type typ.
func nest(typ uint16, attrs []byte) []byte {
	b := appendAttr(nil, typ, nil)
	b = append(b, attrs...)
	binary.NativeEndian.PutUint16(b, uint16(len(b)))
	return b
}

// request sends one IPVS command with attrs and waits for its ack.
func (c *batchConn) request(cmd uint8, attrs []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	seq := c.seq
	b := make([]byte, 0, unix.NLMSG_HDRLEN+4+len(attrs))
	b = binary.NativeEndian.AppendUint32(b, uint32(unix.NLMSG_HDRLEN+4+len(attrs)))
	b = binary.NativeEndian.AppendUint16(b, c.family)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, cmd, ipvsGenlVersion, 0, 0)
	b = append(b, attrs...)
	if err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(c.fd, c.rbuf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		r := c.rbuf[:n]
		for len(r) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(r[0:4]))
			if l < unix.NLMSG_HDRLEN || l > len(r) {
				break
			}
			typ := binary.NativeEndian.Uint16(r[4:6])
			if typ == unix.NLMSG_ERROR && l >= unix.NLMSG_HDRLEN+4 && binary.NativeEndian.Uint32(r[8:12]) == seq {
				if code := int32(binary.NativeEndian.Uint32(r[16:20])); code != 0 {
					return unix.Errno(-code)
				}
				return nil
			}
			r = r[min(nlAlign(l), len(r)):]
		}
	}
}
