package config

import (
	"net/netip"
	"time"
)

// keepalived's defaults (reference §1.2–1.7; keepalived.conf(5)).
const (
	DefaultPriority         = 100
	DefaultAdvertInterval   = time.Second
	DefaultVRRPVersion      = 2
	DefaultDownTimerAdverts = 3
	DefaultGarpMasterDelay  = 5 * time.Second
	DefaultGarpMasterRepeat = 5
	DefaultGarpRefreshRep   = 1
	DefaultSMTPPort         = 25
	DefaultSMTPTimeout      = 30 * time.Second
	// DefaultLifeScriptTimeout is how long keepalived lets startup_script
	// and shutdown_script run (keepalived.conf(5): 10 seconds).
	DefaultLifeScriptTimeout = 10 * time.Second
	DefaultScriptInterval    = time.Second
	DefaultDelayLoop         = 60 * time.Second
	DefaultConnectTimeout    = 5 * time.Second
	DefaultDelayBeforeRetry  = time.Second
	DefaultHTTPRetryDelay    = 3 * time.Second
	DefaultRetry             = 1
	DefaultDNSRetry          = 3
	DefaultScheduler         = "wlc"
	DefaultMethod            = "NAT"
	DefaultProtocol          = "TCP"
	DefaultWeight            = 1
	DefaultQuorum            = 1
	DefaultDNSType           = "SOA"
	DefaultDNSName           = "."
)

// Default multicast groups (RFC 9568 §5.1.1.2, §5.1.2.2).
var (
	DefaultMulticastGroup4 = netip.MustParseAddr("224.0.0.18")
	DefaultMulticastGroup6 = netip.MustParseAddr("ff02::12")
)

// Family returns 4 or 6 from the instance's first VIP (reference §1.3: the
// first VIP decides), or 0 when it has none.
func (in *Instance) Family() int {
	if len(in.VIPs) > 0 {
		if in.VIPs[0].Prefix.Addr().Is4() {
			return 4
		}
		return 6
	}
	if in.UnicastSrc.IsValid() {
		if in.UnicastSrc.Is4() {
			return 4
		}
		return 6
	}
	return 0
}

// EffectiveVersion is the VRRP version the instance runs: its own, else the
// global vrrp_version, except that IPv6 instances run v3 (reference §2.2).
func (in *Instance) EffectiveVersion(g *Global) int {
	if in.Version != 0 {
		return in.Version
	}
	if in.Family() == 6 {
		return 3
	}
	if g != nil && g.VRRPVersion != 0 {
		return g.VRRPVersion
	}
	return DefaultVRRPVersion
}

// Unicast reports whether the instance sends adverts to unicast peers.
func (in *Instance) Unicast() bool { return len(in.UnicastPeers) > 0 }

// MulticastGroup is the advert destination when not unicast.
func (in *Instance) MulticastGroup(g *Global) netip.Addr {
	if in.MulticastDst.IsValid() {
		return in.MulticastDst
	}
	if in.Family() == 6 {
		if g != nil && g.MulticastGroup6.IsValid() {
			return g.MulticastGroup6
		}
		return DefaultMulticastGroup6
	}
	if g != nil && g.MulticastGroup4.IsValid() {
		return g.MulticastGroup4
	}
	return DefaultMulticastGroup4
}

// Garp is an instance's resolved gratuitous ARP / NA schedule.
type Garp struct {
	MasterDelay     time.Duration
	MasterRepeat    int
	MasterRefresh   time.Duration
	RefreshRepeat   int
	LowerPrioDelay  time.Duration
	LowerPrioRepeat int
	Interval        time.Duration // between ARPs
	NAInterval      time.Duration // between NAs
}

