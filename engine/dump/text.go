package dump

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// Tracker is the running state of one tracker of an instance, as the
// agent reports it: what keepalived.data's script and file sections show.
type Tracker struct {
	Kind  string // "script", "file", "interface", "process", …
	Name  string
	Known bool // has a result yet
	Up    bool
	Fault bool  // puts the instance in FAULT
	Value int64 // a track_file's number
}

// Host is what keepalived.data says about the host rather than the config:
// the name SMTP's HELO defaults to and the interfaces' addresses (the
// "Using src_ip" and "ifindex" of an instance). Tests set their own.
type Host struct {
	Hostname string
	// Interface returns an interface's index and addresses; ok false when
	// there is no such interface.
	Interface func(name string) (index int, addrs []netip.Addr, ok bool)
	// IDs returns the "uid:gid" a script runs as, given script_user and
	// script_group (both may be empty).
	IDs func(user, group string) string
}

// LocalHost is the running host, in the calling process's namespace.
func LocalHost() Host {
	h, _ := os.Hostname()
	return Host{Hostname: h, IDs: scriptIDs, Interface: func(name string) (int, []netip.Addr, bool) {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return 0, nil, false
		}
		as, _ := ifi.Addrs()
		var out []netip.Addr
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					out = append(out, ip.Unmap())
				}
			}
		}
		return ifi.Index, out, true
	}}
}

var stateNames = map[int]string{0: "INIT", 1: "BACKUP", 2: "MASTER", 3: "FAULT", 97: "DELETED", 98: "STOP"}

func onOff(b bool, on, off string) string {
	if b {
		return on
	}
	return off
}

// setting is a global_defs keyword keepwatch keeps but does not model (the
// process, SNMP, DBus and netlink tuning keepalived prints): its first
// argument, or def.
func setting(ss []config.Setting, keyword, def string) string {
	for _, s := range ss {
		if s.Keyword == keyword {
			if len(s.Args) == 0 {
				return "true"
			}
			return s.Args[0]
		}
	}
	return def
}

func has(ss []config.Setting, keyword string) bool { return setting(ss, keyword, "\x00") != "\x00" }

func tristate(p *bool) string {
	switch {
	case p == nil:
		return "unset"
	case *p:
		return "on"
	}
	return "off"
}

// WriteData writes keepalived.data as keepalived 2.2.7's SIGUSR1 handler
// does (dump_global_data() in keepalived/core/global_data.c, then
// dump_vrrp_data() in keepalived/vrrp/vrrp_data.c): the same sections, keys,
// value formats and order, checked line by line against keepalived's own
// dump of the same config (TestDumpsMatchKeepalived in cmd/keepwatch). It
// leaves out what only exists inside keepalived's process: socket fds, the
// read timer, the socket pool and its interface cache (KnownGaps). The
// password is masked. keepalived's maintainers call this format unstable
// (#1928); it is kept for the people and scripts that grep it.
func WriteData(w io.Writer, c *config.Config, es []Entry) error {
	return WriteDataHost(w, c, es, LocalHost())
}

// KnownGaps are the keepalived.data lines (by prefix) and sections keepwatch
// does not write, each with why: they describe keepalived's process, not
// the config or the routers' state.
var KnownGaps = map[string]string{
	" nftables ":                    "keepalived's build (linked with libnftnl); keepwatch uses no nftables library",
	" libnftnl version ":            "keepalived's build (linked with libnftnl); keepwatch uses no nftables library",
	"   Read timeout = ":            "the deadline of keepalived's read thread, which keepwatch does not have",
	"   fd_in ":                     "keepalived's socket file descriptors",
	"------< VRRP Sockpool >------": "keepalived's socket pool (fds, receive buffers)",
	"------< Interfaces >------":    "keepalived's interface cache (debounce timers, ARP reset counters); `ip link` shows the rest",
}

// WriteDataHost is WriteData with the host's names and addresses given.
func WriteDataHost(w io.Writer, c *config.Config, es []Entry, h Host) error {
	bw := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format+"\n", a...) }
	writeGlobal(p, c, h)
	if len(es) > 0 {
		p("------< VRRP Topology >------")
	}
	for _, e := range es {
		writeInstance(p, c, e, h)
	}
	writeSyncGroups(p, c, es)
	writeScripts(p, c, es, h)
	writeTrackFiles(p, c, es)
	return bw.Flush()
}

type printer func(format string, a ...any)

