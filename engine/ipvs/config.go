package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// VirtualServer is one config virtual_server mapped to the kernel's terms:
// the services it stands for (several for a virtual_server_group), its
// health policy and its real servers. The agent updates Servers' health
// from the checkers and calls Desired.
type VirtualServer struct {
	Services []Service // without destinations
	Pool     Pool
	Servers  []RealServer
}

// Desired evaluates the pool (Evaluate) and returns every service of the
// virtual server with the resulting destinations.
func (v *VirtualServer) Desired(prev QuorumState) ([]Service, Result) {
	res := Evaluate(v.Pool, v.Servers, prev)
	out := make([]Service, len(v.Services))
	for i, s := range v.Services {
		s.Destinations = res.Destinations
		out[i] = s
	}
	return out, res
}

// FromConfig maps the config's virtual servers (reference §1.6). Values the
// front ends leave empty get keepalived's defaults (wlc, NAT, weight 1,
// quorum 1). It fails naming the virtual server when a value has no kernel
// meaning (an unknown lb_algo, lb_kind or protocol, a bad granularity).
func FromConfig(c *config.Config) ([]VirtualServer, error) {
	groups := make(map[string][]GroupEntry, len(c.VSGroups))
	for _, g := range c.VSGroups {
		for _, e := range g.Entries {
			groups[g.Name] = append(groups[g.Name], GroupEntry{First: e.First, Last: e.Last, Port: uint16(e.Port),
				FWMark: e.FWMark, Family: vrrp.Family(e.Family)})
		}
	}
	out := make([]VirtualServer, 0, len(c.VirtualServers))
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		v, err := fromVirtualServer(vs, groups)
		if err != nil {
			return nil, fmt.Errorf("%s: virtual_server %s: %w", vs.Pos, vsName(vs), err)
		}
		out = append(out, v)
	}
	return out, nil
}

func vsName(vs *config.VirtualServer) string {
	switch {
	case vs.Group != "":
		return "group " + vs.Group
	case vs.FWMark != 0:
		return "fwmark " + strconv.FormatUint(uint64(vs.FWMark), 10)
	}
	return netip.AddrPortFrom(vs.Addr, uint16(vs.Port)).String()
}

func fromVirtualServer(vs *config.VirtualServer, groups map[string][]GroupEntry) (VirtualServer, error) {
	var v VirtualServer
	proto, err := parseProtocol(vs.Protocol)
	if err != nil {
		return v, err
	}
	sched := Scheduler(strings.ToLower(vs.Scheduler))
	if sched == "" {
		sched = Scheduler(config.DefaultScheduler)
	}
	if !sched.Valid() {
		return v, fmt.Errorf("unknown lb_algo %q", vs.Scheduler)
	}
	tmpl := Service{Scheduler: sched, Timeout: vs.PersistenceTimeout, PersistenceEngine: vs.PersistenceEngine, Hashed: vs.Hashed}
	if vs.OPS {
		tmpl.Flags |= FlagOnePacket
	}
	for _, f := range vs.SchedFlags {
		switch f {
		case "flag-1", "sh-fallback", "mh-fallback":
			tmpl.Flags |= FlagSched1
		case "flag-2", "sh-port", "mh-port":
			tmpl.Flags |= FlagSched2
		case "flag-3":
			tmpl.Flags |= FlagSched3
		default:
			return v, fmt.Errorf("unknown scheduler flag %q", f)
		}
	}
	fam := vrrp.Family(vs.IPFamily)
	switch {
	case vs.Group != "":
		entries, ok := groups[vs.Group]
		if !ok {
			return v, fmt.Errorf("no virtual_server_group %q", vs.Group)
		}
		tmpl.Protocol = proto
		if v.Services, err = Expand(tmpl, entries); err != nil {
			return v, err
		}
	case vs.FWMark != 0:
		if fam == 0 {
			fam = vrrp.IPv4
		}
		tmpl.Key = MarkKey(vs.FWMark, fam)
		v.Services = []Service{tmpl}
	default:
		if !vs.Addr.IsValid() {
			return v, fmt.Errorf("no address, fwmark or group")
		}
		tmpl.Key = AddrKey(vs.Addr, uint16(vs.Port), proto)
		v.Services = []Service{tmpl}
	}
	if vs.PersistenceGranularity != "" {
		bits, err := granularity(vs.PersistenceGranularity)
		if err != nil {
			return v, err
		}
		for i := range v.Services {
			v.Services[i].Granularity = bits
		}
	}

	method, err := parseMethod(vs.Method, NAT)
	if err != nil {
		return v, err
	}
	tun, err := tunnelOf(vs)
	if err != nil {
		return v, err
	}
	v.Pool = Pool{Quorum: vs.Quorum, Hysteresis: vs.Hysteresis, SorryInhibit: vs.SorryServerInhibit, Alpha: vs.Alpha, Omega: vs.Omega}
	if vs.SorryServer != nil {
		m, err := parseMethod(vs.SorryServerMethod, method)
		if err != nil {
			return v, err
		}
		if vs.SorryServer.Method != "" {
			if m, err = parseMethod(vs.SorryServer.Method, m); err != nil {
				return v, err
			}
		}
		w := weight(vs.SorryServer.Weight)
		if w == 0 {
			w = config.DefaultWeight // a sorry server serves: never at weight 0 when in use
		}
		v.Pool.Sorry = &Destination{Addr: vs.SorryServer.Addr.Unmap(), Port: destPort(vs.SorryServer.Port, vs), Weight: w, Forward: m}
		tun.to(v.Pool.Sorry)
	}
	for i := range vs.RealServers {
		rs := &vs.RealServers[i]
		m, err := parseMethod(rs.Method, method)
		if err != nil {
			return v, fmt.Errorf("real_server %s: %w", rs.Addr, err)
		}
		inhibit := vs.InhibitOnFailure
		if rs.InhibitOnFailure != nil {
			inhibit = *rs.InhibitOnFailure
		}
		v.Servers = append(v.Servers, RealServer{
			Destination: Destination{Addr: rs.Addr.Unmap(), Port: destPort(rs.Port, vs), Weight: weight(rs.Weight), Forward: m,
				UpperThreshold: uint32(max(rs.UThreshold, 0)), LowerThreshold: uint32(max(rs.LThreshold, 0))},
			Inhibit: inhibit,
		})
		tun.to(&v.Servers[len(v.Servers)-1].Destination)
	}
	return v, nil
}

