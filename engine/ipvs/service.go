package ipvs

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Protocol is a virtual service's transport protocol (an IP protocol number).
type Protocol uint16

// The protocols IPVS balances (keepalived's `protocol TCP|UDP|SCTP`).
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case SCTP:
		return "sctp"
	}
	return "proto" + strconv.Itoa(int(p))
}

// Scheduler is an IPVS scheduler name (keepalived's lb_algo / lvs_sched).
type Scheduler string

// The schedulers keepalived accepts (reference §1.6). Each is a kernel module
// ip_vs_NAME; twos is not built in every kernel (Debian 6.1 lacks it).
const (
	RoundRobin              Scheduler = "rr"
	WeightedRoundRobin      Scheduler = "wrr"
	LeastConnection         Scheduler = "lc"
	WeightedLeastConnection Scheduler = "wlc"
	LocalityLC              Scheduler = "lblc"
	LocalityLCReplicated    Scheduler = "lblcr"
	DestinationHashing      Scheduler = "dh"
	SourceHashing           Scheduler = "sh"
	ShortestExpectedDelay   Scheduler = "sed"
	NeverQueue              Scheduler = "nq"
	WeightedFailover        Scheduler = "fo"
	WeightedOverflow        Scheduler = "ovf"
	MaglevHashing           Scheduler = "mh"
	TwoRandomChoices        Scheduler = "twos"
)

// Schedulers lists every scheduler keepalived knows.
var Schedulers = [...]Scheduler{RoundRobin, WeightedRoundRobin, LeastConnection,
	WeightedLeastConnection, LocalityLC, LocalityLCReplicated, DestinationHashing,
	SourceHashing, ShortestExpectedDelay, NeverQueue, WeightedFailover,
	WeightedOverflow, MaglevHashing, TwoRandomChoices}

// Valid reports whether s is a scheduler keepalived accepts.
func (s Scheduler) Valid() bool { return slices.Contains(Schedulers[:], s) }

// Forward is a real server's forwarding method (keepalived's lb_kind / lvs_method).
// The values are the kernel's IP_VS_CONN_F_* forwarding codes.
type Forward uint32

// Forwarding methods.
const (
	NAT    Forward = 0 // IP_VS_CONN_F_MASQ
	Local  Forward = 1 // IP_VS_CONN_F_LOCALNODE: the kernel's own choice, never configured
	Tunnel Forward = 2 // IP_VS_CONN_F_TUNNEL (keepalived TUN)
	DR     Forward = 3 // IP_VS_CONN_F_DROUTE
)

func (f Forward) String() string {
	switch f {
	case NAT:
		return "nat"
	case Local:
		return "local"
	case Tunnel:
		return "tun"
	case DR:
		return "dr"
	}
	return "fwd" + strconv.Itoa(int(f))
}

// Flags are IPVS service flags (IP_VS_SVC_F_*). Persistence is not among
// them: it follows from Service.Timeout.
type Flags uint32

// Service flags a config can set.
const (
	// FlagOnePacket is keepalived's `ops`: schedule each UDP datagram on its own.
	FlagOnePacket Flags = 0x0004
	// FlagSched1..3 are keepalived's flag-1..3; for sh they are sh-fallback and
	// sh-port, for mh mh-fallback and mh-port.
	FlagSched1 Flags = 0x0008
	FlagSched2 Flags = 0x0010
	FlagSched3 Flags = 0x0020

	flagPersistent Flags = 0x0001
	// flagHashed is set by the kernel on every service it holds; it is never
	// part of a desired service and is ignored when comparing.
	flagHashed Flags = 0x0002

	// The scheduler-specific aliases keepalived offers.
	FlagSHFallback = FlagSched1
	FlagSHPort     = FlagSched2
	FlagMHFallback = FlagSched1
	FlagMHPort     = FlagSched2

	settable = FlagOnePacket | FlagSched1 | FlagSched2 | FlagSched3
)

// Key identifies a kernel virtual service: an address, port and protocol, or
// a firewall mark and family.
type Key struct {
	FWMark   uint32      // non-zero for a fwmark service; Addr, Port, Protocol are then zero
	Family   vrrp.Family // of Addr, or of the fwmark service
	Addr     netip.Addr
	Port     uint16
	Protocol Protocol
}

// AddrKey is the key of the service at addr:port/proto.
func AddrKey(addr netip.Addr, port uint16, proto Protocol) Key {
	addr = addr.Unmap()
	return Key{Family: familyOf(addr), Addr: addr, Port: port, Protocol: proto}
}