func writeGlobal(p printer, c *config.Config, h Host) {
	g := &c.Global
	x := g.Extra
	p("------< Global definitions >------")
	p(" Network namespace = %s", setting(x, "net_namespace", "(default)"))
	p(" Network namespace ipvs = %s", setting(x, "namespace_with_ipvs", "(main namespace)"))
	if g.RouterID != "" {
		p(" Router ID = %s", g.RouterID)
	} else {
		p(" Router ID = %s", h.Hostname)
	}
	if g.SMTPServer != "" {
		port, timeout := g.SMTPPort, g.SMTPConnectTimeout
		if port == 0 {
			port = 25
		}
		if timeout == 0 {
			timeout = 30 * time.Second
		}
		helo := g.SMTPHeloName
		if helo == "" {
			helo = h.Hostname
		}
		p(" Smtp server = %s", g.SMTPServer)
		p(" Smtp server port = %d", port)
		p(" Smtp HELO name = %s", helo)
		p(" Smtp server connection timeout = %d", int(timeout/time.Second))
	}
	if g.NotificationEmailFrom != "" {
		p(" Email notification from = %s", g.NotificationEmailFrom)
	}
	if len(g.NotificationEmail) > 0 {
		p(" Email notification to:")
		for _, e := range g.NotificationEmail {
			p("   %s", e)
		}
	}
	p(" Default smtp_alert = %s", tristate(g.SMTPAlert))
	p(" Default smtp_alert_vrrp = %s", tristate(g.SMTPAlertVRRP))
	p(" Default smtp_alert_checker = %s", tristate(g.SMTPAlertChecker))
	p(" Checkers log all failures = %t", g.CheckerLogAllFailures)
	p(" No test config before reload")
	p(" Dynamic interfaces = %t", g.DynamicInterfaces)
	if g.DynamicInterfaces {
		p(" Allow interface changes = %t", setting(x, "dynamic_interfaces", "") == "allow_if_changes")
	}
	def := g.DefaultInterface
	if def == "" {
		def = "eth0"
	}
	p(" Default interface = %s", def)
	p(" Disable local IGMP = %s", onOff(has(x, "vrrp_disable_local_igmp"), "yes", "no"))
	p(" LVS flush = %t", g.LVSFlush)
	switch g.LVSFlushOnStop {
	case "":
		p(" LVS flush on stop = disabled")
	case "VS":
		p(" LVS flush on stop = VS")
	default:
		p(" LVS flush on stop = all")
	}
	p(" FIFO write vrrp states on reload = %t", has(x, "fifo_write_vrrp_states_on_reload"))
	p(" VRRP notify priority changes = %t", g.NotifyPriorityChanges)
	mc4, mc6 := config.DefaultMulticastGroup4, config.DefaultMulticastGroup6
	if g.MulticastGroup4.IsValid() {
		mc4 = g.MulticastGroup4
	}
	if g.MulticastGroup6.IsValid() {
		mc6 = g.MulticastGroup6
	}
	p(" VRRP IPv4 mcast group = %s", mc4)
	p(" VRRP IPv6 mcast group = %s", mc6)
	garp := (&config.Instance{}).GarpSchedule(g)
	p(" Gratuitous ARP delay = %s", trimFloat(garp.MasterDelay.Seconds()))
	p(" Gratuitous ARP repeat = %d", garp.MasterRepeat)
	p(" Gratuitous ARP refresh timer = %d", int(garp.MasterRefresh/time.Second))
	p(" Gratuitous ARP refresh repeat = %d", garp.RefreshRepeat)
	p(" Gratuitous ARP lower priority delay = %d", int(garp.LowerPrioDelay/time.Second))
	p(" Gratuitous ARP lower priority repeat = %d", garp.LowerPrioRepeat)
	p(" Num adverts before down = %d", downAdverts(g.DownTimerAdverts, 0))
	p(" Gratuitous ARP for each secondary VMAC = %ss", setting(x, "vrrp_garp_extra_if", "0"))
	p(" Send advert after receive lower priority advert = %t", !g.LowerPrioNoAdvert)
	p(" Send advert after receive higher priority advert = %t", g.HigherPrioSendAdvert)
	p(" Gratuitous ARP interval = %f", garp.Interval.Seconds())
	p(" Gratuitous NA interval = %f", garp.NAInterval.Seconds())
	version := g.VRRPVersion
	if version == 0 {
		version = config.DefaultVRRPVersion
	}
	p(" VRRP default protocol version = %d", version)
	p(" VRRP check unicast_src = %t", g.CheckUnicastSrc)
	p(" VRRP skip check advert addresses = %t", g.SkipCheckAdvAddr)
	p(" VRRP strict mode = %t", g.Strict)
	p(" Max auto priority = %d", g.MaxAutoPriority)
	p(" Min auto priority delay = %s usecs", setting(x, "min_auto_priority_delay", "1000000"))
	for _, proc := range []string{"VRRP", "Checker", "BFD"} {
		k := strings.ToLower(proc)
		p(" %s process priority = %s", proc, setting(x, k+"_priority", "0"))
		p(" %s don't swap = %t", proc, has(x, k+"_no_swap"))
		p(" %s realtime priority = %s", proc, setting(x, k+"_rt_priority", "0"))
		p(" %s realtime limit = %s", proc, setting(x, k+"_rlimit_rttime", "10000"))
	}
	for _, s := range []struct{ label, keyword string }{{"vrrp", "enable_snmp_vrrp"}, {"checker", "enable_snmp_checker"},
		{"RFCv2", "enable_snmp_rfcv2"}, {"RFCv3", "enable_snmp_rfcv3"}, {"traps", "enable_traps"}} {
		p(" SNMP %s %s", s.label, onOff(has(x, s.keyword), "enabled", "disabled"))
	}
	if sock := setting(x, "snmp_socket", ""); sock != "" {
		p(" SNMP socket = %s", sock)
	} else {
		p(" SNMP socket = default (unix:/var/agentx/master)")
	}
	p(" DBus %s", onOff(has(x, "enable_dbus"), "enabled", "disabled"))
	p(" DBus service name = %s", setting(x, "dbus_service_name", ""))
	p(" Script security %s", onOff(g.EnableScriptSecurity, "enabled", "disabled"))
	p(" Default script uid:gid %s", h.IDs(g.ScriptUser, g.ScriptGroup))
	for _, k := range []string{"vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs", "process_monitor_rcv_bufs",
		"lvs_netlink_cmd_rcv_bufs", "lvs_netlink_monitor_rcv_bufs"} {
		p(" %s = %s", k, setting(x, k, "0"))
		p(" %s_force = %d", k, b2i(has(x, k+"_force")))
	}
	p(" rs_init_notifies = %d", b2i(g.RSInitNotifies))
	p(" no_checker_emails = %d", b2i(g.NoCheckerEmails))
	p(" rx_bufs_multiples = %s", setting(x, "vrrp_rx_bufs_multiplier", "3"))
	p(" umask = %s", umask(setting(x, "umask", "")))
}