// GarpSchedule resolves the instance's GARP settings against the globals
// (reference §2.6: lower-priority values default to the master ones;
// vrrp_min_garp means repeat 1, delay 0, refresh 0).
func (in *Instance) GarpSchedule(g *Global) Garp {
	s := Garp{MasterDelay: DefaultGarpMasterDelay, MasterRepeat: DefaultGarpMasterRepeat, RefreshRepeat: DefaultGarpRefreshRep}
	if g != nil {
		if g.MinGarp {
			s.MasterDelay, s.MasterRepeat, s.MasterRefresh = 0, 1, 0
		}
		if g.GarpMasterDelay != 0 {
			s.MasterDelay = g.GarpMasterDelay
		}
		if g.GarpMasterRepeat != 0 {
			s.MasterRepeat = g.GarpMasterRepeat
		}
		if g.GarpMasterRefresh != 0 {
			s.MasterRefresh = g.GarpMasterRefresh
		}
		if g.GarpMasterRefreshRep != 0 {
			s.RefreshRepeat = g.GarpMasterRefreshRep
		}
		s.Interval, s.NAInterval = g.GarpInterval, g.GnaInterval
	}
	// The lower-priority values default to the global master ones, not the
	// instance's: keepalived fills vrrp_garp_lower_prio_* from
	// vrrp_garp_master_* in global_data and each instance's unset
	// garp_lower_prio_* from those (global_data.c, vrrp_parser.c
	// vrrp_complete_instance) [checked with keepalived 2.2.7's data dump].
	s.LowerPrioDelay, s.LowerPrioRepeat = s.MasterDelay, s.MasterRepeat
	if in.GarpMasterDelay != nil {
		s.MasterDelay = *in.GarpMasterDelay
	}
	if in.GarpMasterRepeat != nil {
		s.MasterRepeat = *in.GarpMasterRepeat
	}
	if in.GarpMasterRefresh != nil {
		s.MasterRefresh = *in.GarpMasterRefresh
	}
	if in.GarpMasterRefreshRep != nil {
		s.RefreshRepeat = *in.GarpMasterRefreshRep
	}
	if g != nil && g.GarpLowerPrioDelay != nil {
		s.LowerPrioDelay = *g.GarpLowerPrioDelay
	}
	if g != nil && g.GarpLowerPrioRepeat != nil {
		s.LowerPrioRepeat = *g.GarpLowerPrioRepeat
	}
	if in.GarpLowerPrioDelay != nil {
		s.LowerPrioDelay = *in.GarpLowerPrioDelay
	}
	if in.GarpLowerPrioRepeat != nil {
		s.LowerPrioRepeat = *in.GarpLowerPrioRepeat
	}
	return s
}

// Resolved returns the checker's scheduling settings with inheritance applied
// (checker → real server → virtual server → keepalived defaults per type,
// reference §1.6).
func (c *Checker) Resolved(rs *RealServer, vs *VirtualServer) CheckDefaults {
	out := c.CheckDefaults
	for _, up := range []*CheckDefaults{&rs.CheckDefaults, &vs.CheckDefaults} {
		if out.DelayLoop == 0 {
			out.DelayLoop = up.DelayLoop
		}
		if out.ConnectTimeout == 0 {
			out.ConnectTimeout = up.ConnectTimeout
		}
		if out.Retry == nil {
			out.Retry = up.Retry
		}
		if out.DelayBeforeRetry == 0 {
			out.DelayBeforeRetry = up.DelayBeforeRetry
		}
		if out.Warmup == nil {
			out.Warmup = up.Warmup
		}
	}
	if out.DelayLoop == 0 {
		out.DelayLoop = DefaultDelayLoop
	}
	if out.ConnectTimeout == 0 {
		out.ConnectTimeout = DefaultConnectTimeout
	}
	if out.Retry == nil {
		r := DefaultRetry
		switch c.Type {
		case DNSCheck:
			r = DefaultDNSRetry
		case MiscCheck:
			r = 0
		}
		out.Retry = &r
	}
	if out.DelayBeforeRetry == 0 {
		switch c.Type {
		case HTTPGet, SSLGet:
			out.DelayBeforeRetry = DefaultHTTPRetryDelay
		case DNSCheck:
			out.DelayBeforeRetry = out.DelayLoop
		default:
			out.DelayBeforeRetry = DefaultDelayBeforeRetry
		}
	}
	if out.Warmup == nil {
		w := out.DelayLoop
		out.Warmup = &w
	}
	return out
}