// MarkKey is the key of the fwmark service of one family.
func MarkKey(mark uint32, fam vrrp.Family) Key { return Key{FWMark: mark, Family: fam} }

// String is the form event.Event.Service uses: "ip:port/proto" or "fwmark:N/family".
func (k Key) String() string {
	if k.FWMark != 0 {
		return "fwmark:" + strconv.FormatUint(uint64(k.FWMark), 10) + "/" + k.Family.String()
	}
	return netip.AddrPortFrom(k.Addr, k.Port).String() + "/" + k.Protocol.String()
}

// normal returns k with an unmapped address and the family taken from it,
// the form the kernel reads back, so keys built by hand compare equal.
func (k Key) normal() Key {
	if k.FWMark == 0 && k.Addr.IsValid() {
		k.Addr = k.Addr.Unmap()
		k.Family = familyOf(k.Addr)
	}
	return k
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.FWMark, b.FWMark), cmp.Compare(a.Family, b.Family),
		a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
}

// Service is one desired (or observed) IPVS virtual service.
type Service struct {
	Key
	Scheduler Scheduler
	Flags     Flags
	// Timeout is persistence_timeout; zero means not persistent. The kernel
	// counts it in whole seconds.
	Timeout time.Duration
	// Granularity is persistence_granularity as a prefix length (a netmask for
	// IPv4, a prefix for IPv6); zero means the whole address (32 or 128).
	Granularity int
	// PersistenceEngine is keepalived's persistence_engine (only "sip").
	PersistenceEngine string
	// Hashed is keepalived's `hashed`: keepalived sends IP_VS_SVC_F_HASHED
	// in the service's flags (check_parser.c). The flag is the kernel's own
	// record that a service is in its hash table; since Linux 5.13 (and the
	// stable kernels the fix went to, "ipvs: ignore IP_VS_SVC_F_HASHED flag
	// when adding service") the kernel ignores it from user space, and every
	// service it holds reports it. It is sent as keepalived sends it and
	// never compared.
	Hashed       bool
	Destinations []Destination

	// Stats are the kernel's counters; filled only on services read back.
	Stats Counters
}

// Destination is one real server of a service.
type Destination struct {
	Addr    netip.Addr
	Port    uint16
	Weight  int
	Forward Forward
	// UpperThreshold and LowerThreshold are keepalived's uthreshold and
	// lthreshold: connection limits; zero means none.
	UpperThreshold, LowerThreshold uint32
	// TunnelType, TunnelPort and TunnelFlags are a TUN destination's
	// encapsulation (keepalived's `lb_kind TUN type ipip|gue port N|gre
	// nocsum|csum|remcsum`; the kernel's IPVS_DEST_ATTR_TUN_*, Linux 5.2+
	// for GUE, 5.3+ for GRE). They mean nothing for other methods.
	TunnelType  TunnelType
	TunnelPort  uint16
	TunnelFlags TunnelFlags

	// Stats are the kernel's counters; filled only on destinations read back.
	Stats Counters
}

// TunnelType is a TUN destination's encapsulation (IP_VS_CONN_F_TUNNEL_TYPE_*).
type TunnelType uint8

// Tunnel types.
const (
	TunnelIPIP TunnelType = 0 // the default, and the only one before Linux 5.2
	TunnelGUE  TunnelType = 1
	TunnelGRE  TunnelType = 2
)

func (t TunnelType) String() string {
	switch t {
	case TunnelIPIP:
		return "ipip"
	case TunnelGUE:
		return "gue"
	case TunnelGRE:
		return "gre"
	}
	return "tun" + strconv.Itoa(int(t))
}

// TunnelFlags are a GUE or GRE tunnel's checksum options
// (IP_VS_TUNNEL_ENCAP_FLAG_*); zero is keepalived's and ipvsadm's nocsum.
type TunnelFlags uint16

// Tunnel checksum options.
const (
	TunnelNoChecksum     TunnelFlags = 0
	TunnelChecksum       TunnelFlags = 1 << 0 // csum
	TunnelRemoteChecksum TunnelFlags = 1 << 1 // remcsum (GUE only)
)

// AddrPort is the destination's identity within its service.
func (d Destination) AddrPort() netip.AddrPort { return netip.AddrPortFrom(d.Addr, d.Port) }

// Counters are the kernel's per-service or per-destination counters. They
// count from when the kernel object was created; the 32-bit ones wrap.
type Counters struct {
	Connections         uint64 // connections scheduled
	PacketsIn           uint64
	PacketsOut          uint64
	BytesIn             uint64
	BytesOut            uint64
	ActiveConnections   int // destinations only
	InactiveConnections int // destinations only
}

