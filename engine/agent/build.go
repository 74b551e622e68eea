package agent

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/track"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/fsm"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
	"github.com/keepwatch/keepwatch/engine/vrrp/router"
)

// AddrLookup finds an interface's primary address of a family; tests and
// namespaces substitute their own.
type AddrLookup func(ifname string, family vrrp.Family) (netip.Addr, error)

// instanceKey is what identifies an instance across a reload, as keepalived
// matches them (reference §0 item 7): VRID, family, interface, and whether
// it is unicast. Its numbers are narrow (a VRID is 1 to 255, a family 4 or
// 6) so that a plan fits the 576-byte size class (issue 12).
type instanceKey struct {
	name    string
	ifname  string
	vrid    int32
	family  uint8
	unicast bool
}

func keyOf(in *config.Instance) instanceKey {
	return instanceKey{name: in.Name, ifname: in.Interface, vrid: int32(in.VRID), family: uint8(in.Family()), unicast: in.Unicast()}
}

// plan is one instance as the agent runs it: the router's config and the
// trackers it follows. It is not written once built: its router config is
// the running instance's own (router.Member.Config). The multicast group
// its socket joins is router.Receive.Group (invalid: unicast), not a copy
// of it, and promote_secondaries is a flag (promoteIface names the
// interface): a plan fits the 576-byte size class with the 8-byte header
// the runtime puts before objects over 512 bytes, not 640 (issue 12).
type plan struct {
	key    instanceKey
	router router.Config
	refs   []track.Ref
	// vmac is the instance's use_vmac interface, created before it starts.
	vmac *netif.VMAC
	// promote is promote_secondaries (promoteIface).
	promote bool
}