// tunnel is a virtual server's TUN encapsulation.
type tunnel struct {
	typ   TunnelType
	port  uint16
	flags TunnelFlags
}

// to gives d the tunnel settings when d forwards by TUN.
func (t tunnel) to(d *Destination) {
	if d.Forward == Tunnel {
		d.TunnelType, d.TunnelPort, d.TunnelFlags = t.typ, t.port, t.flags
	}
}

// tunnelOf reads `lb_kind TUN type ipip|gue port N|gre nocsum|csum|remcsum`
// with keepalived's rules (check_parser.c, the lb_kind/lvs_method handler): gue needs a
// port, a port is for gue only, remcsum is for gue only and checksums are
// not for ipip. keepalived gives the settings to every TUN real server of
// the virtual server (a real server's own `lvs_method TUN` too).
func tunnelOf(vs *config.VirtualServer) (tunnel, error) {
	var t tunnel
	switch strings.ToLower(vs.TunnelType) {
	case "", "ipip":
	case "gue":
		t.typ = TunnelGUE
	case "gre":
		t.typ = TunnelGRE
	default:
		return t, fmt.Errorf("unknown tunnel type %q (ipip|gue|gre)", vs.TunnelType)
	}
	switch strings.ToLower(vs.TunnelCsum) {
	case "", "nocsum":
	case "csum":
		t.flags = TunnelChecksum
	case "remcsum":
		t.flags = TunnelRemoteChecksum
	default:
		return t, fmt.Errorf("unknown tunnel checksum %q (nocsum|csum|remcsum)", vs.TunnelCsum)
	}
	switch {
	case vs.TunnelPort < 0 || vs.TunnelPort > 65535:
		return t, fmt.Errorf("tunnel port %d out of range", vs.TunnelPort)
	case t.typ == TunnelGUE && vs.TunnelPort == 0:
		return t, errors.New("tunnel type gue needs a port")
	case t.typ != TunnelGUE && vs.TunnelPort != 0:
		return t, fmt.Errorf("tunnel port is for type gue only, not %s", t.typ)
	case t.flags == TunnelRemoteChecksum && t.typ != TunnelGUE:
		return t, fmt.Errorf("remcsum is for tunnel type gue only, not %s", t.typ)
	case t.flags != 0 && t.typ == TunnelIPIP:
		return t, errors.New("tunnel checksums are for types gue and gre, not ipip")
	}
	t.port = uint16(vs.TunnelPort)
	return t, nil
}

// destPort is the real server's port; without one it takes the virtual
// server's, as keepalived does for NAT setups written without ports.
func destPort(p int, vs *config.VirtualServer) uint16 {
	if p == 0 {
		return uint16(vs.Port)
	}
	return uint16(p)
}

func weight(w int) int { return min(max(w, 0), 65535) }

func parseProtocol(s string) (Protocol, error) {
	switch strings.ToUpper(s) {
	case "", "TCP":
		return TCP, nil
	case "UDP":
		return UDP, nil
	case "SCTP":
		return SCTP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q", s)
}

func parseMethod(s string, def Forward) (Forward, error) {
	switch strings.ToUpper(s) {
	case "":
		return def, nil
	case "NAT":
		return NAT, nil
	case "DR":
		return DR, nil
	case "TUN":
		return Tunnel, nil
	}
	return 0, fmt.Errorf("unknown lb_kind %q", s)
}

// granularity turns persistence_granularity (an IPv4 netmask such as
// 255.255.255.0, or a prefix length) into a prefix length.
func granularity(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= 128 {
		return n, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("persistence_granularity %q is neither a netmask nor a prefix length", s)
	}
	b := a.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	bits := 0
	for m&0x80000000 != 0 {
		bits++
		m <<= 1
	}
	if m != 0 {
		return 0, fmt.Errorf("persistence_granularity %q is not a contiguous netmask", s)
	}
	return bits, nil
}