func familyOf(a netip.Addr) vrrp.Family {
	if a.Is4() {
		return vrrp.IPv4
	}
	return vrrp.IPv6
}

func (s *Service) granularity() int {
	full := 32
	if s.Family == vrrp.IPv6 {
		full = 128
	}
	if s.Granularity <= 0 || s.Granularity > full {
		return full
	}
	return s.Granularity
}

// Validate reports a service the kernel would reject, naming it.
func (s *Service) Validate() error {
	switch {
	case s.FWMark == 0 && !s.Addr.IsValid():
		return fmt.Errorf("ipvs: service has neither an address nor a fwmark")
	case s.FWMark == 0 && s.Family != 0 && s.Family != familyOf(s.Addr.Unmap()):
		return fmt.Errorf("ipvs: service %s: family %v does not match the address", s.Key, s.Family)
	case s.FWMark == 0 && s.Protocol != TCP && s.Protocol != UDP && s.Protocol != SCTP:
		return fmt.Errorf("ipvs: service %s: protocol %d is not TCP, UDP or SCTP", s.Key, uint16(s.Protocol))
	case s.FWMark != 0 && s.Family != vrrp.IPv4 && s.Family != vrrp.IPv6:
		return fmt.Errorf("ipvs: service %s: no address family", s.Key)
	case !s.Scheduler.Valid():
		return fmt.Errorf("ipvs: service %s: unknown scheduler %q", s.Key, s.Scheduler)
	case s.Flags&^settable != 0:
		return fmt.Errorf("ipvs: service %s: flags %#x cannot be set", s.Key, uint32(s.Flags&^settable))
	case s.Timeout < 0 || s.Timeout > (1<<32-1)*time.Second:
		return fmt.Errorf("ipvs: service %s: persistence timeout %v out of range", s.Key, s.Timeout)
	}
	seen := make(map[netip.AddrPort]bool, len(s.Destinations))
	for _, d := range s.Destinations {
		switch {
		case !d.Addr.IsValid():
			return fmt.Errorf("ipvs: service %s: destination without address", s.Key)
		case seen[d.AddrPort()]:
			return fmt.Errorf("ipvs: service %s: destination %s twice", s.Key, d.AddrPort())
		case d.Weight < 0 || d.Weight > 65535:
			return fmt.Errorf("ipvs: service %s: destination %s: weight %d out of range 0-65535", s.Key, d.AddrPort(), d.Weight)
		case d.Forward > DR:
			return fmt.Errorf("ipvs: service %s: destination %s: unknown forwarding method %d", s.Key, d.AddrPort(), d.Forward)
		case d.TunnelType > TunnelGRE:
			return fmt.Errorf("ipvs: service %s: destination %s: unknown tunnel type %d", s.Key, d.AddrPort(), d.TunnelType)
		case d.Forward == Tunnel && d.TunnelType == TunnelGUE && d.TunnelPort == 0:
			// The kernel rejects it with a bare EINVAL ("tunnel port is
			// zero", ip_vs_ctl.c ip_vs_add_dest): say which.
			return fmt.Errorf("ipvs: service %s: destination %s: tunnel type gue needs a port", s.Key, d.AddrPort())
		case d.TunnelFlags&^(TunnelChecksum|TunnelRemoteChecksum) != 0:
			return fmt.Errorf("ipvs: service %s: destination %s: tunnel flags %#x unknown", s.Key, d.AddrPort(), uint16(d.TunnelFlags))
		}
		seen[d.AddrPort()] = true
	}
	return nil
}

// sameService reports whether a and b differ in nothing UpdateService sets.
func sameService(a, b *Service) bool {
	return a.Scheduler == b.Scheduler && a.Flags&settable == b.Flags&settable &&
		a.Timeout/time.Second == b.Timeout/time.Second &&
		(a.Timeout == 0 || a.granularity() == b.granularity())
	// PersistenceEngine is not compared: moby/ipvs does not read it back, so
	// a change of engine alone is applied only when the service is re-created.
}

// sameDestination reports whether a and b differ in nothing UpdateDestination sets.
func sameDestination(a, b *Destination) bool {
	return a.Weight == b.Weight && a.Forward == b.Forward &&
		a.UpperThreshold == b.UpperThreshold && a.LowerThreshold == b.LowerThreshold &&
		(a.Forward != Tunnel || a.TunnelType == b.TunnelType && a.TunnelPort == b.TunnelPort && a.TunnelFlags == b.TunnelFlags)
}