// promoteIface is the interface promote_secondaries is set on, "" without
// it: the instance's, or its VMAC when there is one; keepalived sets it on
// vrrp->ifp (vrrp.c).
func (p *plan) promoteIface() string {
	switch {
	case !p.promote:
		return ""
	case p.vmac != nil:
		return p.vmac.LinkName()
	}
	return p.key.ifname
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

// address maps a config address entry to netif's, on the instance's
// interface unless the entry names another.
func address(a config.Address, ifname string) (netif.Address, error) {
	out := netif.Address{
		Prefix: a.Prefix, Dev: a.Dev, Label: a.Label, Peer: a.Peer, Home: a.Home, NoDAD: a.NoDAD,
		MngTmpAddr: a.MngTmpAddr, NoPrefixRoute: a.NoPrefixRoute, AutoJoin: a.AutoJoin,
	}
	if out.Dev == "" {
		out.Dev = ifname
	}
	switch a.Broadcast {
	case "", "-":
	case "+":
		out.BroadcastAuto = true
	default:
		b, err := netip.ParseAddr(a.Broadcast)
		if err != nil {
			return out, fmt.Errorf("address %s: brd %q: %w", a.Prefix, a.Broadcast, err)
		}
		out.Broadcast = b
	}
	if a.Scope != "" {
		s, err := netif.ParseScope(a.Scope)
		if err != nil {
			return out, fmt.Errorf("address %s: %w", a.Prefix, err)
		}
		out.Scope = s
	}
	if a.PreferredLft != nil && *a.PreferredLft >= 0 {
		out.PreferredLft, out.HasPreferredLft = uint32(*a.PreferredLft), true
	}
	return out, nil
}

// buildPlan resolves one configured instance into what the agent runs.
func buildPlan(c *config.Config, in *config.Instance, lookup AddrLookup) (*plan, error) {
	g := &c.Global
	fam := vrrp.Family(in.Family())
	if fam == 0 {
		return nil, fmt.Errorf("vrrp_instance %s: no virtual address, so no address family", in.Name)
	}
	if in.UnicastFaultNoPeer && !in.Unicast() {
		// keepalived 2.2.7 (vrrp.c vrrp_complete_instance, tried): "Cannot
		// use unicast without any peers - going to fault state", rather
		// than falling back to multicast as it does without the keyword.
		// The instance stays in FAULT until a reload gives it peers.
		return nil, fmt.Errorf("vrrp_instance %s: unicast_fault_no_peer and no unicast_peer: cannot use unicast without any peers", in.Name)
	}
	ver := in.EffectiveVersion(g)
	fc := fsm.DefaultConfig()
	fc.Name, fc.VRID, fc.Interface, fc.Family = in.Name, uint8(in.VRID), in.Interface, fam
	fc.Version, fc.Priority, fc.AdvertInterval = ver, in.Priority, in.AdvertInterval
	fc.NoPreempt, fc.PreemptDelay = in.NoPreempt, in.PreemptDelay
	if in.InitialState == "MASTER" {
		fc.InitialState = vrrp.StateMaster
	} else {
		fc.InitialState = vrrp.StateBackup
	}
	if in.DownTimerAdverts != 0 {
		fc.DownTimerAdverts = in.DownTimerAdverts
	} else if g.DownTimerAdverts != 0 {
		fc.DownTimerAdverts = g.DownTimerAdverts
	}
	strict := boolOr(in.Strict, g.Strict)
	fc.LowerPrioNoAdvert = boolOr(in.LowerPrioNoAdvert, g.LowerPrioNoAdvert || strict)
	fc.HigherPrioSendAdvert = boolOr(in.HigherPrioSendAdvert, g.HigherPrioSendAdvert)
	fc.OwnerIgnoreAdverts = g.OwnerIgnoreAdverts || (strict && in.Priority == 255)
	gs := in.GarpSchedule(g)
	fc.GARP = fsm.GARP{MasterRepeat: gs.MasterRepeat, MasterDelay: gs.MasterDelay, MasterRefresh: gs.MasterRefresh,
		MasterRefreshRepeat: gs.RefreshRepeat, LowerPrioRepeat: gs.LowerPrioRepeat, LowerPrioDelay: gs.LowerPrioDelay}

	// Source address: unicast_src_ip, mcast_src_ip, else the interface's own.
	src := in.UnicastSrc
	if !src.IsValid() {
		src = in.MulticastSrc
	}
	if !src.IsValid() || fam == vrrp.IPv6 && !in.Unicast() {
		a, err := lookup(in.Interface, fam)
		if err != nil {
			return nil, fmt.Errorf("vrrp_instance %s: %w", in.Name, err)
		}
		if !src.IsValid() || fam == vrrp.IPv6 {
			src = a
		}
	}
	fc.Addr = src

	rc := router.Config{FSM: fc, Src: src, TTL: 255}
	if in.UnicastTTL != 0 {
		rc.TTL, rc.HopLimit = uint8(in.UnicastTTL), in.UnicastTTL
	}
	rc.Receive = receive.Instance{Family: fam, Version: vrrp.Version(ver), VRID: uint8(in.VRID),
		Interval: in.AdvertInterval, CheckUnicastSrc: in.CheckUnicastSrc || g.CheckUnicastSrc}
	if boolOr(in.V3ChecksumAsV2, g.V3ChecksumAsV2) {
		rc.Checksum, rc.Receive.Checksum = vrrp.ChecksumAsV2, vrrp.ChecksumAsV2
	}
	if in.Auth != nil && ver == 2 && !strict {
		switch {
		case in.Auth.Type == "PASS":
			rc.AuthType = vrrp.AuthPass
		case in.Auth.Type == "AH" && fam == vrrp.IPv4:
			// The password keys the AH ICV (engine/vrrp AHICV).
			rc.AuthType = vrrp.AuthAH
		}
		if rc.AuthType != vrrp.AuthNone {
			rc.AuthData = vrrp.PassAuthData(string(in.Auth.Pass))
			rc.Receive.AuthType, rc.Receive.AuthData = rc.AuthType, rc.AuthData
		}
	}
	p := &plan{key: keyOf(in)}
	if in.Unicast() {
		for _, peer := range in.UnicastPeers {
			rc.Dsts = append(rc.Dsts, peer.Addr)
			rc.Receive.Peers = append(rc.Receive.Peers, receive.Peer{Addr: peer.Addr, MinTTL: uint8(peer.MinTTL), MaxTTL: uint8(peer.MaxTTL)})
		}
	} else {
		grp := in.MulticastGroup(g)
		rc.Dsts = []netip.Addr{grp}
		rc.Receive.Group = grp
	}
	for _, a := range in.VIPs {
		na, err := address(a, in.Interface)
		if err != nil {
			return nil, fmt.Errorf("vrrp_instance %s: %w", in.Name, err)
		}
		rc.VIPs = append(rc.VIPs, na)
		rc.Receive.VIPs = append(rc.Receive.VIPs, a.Prefix.Addr())
	}
	for _, a := range in.ExcludedVIPs {
		na, err := address(a, in.Interface)
		if err != nil {
			return nil, fmt.Errorf("vrrp_instance %s: %w", in.Name, err)
		}
		rc.ExcludedVIPs = append(rc.ExcludedVIPs, na)
	}
	for _, r := range in.Routes {
		nr, err := route(r, in.Interface)
		if err != nil {
			return nil, fmt.Errorf("vrrp_instance %s: %w", in.Name, err)
		}
		rc.Routes = append(rc.Routes, nr)
	}
	for _, r := range in.Rules {
		nr, err := rule(r, int(fam))
		if err != nil {
			return nil, fmt.Errorf("vrrp_instance %s: %w", in.Name, err)
		}
		rc.Rules = append(rc.Rules, nr)
	}
	rc.SkipCheckAdvAddr = boolOr(in.SkipCheckAdvAddr, g.SkipCheckAdvAddr)
	garp, gna := g.GarpInterval, g.GnaInterval
	for _, gg := range c.GarpGroups {
		// A garp_group gives its interfaces their own spacing, which
		// replaces the global one there (vrrp_parser.c garp_group; global
		// vrrp_garp_interval only fills interfaces without one).
		if slices.Contains(gg.Interfaces, in.Interface) {
			garp, gna = gg.GarpInterval, gg.GnaInterval
		}
	}
	if fam == vrrp.IPv4 {
		rc.GarpSpacing = garp
	} else {
		rc.GarpSpacing = gna
	}
	if in.VMAC != nil {
		// use_vmac (reference §2.8): adverts, VIPs and gratuitous ARPs go out
		// on a macvlan carrying the virtual router MAC, unless vmac_xmit_base
		// keeps adverts on the base interface.
		v := netif.VMAC{Name: in.VMAC.Name, Prefix: g.VMACPrefix, Parent: in.Interface, VRID: uint8(in.VRID), IPv6: fam == vrrp.IPv6}
		if in.VMAC.MAC != "" {
			mac, err := net.ParseMAC(in.VMAC.MAC)
			if err != nil || len(mac) != 6 {
				return nil, fmt.Errorf("vrrp_instance %s: use_vmac MAC %q is not an Ethernet address", in.Name, in.VMAC.MAC)
			}
			v.Addr = mac
		}
		p.vmac = &v
		if !in.VMACXmitBase {
			rc.FSM.Interface = v.LinkName()
		}
		for k := range rc.VIPs {
			if rc.VIPs[k].Dev == in.Interface {
				rc.VIPs[k].Dev = v.LinkName()
			}
		}
	}
	p.promote = in.PromoteSecondaries
	p.router = rc
	p.refs = trackRefs(c, in)
	return p, nil
}

// trackRefs lists the trackers an instance follows, with the weights that
// apply to it. Its own interface is tracked with weight 0 unless
// dont_track_primary (reference §1.5).
func trackRefs(c *config.Config, in *config.Instance) []track.Ref {
	var refs []track.Ref
	if !in.DontTrackPrimary {
		refs = append(refs, track.Ref{Kind: track.KindInterface, Name: in.Interface})
	}
	add := func(kind track.Kind, r config.TrackRef, weight int, reverse bool) {
		if r.Weight != nil {
			weight = *r.Weight
		}
		if r.Reverse != nil {
			reverse = *r.Reverse
		}
		refs = append(refs, track.Ref{Kind: kind, Name: r.Name, Weight: weight, Reverse: reverse})
	}
	for _, r := range in.TrackInterfaces {
		if r.Name == in.Interface && !in.DontTrackPrimary {
			refs[0].Weight = 0
			if r.Weight != nil {
				refs[0].Weight = *r.Weight
			}
			continue
		}
		add(track.KindInterface, r, 0, false)
	}
	addNamed(c, in.TrackScripts, in.TrackFiles, in.TrackProcesses, add)
	return syncGroupRefs(c, in, refs)
}

// addNamed calls add for each script, file and process tracker that refs
// name (of an instance or a sync group), with the weight and direction
// their definition gives; a name with no definition adds nothing.
func addNamed(c *config.Config, scripts, files, procs []config.TrackRef, add func(track.Kind, config.TrackRef, int, bool)) {
	for _, r := range scripts {
		for _, s := range c.Scripts {
			if s.Name == r.Name {
				add(track.KindScript, r, s.Weight, s.Reverse)
			}
		}
	}
	for _, r := range files {
		for _, f := range c.TrackFiles {
			if f.Name == r.Name {
				add(track.KindFile, r, f.Weight, f.Reverse)
			}
		}
	}
	for _, r := range procs {
		for _, p := range c.TrackProcesses {
			if p.Name == r.Name {
				add(track.KindProcess, r, p.Weight, p.Reverse)
			}
		}
	}
}

// equalRouter reports whether two router configs are the same, so an
// unchanged instance is not even asked to update.
func equalRouter(a, b router.Config) bool { return reflect.DeepEqual(a, b) }

func equalRefs(a, b []track.Ref) bool { return reflect.DeepEqual(a, b) }