// umask prints the process umask as keepalived's "%#o" does; keepalived's
// default is 0177 (its files are its own).
func umask(v string) string {
	if v == "" {
		return "0177"
	}
	n, err := strconv.ParseUint(v, 0, 32)
	if err != nil {
		return v
	}
	return "0" + strconv.FormatUint(n, 8)
}

// scriptIDs is the uid:gid scripts run as: script_user (and its group or
// script_group), else keepalived_script if that user exists, else root
// (keepalived's set_default_script_user()).
func scriptIDs(name, group string) string {
	if name == "" {
		if _, err := user.Lookup("keepalived_script"); err == nil {
			name = "keepalived_script"
		} else {
			return "0:0"
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		return "0:0"
	}
	gid := u.Gid
	if group != "" {
		if g, err := user.LookupGroup(group); err == nil {
			gid = g.Gid
		}
	}
	return u.Uid + ":" + gid
}

func syncGroupOf(c *config.Config, name string) string {
	for _, sg := range c.SyncGroups {
		for _, m := range sg.Members {
			if m == name {
				return sg.Name
			}
		}
	}
	return ""
}

// masterDownUsecs is Master_Down_Interval in microseconds as keepalived
// computes it (VRRP_MS_DOWN_TIMER in vrrp.h): down_timer_adverts ×
// Master_Adver_Interval + Skew_Time, where the skew is (256 − priority)/256 s
// in v2 (RFC 3768 §6.1) and (256 − priority) × Master_Adver_Interval / 256
// in v3 (RFC 9568 §6.1), both in whole microseconds.
func masterDownUsecs(version, prio, adverts int, masterAdver time.Duration) int64 {
	adv := masterAdver.Microseconds()
	skew := int64(256-prio) * 1000000 / 256
	if version == 3 {
		skew = int64(256-prio) * adv / 256
	}
	return int64(adverts)*adv + skew
}

func trackerFor(e Entry, kind, name string) (Tracker, bool) {
	for _, t := range e.Trackers {
		if t.Kind == kind && t.Name == name {
			return t, true
		}
	}
	return Tracker{}, false
}

func writeInstance(p printer, c *config.Config, e Entry, h Host) {
	g := &c.Global
	d := e.Data
	in := instance(c, d.IName)
	if in == nil {
		in = &config.Instance{Name: d.IName, Interface: d.IfpIfname, VRID: d.VRID, Priority: d.BasePriority}
	}
	p(" VRRP Instance = %s", d.IName)
	p("   VRRP Version = %d", d.Version)
	if sg := syncGroupOf(c, d.IName); sg != "" {
		p("   Sync group = %s", sg)
	}
	v6 := in.Family() == 6
	if v6 {
		p("   Using Native IPv6")
	}
	p("   State = %s", stateNames[d.State])
	// keepalived lists some of its flags by name and others not at all
	// (nopreempt, VMAC): "Flags:" alone then.
	if in.Unicast() || in.NoPreempt || in.VMAC != nil {
		p("   Flags:")
		if in.Unicast() {
			p("     Using unicast")
		}
	} else {
		p("   Flags: none")
	}
	p("   Wantstate = %s", stateNames[d.WantState])
	faults, scriptsInit := 0, 0
	for _, t := range e.Trackers {
		if t.Fault {
			faults++
		}
		if t.Kind == "script" && !t.Known {
			scriptsInit++
		}
	}
	p("   Number of config faults = 0")
	p("   Number of interface and track script faults = %d", faults)
	p("   Number of track scripts init = %d", scriptsInit)
	if d.LastTransition != 0 {
		sec := float64(d.LastTransition)
		t := time.UnixMicro(int64(sec * 1e6))
		p("   Last transition = %.6f (%s)", sec, t.Format("Mon Jan _2 15:04:05.000000 2006"))
	}
	adverts := downAdverts(g.DownTimerAdverts, in.DownTimerAdverts)
	masterAdver := time.Duration(d.MasterAdverInt * float64(time.Second))
	down := masterDownUsecs(d.Version, d.EffectivePriority, adverts, masterAdver)
	if in.Priority == 255 && strings.EqualFold(in.InitialState, "MASTER") && syncGroupOf(c, d.IName) == "" {
		// The address owner starting as master takes over at once
		// (vrrp_scheduler.c: a 1 µs down timer); not in a sync group,
		// whose members start as backups.
		down = 1
	}
	p("   Master down timer = %d usecs", down)
	if d.VMACIfname != "" {
		p("   Use VMAC, i/f name %s, is_up = true, xmit_base = %t", d.VMACIfname, in.VMACXmitBase)
		p("   Interface = %s, vmac on %s", d.VMACIfname, in.Interface)
	} else {
		p("   Interface = %s", d.IfpIfname)
	}
	index, addrs, _ := h.Interface(in.Interface)
	switch {
	case in.UnicastSrc.IsValid():
		p("   Using src_ip = %s (from configuration)", in.UnicastSrc)
	default:
		for _, a := range addrs {
			if (v6 && a.Is6() && a.IsLinkLocalUnicast()) || (!v6 && a.Is4()) {
				p("   Using src_ip = %s", a)
				break
			}
		}
	}
	if !in.Unicast() {
		if v6 {
			p("   Multicast address %s, ifindex %d", in.MulticastGroup(g), index)
		} else {
			p("   Multicast address %s", in.MulticastGroup(g))
		}
	}
	p("   Gratuitous ARP delay = %s", trimFloat(d.GarpDelay))
	p("   Gratuitous ARP repeat = %d", d.GarpRep)
	p("   Gratuitous ARP refresh = %d", d.GarpRefresh)
	p("   Gratuitous ARP refresh repeat = %d", d.GarpRefreshRep)
	p("   Gratuitous ARP lower priority delay = %d", d.GarpLowerPrioDelay)
	p("   Gratuitous ARP lower priority repeat = %d", d.GarpLowerPrioRep)
	p("   Down timer adverts = %d", adverts)
	p("   Send advert after receive lower priority advert = %t", d.LowerPrioNoAdvert == 0)
	p("   Send advert after receive higher priority advert = %t", d.HigherPrioSendAdvert != 0)
	p("   Virtual Router ID = %d", d.VRID)
	p("   Priority = %d", d.BasePriority)
	p("   Effective priority = %d", d.EffectivePriority)
	p("   Total priority = %d", d.EffectivePriority)
	// v2 intervals are whole seconds; v3 ones centiseconds, which keepalived
	// prints in milliseconds (dump_vrrp()).
	if d.Version == 3 {
		p("   Advert interval = %d milli-sec", int64(d.AdverInt*1000+0.5))
	} else {
		p("   Advert interval = %s sec", trimFloat(d.AdverInt))
	}
	p("   Accept = %s", onOff(d.Accept != 0, "enabled", "disabled"))
	p("   Preempt = %s", onOff(!d.NoPreempt, "enabled", "disabled"))
	if d.PreemptDelay != 0 {
		p("   Preempt delay = %d secs", d.PreemptDelay)
	}
	p("   Promote_secondaries = %s", onOff(d.PromoteSecondaries, "enabled", "disabled"))
	switch d.AuthType {
	case 0:
		if d.Version == 2 {
			p("   Authentication type = none")
		}
	case 1:
		p("   Authentication type = SIMPLE_PASSWORD")
		p("   Password = %s", Masked)
	case 2:
		p("   Authentication type = IPSEC_AH")
		p("   Password = %s", Masked)
	}
	if len(d.VIPs) > 0 {
		p("   Virtual IP (%d):", len(d.VIPs))
		for _, v := range d.VIPs {
			p("     %s", v)
		}
	}
	if len(d.EVIPs) > 0 {
		p("   Virtual IP Excluded :")
		for _, v := range d.EVIPs {
			p("     %s", v)
		}
	}
	if in.Unicast() {
		ttl := in.UnicastTTL
		if ttl == 0 {
			ttl = 255
		}
		p("   Unicast TTL = %d", ttl)
		p("   Check unicast src : %s", onOff(in.CheckUnicastSrc || g.CheckUnicastSrc, "yes", "no"))
		p("   Unicast Peer :")
		for _, u := range in.UnicastPeers {
			maxTTL := u.MaxTTL
			if maxTTL == 0 {
				maxTTL = 255
			}
			p("     %s min_ttl %d max_ttl %d", u.Addr, u.MinTTL, maxTTL)
		}
		p("   Unicast checksum compatibility = no")
	}
	if len(in.Routes) > 0 {
		p("   Virtual Routes :")
		for _, r := range in.Routes {
			p("     %s", dataRoute(r))
		}
	}
	if len(in.Rules) > 0 {
		p("   Virtual Rules :")
		for _, r := range in.Rules {
			p("     %s", dataRule(r))
		}
	}
	var ifs []config.TrackRef
	for _, t := range in.TrackInterfaces {
		if t.Name != in.Interface {
			ifs = append(ifs, t)
		}
	}
	if len(ifs) > 0 {
		p("   Tracked interfaces :")
		for _, t := range ifs {
			p("     %s weight %d", t.Name, refWeight(t, 0))
		}
	}
	if len(in.TrackScripts) > 0 {
		p("   Tracked scripts :")
		for _, t := range in.TrackScripts {
			p("     %s weight %d", t.Name, scriptWeight(c, t))
		}
	}
	if len(in.TrackFiles) > 0 {
		p("   Tracked files :")
		for _, t := range in.TrackFiles {
			p("     %s, weight %d", t.Name, fileWeight(c, t))
		}
	}
	p("   Using smtp notification = %s", onOff(d.SMTPAlert, "yes", "no"))
	p("   Notify deleted = %s", onOff(d.NotifyDeleted, "Deleted", "Fault"))
	n := &in.Notify
	for _, s := range []struct {
		name string
		sc   *config.Script
	}{{"Backup", n.Backup}, {"Master", n.Master}, {"Fault", n.Fault}, {"Stop", n.Stop}, {"Deleted", n.Deleted},
		{"Generic", n.Any}, {"Master rx lower pri", n.MasterRxLowerPri}} {
		if s.sc != nil {
			p("   %s state transition script = %s, uid:gid %s", s.name, quoteCommand(s.sc), h.IDs(userOr(s.sc.User, g.ScriptUser), groupOr(s.sc, g)))
		}
	}
	p("   Notify priority changes = %t", boolOr(in.Notify.PriorityChanges, g.NotifyPriorityChanges))
}

func userOr(u, def string) string {
	if u != "" {
		return u
	}
	return def
}

func groupOr(s *config.Script, g *config.Global) string {
	if s.User != "" {
		return s.Group
	}
	return g.ScriptGroup
}

func refWeight(t config.TrackRef, def int) int {
	if t.Weight != nil {
		return *t.Weight
	}
	return def
}

func fileWeight(c *config.Config, t config.TrackRef) int {
	if t.Weight != nil {
		return *t.Weight
	}
	for _, f := range c.TrackFiles {
		if f.Name == t.Name {
			if f.Weight == 0 {
				return 1
			}
			return f.Weight
		}
	}
	return 1
}

// rtprotKeepalived is the routing protocol number keepalived marks its
// routes and rules with (RTPROT_KEEPALIVED, 18).
const rtprotKeepalived = "18"

// dataRoute prints a virtual route as keepalived 2.2.7's format_iproute()
// does: the netlink operation ("prepend", its NLM_F_CREATE|NLM_F_APPEND),
// the gateway with its family, and the protocol keepalived marks routes with.
func dataRoute(r config.Route) string {
	w := []string{"prepend"}
	if r.Type != "" {
		w = append(w, r.Type)
	}
	if r.Dst.IsValid() {
		w = append(w, hostOrPrefix(r.Dst))
	} else {
		w = append(w, "default")
	}
	if r.Src.IsValid() {
		w = append(w, "src", r.Src.String())
	}
	if r.Via.IsValid() {
		w = append(w, "via", onOff(r.Via.Is4(), "inet", "inet6"), r.Via.String())
	}
	if r.Dev != "" {
		w = append(w, "dev", r.Dev)
	}
	if r.Table != "" {
		w = append(w, "table", r.Table)
	}
	if r.Metric != 0 {
		w = append(w, "metric", strconv.Itoa(r.Metric))
	}
	if r.Scope != "" {
		w = append(w, "scope", r.Scope)
	}
	proto := r.Proto
	if proto == "" {
		proto = rtprotKeepalived
	}
	w = append(w, "proto", proto)
	if r.OnLink {
		w = append(w, "onlink")
	}
	return strings.Join(w, " ")
}

// dataRule prints a virtual rule as keepalived 2.2.7's format_iprule()
// does. A rule without a priority gets 16384 (keepalived warns "Rule has no
// preference specified - setting to 16384"); tos and protocol are always
// printed.
func dataRule(r config.Rule) string {
	var w []string
	if r.From.IsValid() {
		w = append(w, "from", hostOrPrefix(r.From))
	} else {
		w = append(w, "from", "all")
	}
	if r.To.IsValid() {
		w = append(w, "to", hostOrPrefix(r.To))
	}
	prio := r.Priority
	if prio == 0 {
		prio = 16384
	}
	w = append(w, "priority", strconv.Itoa(prio), "tos", "0x0")
	if r.FWMark != "" {
		w = append(w, "fwmark", r.FWMark)
	}
	if r.IIf != "" {
		w = append(w, "iif", r.IIf)
	}
	if r.OIf != "" {
		w = append(w, "oif", r.OIf)
	}
	w = append(w, r.Rest...)
	w = append(w, "protocol", rtprotKeepalived)
	if r.Action != "" {
		w = append(w, r.Action)
	} else if r.Table != "" {
		w = append(w, "lookup", r.Table)
	}
	return strings.Join(w, " ")
}

func hostOrPrefix(p netip.Prefix) string {
	if p.Bits() == p.Addr().BitLen() {
		return p.Addr().String()
	}
	return p.String()
}

func writeSyncGroups(p printer, c *config.Config, es []Entry) {
	if len(c.SyncGroups) == 0 {
		return
	}
	state := map[string]int{}
	for _, e := range es {
		state[e.Data.IName] = e.Data.State
	}
	p("------< VRRP Sync groups >------")
	for _, sg := range c.SyncGroups {
		st, fault, init := 0, 0, 0
		for i, m := range sg.Members {
			s := state[m]
			if i == 0 {
				st = s
			}
			switch s {
			case 3:
				fault++
				st = 3
			case 0:
				init++
			}
		}
		p(" VRRP Sync Group = %s, %s", sg.Name, stateNames[st])
		p("   Num member fault %d, num member init %d", fault, init)
		p("   VRRP member instances :")
		for _, m := range sg.Members {
			p("     %s", m)
		}
		p("   Using smtp notification = %s", onOff(boolOr(sg.Notify.SMTPAlert, boolOr(c.Global.SMTPAlertVRRP, boolOr(c.Global.SMTPAlert, false))), "yes", "no"))
	}
}

// tracking is each instance tracking the named tracker, with its weight.
type tracking struct {
	inst   string
	weight int
}

func writeScripts(p printer, c *config.Config, es []Entry, h Host) {
	var any bool
	for _, s := range c.Scripts {
		var users []tracking
		var state Tracker
		for _, in := range c.Instances {
			for _, t := range in.TrackScripts {
				if t.Name == s.Name {
					users = append(users, tracking{in.Name, scriptWeight(c, t)})
				}
			}
		}
		if len(users) == 0 {
			continue // keepalived drops it: "Warning - script chk is not used"
		}
		for _, e := range es {
			if t, ok := trackerFor(e, "script", s.Name); ok {
				state = t
			}
		}
		if !any {
			p("------< VRRP Scripts >------")
			any = true
		}
		rise, fall := s.Rise, s.Fall
		if rise == 0 {
			rise = 1
		}
		if fall == 0 {
			fall = 1
		}
		interval := s.Interval
		if interval == 0 {
			interval = time.Second
		}
		// result counts rise/fall: rise+fall-1 is fully up, 0 fully down.
		result, status := 0, "INIT"
		if state.Known {
			status = onOff(state.Up, "GOOD", "BAD")
			if state.Up {
				result = rise + fall - 1
			}
		}
		p(" VRRP Script = %s", s.Name)
		p("   Command = %s", quoteCommand(&s))
		p("   Interval = %d sec", int(interval/time.Second))
		// keepalived keeps an unset timeout at 0 (it waits an interval
		// when running the script) and prints 0; keepwatch's config has
		// already put the interval in, so an interval-long timeout is
		// taken for an unset one.
		timeout := s.Timeout
		if timeout == interval {
			timeout = 0
		}
		p("   Timeout = %d sec", int(timeout/time.Second))
		p("   Weight = %d", s.Weight)
		p("   Rise = %d", rise)
		p("   Fall = %d", fall)
		p("   Result = %d", result)
		p("   Insecure = no")
		p("   Init state = %s", onOff(state.Known, "unknown", "init"))
		p("   Status = %s", status)
		p("   Script uid:gid = %s", h.IDs(userOr(s.User, c.Global.ScriptUser), groupOr(&s, &c.Global)))
		p("   VRRP instances :")
		p("   Tracking instances :")
		for _, u := range users {
			p("     %s, weight %d", u.inst, u.weight)
		}
		p("   State = idle")
	}
}

func writeTrackFiles(p printer, c *config.Config, es []Entry) {
	if len(c.TrackFiles) == 0 {
		return
	}
	p("------< VRRP Track files >------")
	for _, f := range c.TrackFiles {
		var value int64
		for _, e := range es {
			if t, ok := trackerFor(e, "file", f.Name); ok {
				value = t.Value
			}
		}
		w := f.Weight
		if w == 0 {
			w = 1
		}
		p(" Track file = %s", f.Name)
		p("   File = %s", f.File)
		p("   Status = %d", value)
		p("   Weight = %d", w)
		p("   Tracking instances :")
		for _, in := range c.Instances {
			for _, t := range in.TrackFiles {
				if t.Name == f.Name {
					p("     %s, weight %d", in.Name, fileWeight(c, t))
				}
			}
		}
	}
}

func instance(c *config.Config, name string) *config.Instance {
	for i := range c.Instances {
		if c.Instances[i].Name == name {
			return &c.Instances[i]
		}
	}
	return nil
}

// downAdverts is the adverts a backup misses before it takes over
// (vrrp_down_timer_adverts / down_timer_adverts, default 3).
func downAdverts(global, own int) int {
	switch {
	case own != 0:
		return own
	case global != 0:
		return global
	}
	return 3
}

func scriptWeight(c *config.Config, t config.TrackRef) int {
	if t.Weight != nil {
		return *t.Weight
	}
	for _, s := range c.Scripts {
		if s.Name == t.Name {
			return s.Weight
		}
	}
	return 0
}

// trimFloat prints 1 as "1" and 0.5 as "0.5", as keepalived's %g-like
// output does for whole and fractional seconds.
func trimFloat(f float64) string {
	s := fmt.Sprintf("%f", f)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
