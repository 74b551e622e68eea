package kaconf

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// Print writes c as keepalived.conf text that Load reads back into the same
// model (positions aside). Values equal to keepalived's defaults that Load
// fills in are left out where that keeps the output close to what people
// write; keywords keepwatch keeps but ignores (Extra) are written back as
// they were read.
func Print(w io.Writer, c *config.Config) error {
	p := &printer{w: w}
	p.global(&c.Global)
	p.settings(c.Extra)
	if c.SSL != nil {
		p.open("SSL")
		p.opt("password", string(c.SSL.Password))
		p.opt("ca", c.SSL.CA)
		p.opt("certificate", c.SSL.Certificate)
		p.opt("key", c.SSL.Key)
		p.close()
	}
	if len(c.StaticAddrs) > 0 {
		p.open("static_ipaddress")
		for i := range c.StaticAddrs {
			p.line(addressLine(&c.StaticAddrs[i])...)
		}
		p.close()
	}
	if len(c.StaticRoutes) > 0 {
		p.open("static_routes")
		for i := range c.StaticRoutes {
			p.line(routeLine(&c.StaticRoutes[i])...)
		}
		p.close()
	}
	if len(c.StaticRules) > 0 {
		p.open("static_rules")
		for i := range c.StaticRules {
			p.line(ruleLine(&c.StaticRules[i])...)
		}
		p.close()
	}
	for i := range c.Scripts {
		p.vrrpScript(&c.Scripts[i])
	}
	for i := range c.TrackFiles {
		p.trackFile(&c.TrackFiles[i])
	}
	for i := range c.TrackProcesses {
		p.trackProcess(&c.TrackProcesses[i])
	}
	for i := range c.GarpGroups {
		g := &c.GarpGroups[i]
		p.open("garp_group")
		// Written even when 0: keepalived drops a garp_group with no delay.
		p.line("garp_interval", seconds(g.GarpInterval))
		p.line("gna_interval", seconds(g.GnaInterval))
		p.list("interfaces", g.Interfaces)
		p.close()
	}
	for i := range c.Instances {
		p.instance(&c.Instances[i])
	}
	for i := range c.SyncGroups {
		p.syncGroup(&c.SyncGroups[i])
	}
	for i := range c.VSGroups {
		g := &c.VSGroups[i]
		p.open("virtual_server_group", g.Name)
		for j := range g.Entries {
			p.line(vsgEntry(&g.Entries[j]))
		}
		p.close()
	}
	for i := range c.VirtualServers {
		p.virtualServer(&c.VirtualServers[i])
	}
	return p.err
}

// printer writes indented lines and keeps the first write error.
type printer struct {
	w     io.Writer
	err   error
	depth int
	buf   []byte
}

// line writes one line of words; words are quoted by the caller.
func (p *printer) line(words ...string) {
	if p.err != nil {
		return
	}
	p.buf = p.buf[:0]
	for i := 0; i < p.depth; i++ {
		p.buf = append(p.buf, "    "...)
	}
	for i, w := range words {
		if i > 0 {
			p.buf = append(p.buf, ' ')
		}
		p.buf = append(p.buf, w...)
	}
	p.buf = append(p.buf, '\n')
	_, p.err = p.w.Write(p.buf)
}

func (p *printer) open(words ...string) {
	qs := make([]string, len(words))
	for i, w := range words {
		qs[i] = w
		if i > 0 {
			qs[i] = quote(w)
		}
	}
	p.line(append(qs, "{")...)
	p.depth++
}

func (p *printer) close() {
	p.depth--
	p.line("}")
	if p.depth == 0 {
		p.line()
	}
}

// quote double-quotes a word that would not read back as one word.
func quote(s string) string {
	if s == "" || strings.ContainsAny(s, " \t#!{}\"") {
		return `"` + s + `"`
	}
	return s
}

// scriptQuote quotes a script command for keepalived's quoted keywords,
// where escapes are processed.
func scriptQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// opt writes `kw value` when value is set.
func (p *printer) opt(kw, value string) {
	if value != "" {
		p.line(kw, quote(value))
	}
}

func (p *printer) flag(kw string, on bool) {
	if on {
		p.line(kw)
	}
}

func (p *printer) num(kw string, v int) {
	if v != 0 {
		p.line(kw, strconv.Itoa(v))
	}
}

func (p *printer) numPtr(kw string, v *int) {
	if v != nil {
		p.line(kw, strconv.Itoa(*v))
	}
}

func (p *printer) dur(kw string, d time.Duration) {
	if d != 0 {
		p.line(kw, seconds(d))
	}
}

func (p *printer) durPtr(kw string, d *time.Duration) {
	if d != nil {
		p.line(kw, seconds(*d))
	}
}

// secs writes a whole number of seconds (keywords read as integers).
func (p *printer) secs(kw string, d time.Duration) {
	if d != 0 {
		p.line(kw, strconv.FormatInt(int64(d/time.Second), 10))
	}
}

func (p *printer) secsPtr(kw string, d *time.Duration) {
	if d != nil {
		p.line(kw, strconv.FormatInt(int64(*d/time.Second), 10))
	}
}

func (p *printer) boolPtr(kw string, b *bool) {
	if b != nil {
		p.line(kw, strconv.FormatBool(*b))
	}
}

func (p *printer) addr(kw string, a netip.Addr) {
	if a.IsValid() {
		p.line(kw, a.String())
	}
}

func (p *printer) list(kw string, items []string) {
	if items == nil {
		return
	}
	p.open(kw)
	for _, s := range items {
		p.line(quote(s))
	}
	p.close()
}

func (p *printer) script(kw string, s *config.Script) {
	if s == nil {
		return
	}
	words := []string{kw}
	if s.Command != "" || s.User != "" {
		words = append(words, scriptQuote(s.Command))
	}
	if s.User != "" {
		words = append(words, quote(s.User))
		if s.Group != "" {
			words = append(words, quote(s.Group))
		}
	}
	p.line(words...)
}

// settings writes back keywords kept as they were read.
func (p *printer) settings(ss []config.Setting) {
	for i := range ss {
		s := &ss[i]
		words := []string{s.Keyword}
		for _, a := range s.Args {
			words = append(words, quote(a))
		}
		if s.Block == nil {
			p.line(words...)
			continue
		}
		p.line(append(words, "{")...)
		p.depth++
		p.settings(s.Block)
		p.depth--
		p.line("}")
	}
}

func (p *printer) global(g *config.Global) {
	p.opt("net_namespace", g.NetNamespace)
	if g.NetNamespaceIPVS != nil {
		if *g.NetNamespaceIPVS == "" {
			p.line("net_namespace_ipvs")
		} else {
			p.opt("net_namespace_ipvs", *g.NetNamespaceIPVS)
		}
	}
	p.open("global_defs")
	p.opt("router_id", g.RouterID)
	p.list("notification_email", g.NotificationEmail)
	p.opt("notification_email_from", g.NotificationEmailFrom)
	if g.SMTPServer != "" {
		p.line("smtp_server", quote(g.SMTPServer), strconv.Itoa(g.SMTPPort))
	}
	p.opt("smtp_helo_name", g.SMTPHeloName)
	if g.SMTPConnectTimeout != config.DefaultSMTPTimeout {
		p.dur("smtp_connect_timeout", g.SMTPConnectTimeout)
	}
	p.boolPtr("smtp_alert", g.SMTPAlert)
	p.boolPtr("smtp_alert_vrrp", g.SMTPAlertVRRP)
	p.boolPtr("smtp_alert_checker", g.SMTPAlertChecker)
	p.flag("no_email_faults", g.NoEmailFaults)
	p.flag("no_checker_emails", g.NoCheckerEmails)
	if g.ScriptUser != "" {
		if g.ScriptGroup != "" {
			p.line("script_user", quote(g.ScriptUser), quote(g.ScriptGroup))
		} else {
			p.line("script_user", quote(g.ScriptUser))
		}
	}
	p.flag("enable_script_security", g.EnableScriptSecurity)
	p.script("startup_script", g.StartupScript)
	p.script("shutdown_script", g.ShutdownScript)
	p.dur("startup_script_timeout", g.StartupScriptTimeout)
	p.dur("shutdown_script_timeout", g.ShutdownScriptTimeout)
	p.fifo("notify_fifo", g.NotifyFIFO)
	p.fifo("vrrp_notify_fifo", g.VRRPNotifyFIFO)
	p.fifo("lvs_notify_fifo", g.LVSNotifyFIFO)
	if g.VRRPVersion != config.DefaultVRRPVersion {
		p.num("vrrp_version", g.VRRPVersion)
	}
	p.addr("vrrp_mcast_group4", g.MulticastGroup4)
	p.addr("vrrp_mcast_group6", g.MulticastGroup6)
	p.secs("vrrp_garp_master_delay", g.GarpMasterDelay)
	p.num("vrrp_garp_master_repeat", g.GarpMasterRepeat)
	p.secs("vrrp_garp_master_refresh", g.GarpMasterRefresh)
	p.num("vrrp_garp_master_refresh_repeat", g.GarpMasterRefreshRep)
	p.secsPtr("vrrp_garp_lower_prio_delay", g.GarpLowerPrioDelay)
	p.numPtr("vrrp_garp_lower_prio_repeat", g.GarpLowerPrioRepeat)
	p.dur("vrrp_garp_interval", g.GarpInterval)
	p.dur("vrrp_gna_interval", g.GnaInterval)
	p.flag("vrrp_min_garp", g.MinGarp)
	p.flag("vrrp_skip_check_adv_addr", g.SkipCheckAdvAddr)
	p.flag("vrrp_strict", g.Strict)
	p.flag("vrrp_check_unicast_src", g.CheckUnicastSrc)
	p.dur("vrrp_startup_delay", g.StartupDelay)
	p.num("vrrp_down_timer_adverts", g.DownTimerAdverts)
	p.flag("vrrp_lower_prio_no_advert", g.LowerPrioNoAdvert)
	p.flag("vrrp_higher_prio_send_advert", g.HigherPrioSendAdvert)
	p.flag("v3_checksum_as_v2", g.V3ChecksumAsV2)
	p.flag("vrrp_owner_ignore_adverts", g.OwnerIgnoreAdverts)
	p.flag("vrrp_notify_priority_changes", g.NotifyPriorityChanges)
	p.num("max_auto_priority", g.MaxAutoPriority)
	p.flag("dynamic_interfaces", g.DynamicInterfaces)
	p.opt("default_interface", g.DefaultInterface)
	p.opt("vmac_prefix", g.VMACPrefix)
	p.flag("log_unknown_vrids", g.LogUnknownVRIDs)
	p.flag("lvs_flush", g.LVSFlush)
	switch g.LVSFlushOnStop {
	case "":
	case "all":
		p.line("lvs_flush_on_stop")
	default:
		p.line("lvs_flush_on_stop", g.LVSFlushOnStop)
	}
	var to []string
	for _, t := range []struct {
		k string
		d time.Duration
	}{{"tcp", g.LVSTimeoutTCP}, {"tcpfin", g.LVSTimeoutFin}, {"udp", g.LVSTimeoutUDP}} {
		if t.d != 0 {
			to = append(to, t.k, strconv.FormatInt(int64(t.d/time.Second), 10))
		}
	}
	if len(to) > 0 {
		p.line(append([]string{"lvs_timeouts"}, to...)...)
	}
	if d := g.LVSSyncDaemon; d != nil {
		words := []string{"lvs_sync_daemon", quote(d.Interface)}
		if d.Instance != "" {
			words = append(words, quote(d.Instance))
		}
		for _, o := range []struct {
			k string
			v int
		}{{"id", d.ID}, {"maxlen", d.MaxLen}, {"port", d.Port}, {"ttl", d.TTL}} {
			if o.v != 0 {
				words = append(words, o.k, strconv.Itoa(o.v))
			}
		}
		if d.Group != "" {
			words = append(words, "group", d.Group)
		}
		p.line(words...)
	}
	p.flag("checker_log_all_failures", g.CheckerLogAllFailures)
	p.flag("rs_init_notifies", g.RSInitNotifies)
	p.settings(g.Extra)
	p.close()
}

func (p *printer) fifo(kw string, f *config.FIFO) {
	if f == nil {
		return
	}
	if f.Path != "" {
		words := []string{kw, quote(f.Path)}
		if f.User != "" {
			words = append(words, quote(f.User))
			if f.Group != "" {
				words = append(words, quote(f.Group))
			}
		}
		p.line(words...)
	}
	p.script(kw+"_script", f.Script)
}

func (p *printer) vrrpScript(s *config.Script) {
	p.open("vrrp_script", s.Name)
	p.line("script", scriptQuote(s.Command))
	p.dur("interval", s.Interval)
	p.dur("timeout", s.Timeout)
	if s.Weight != 0 || s.Reverse {
		p.weight(s.Weight, s.Reverse)
	}
	if s.Rise != 1 {
		p.num("rise", s.Rise)
	}
	if s.Fall != 1 {
		p.num("fall", s.Fall)
	}
	if s.User != "" {
		if s.Group != "" {
			p.line("user", quote(s.User), quote(s.Group))
		} else {
			p.line("user", quote(s.User))
		}
	}
	p.flag("init_fail", s.InitFail)
	p.close()
}

func (p *printer) weight(w int, reverse bool) {
	if reverse {
		p.line("weight", strconv.Itoa(w), "reverse")
	} else {
		p.line("weight", strconv.Itoa(w))
	}
}

func (p *printer) trackFile(f *config.TrackFile) {
	p.open("track_file", f.Name)
	p.opt("file", f.File)
	p.weight(f.Weight, f.Reverse)
	if f.InitFile != nil {
		words := []string{"init_file", strconv.Itoa(*f.InitFile)}
		if f.InitOverwrite {
			words = append(words, "overwrite")
		}
		p.line(words...)
	}
	p.close()
}

func (p *printer) trackProcess(t *config.TrackProcess) {
	p.open("vrrp_track_process", t.Name)
	if t.Process != "" {
		words := []string{"process", quote(t.Process)}
		for _, a := range t.Args {
			words = append(words, quote(a))
		}
		p.line(words...)
	}
	p.opt("param_match", t.ParamMatch)
	if t.Weight != 0 || t.Reverse {
		p.weight(t.Weight, t.Reverse)
	}
	if t.Quorum != 1 {
		p.num("quorum", t.Quorum)
	}
	p.num("quorum_max", t.QuorumMax)
	p.dur("delay", t.Delay)
	p.dur("terminate_delay", t.TerminateDelay)
	p.dur("fork_delay", t.ForkDelay)
	p.flag("full_command", t.FullCommand)
	p.close()
}

func (p *printer) trackRefs(kw string, refs []config.TrackRef) {
	if len(refs) == 0 {
		return
	}
	p.open(kw)
	for _, r := range refs {
		words := []string{quote(r.Name)}
		if r.Weight != nil {
			words = append(words, "weight", strconv.Itoa(*r.Weight))
		}
		if r.Reverse != nil {
			if *r.Reverse {
				words = append(words, "reverse")
			} else {
				words = append(words, "noreverse")
			}
		}
		p.line(words...)
	}
	p.close()
}

func (p *printer) notify(n *config.Notify) {
	p.script("notify_master", n.Master)
	p.script("notify_backup", n.Backup)
	p.script("notify_fault", n.Fault)
	p.script("notify_stop", n.Stop)
	p.script("notify_deleted", n.Deleted)
	p.script("notify", n.Any)
	p.script("notify_master_rx_lower_pri", n.MasterRxLowerPri)
	p.boolPtr("smtp_alert", n.SMTPAlert)
	p.boolPtr("notify_priority_changes", n.PriorityChanges)
}

func (p *printer) instance(in *config.Instance) {
	p.open("vrrp_instance", in.Name)
	p.opt("state", in.InitialState)
	p.opt("interface", in.Interface)
	p.num("virtual_router_id", in.VRID)
	p.num("priority", in.Priority)
	p.dur("advert_int", in.AdvertInterval)
	p.num("version", in.Version)
	p.flag("nopreempt", in.NoPreempt)
	p.dur("preempt_delay", in.PreemptDelay)
	if in.Accept != nil {
		if *in.Accept {
			p.line("accept")
		} else {
			p.line("no_accept")
		}
	}
	p.flag("dont_track_primary", in.DontTrackPrimary)
	p.boolPtr("strict_mode", in.Strict)
	p.boolPtr("skip_check_adv_addr", in.SkipCheckAdvAddr)
	if a := in.Auth; a != nil {
		p.open("authentication")
		p.opt("auth_type", a.Type)
		p.opt("auth_pass", string(a.Pass))
		p.close()
	}
	p.addrs("virtual_ipaddress", in.VIPs)
	p.addrs("virtual_ipaddress_excluded", in.ExcludedVIPs)
	if len(in.Routes) > 0 {
		p.open("virtual_routes")
		for i := range in.Routes {
			p.line(routeLine(&in.Routes[i])...)
		}
		p.close()
	}
	if len(in.Rules) > 0 {
		p.open("virtual_rules")
		for i := range in.Rules {
			p.line(ruleLine(&in.Rules[i])...)
		}
		p.close()
	}
	p.addr("mcast_src_ip", in.MulticastSrc)
	p.addr("mcast_dst_ip", in.MulticastDst)
	p.addr("unicast_src_ip", in.UnicastSrc)
	if len(in.UnicastPeers) > 0 {
		p.open("unicast_peer")
		for _, u := range in.UnicastPeers {
			words := []string{u.Addr.String()}
			if u.MinTTL != 0 {
				words = append(words, "min_ttl", strconv.Itoa(u.MinTTL))
			}
			if u.MaxTTL != 0 {
				words = append(words, "max_ttl", strconv.Itoa(u.MaxTTL))
			}
			p.line(words...)
		}
		p.close()
	}
	p.num("unicast_ttl", in.UnicastTTL)
	p.flag("check_unicast_src", in.CheckUnicastSrc)
	p.flag("unicast_fault_no_peer", in.UnicastFaultNoPeer)
	p.boolPtr("v3_checksum_as_v2", in.V3ChecksumAsV2)
	if v := in.VMAC; v != nil {
		words := []string{"use_vmac"}
		if v.Name != "" {
			words = append(words, quote(v.Name))
		}
		if v.MAC != "" {
			words = append(words, v.MAC)
		}
		if v.Notify {
			words = append(words, "netlink_notify_msg")
		}
		if v.Group != "" {
			words = append(words, "group", quote(v.Group))
		}
		p.line(words...)
	}
	p.flag("vmac_xmit_base", in.VMACXmitBase)
	p.secsPtr("garp_master_delay", in.GarpMasterDelay)
	p.numPtr("garp_master_repeat", in.GarpMasterRepeat)
	p.secsPtr("garp_master_refresh", in.GarpMasterRefresh)
	p.numPtr("garp_master_refresh_repeat", in.GarpMasterRefreshRep)
	p.secsPtr("garp_lower_prio_delay", in.GarpLowerPrioDelay)
	p.numPtr("garp_lower_prio_repeat", in.GarpLowerPrioRepeat)
	p.num("down_timer_adverts", in.DownTimerAdverts)
	p.boolPtr("lower_prio_no_advert", in.LowerPrioNoAdvert)
	p.boolPtr("higher_prio_send_advert", in.HigherPrioSendAdvert)
	p.flag("promote_secondaries", in.PromoteSecondaries)
	p.trackRefs("track_script", in.TrackScripts)
	p.trackRefs("track_interface", in.TrackInterfaces)
	p.trackRefs("track_file", in.TrackFiles)
	p.trackRefs("track_process", in.TrackProcesses)
	p.notify(&in.Notify)
	p.settings(in.Extra)
	p.close()
}

func (p *printer) syncGroup(g *config.SyncGroup) {
	p.open("vrrp_sync_group", g.Name)
	p.list("group", g.Members)
	p.trackRefs("track_script", g.TrackScripts)
	p.trackRefs("track_interface", g.TrackInterfaces)
	p.trackRefs("track_file", g.TrackFiles)
	p.trackRefs("track_process", g.TrackProcesses)
	p.flag("sync_group_tracking_weight", g.TrackingWeight)
	p.notify(&g.Notify)
	p.settings(g.Extra)
	p.close()
}

func (p *printer) addrs(kw string, as []config.Address) {
	if len(as) == 0 {
		return
	}
	p.open(kw)
	for i := range as {
		p.line(addressLine(&as[i])...)
	}
	p.close()
}

// prefixString prints a host prefix as a bare address.
func prefixString(pfx netip.Prefix) string {
	if pfx.Bits() == pfx.Addr().BitLen() {
		return pfx.Addr().String()
	}
	return pfx.String()
}

func addressLine(a *config.Address) []string {
	w := []string{prefixString(a.Prefix)}
	add := func(k, v string) {
		if v != "" {
			w = append(w, k, quote(v))
		}
	}
	flag := func(k string, on bool) {
		if on {
			w = append(w, k)
		}
	}
	add("brd", a.Broadcast)
	add("dev", a.Dev)
	flag("use_vmac", a.UseVMAC)
	add("scope", a.Scope)
	add("label", a.Label)
	if a.Peer.IsValid() {
		w = append(w, "peer", prefixString(a.Peer))
	}
	flag("home", a.Home)
	flag("-nodad", a.NoDAD)
	flag("mngtmpaddr", a.MngTmpAddr)
	flag("noprefixroute", a.NoPrefixRoute)
	flag("autojoin", a.AutoJoin)
	flag("no_track", a.NoTrack)
	if a.PreferredLft != nil {
		if *a.PreferredLft < 0 {
			w = append(w, "preferred_lft", "forever")
		} else {
			w = append(w, "preferred_lft", strconv.FormatInt(*a.PreferredLft, 10))
		}
	}
	add("track_group", a.TrackGroup)
	return w
}

func routeLine(r *config.Route) []string {
	var w []string
	if r.Type != "" {
		w = append(w, r.Type)
	}
	if r.Dst.IsValid() {
		w = append(w, prefixString(r.Dst))
	} else {
		w = append(w, "default")
	}
	add := func(k, v string) {
		if v != "" {
			w = append(w, k, quote(v))
		}
	}
	if r.Src.IsValid() {
		w = append(w, "src", r.Src.String())
	}
	if r.Via.IsValid() {
		w = append(w, "via", r.Via.String())
	}
	add("dev", r.Dev)
	add("table", r.Table)
	if r.Metric != 0 {
		w = append(w, "metric", strconv.Itoa(r.Metric))
	}
	add("scope", r.Scope)
	add("protocol", r.Proto)
	if r.OnLink {
		w = append(w, "onlink")
	}
	if r.NoTrack {
		w = append(w, "no_track")
	}
	add("track_group", r.TrackGroup)
	for _, x := range r.Rest {
		w = append(w, quote(x))
	}
	return w
}

func ruleLine(r *config.Rule) []string {
	var w []string
	add := func(k, v string) {
		if v != "" {
			w = append(w, k, quote(v))
		}
	}
	switch r.Family {
	case 4:
		w = append(w, "inet")
	case 6:
		w = append(w, "inet6")
	}
	if r.From.IsValid() {
		w = append(w, "from", prefixString(r.From))
	}
	if r.To.IsValid() {
		w = append(w, "to", prefixString(r.To))
	}
	add("iif", r.IIf)
	add("oif", r.OIf)
	add("fwmark", r.FWMark)
	if r.Priority != 0 {
		w = append(w, "priority", strconv.Itoa(r.Priority))
	}
	add("table", r.Table)
	if r.Action != "" {
		w = append(w, strings.Fields(r.Action)...)
	}
	if r.NoTrack {
		w = append(w, "no_track")
	}
	for _, x := range r.Rest {
		w = append(w, quote(x))
	}
	if len(w) == 0 {
		w = append(w, "from", "all")
	}
	return w
}

func vsgEntry(e *config.VSGroupEntry) string {
	if e.Text != "" {
		return e.Text
	}
	if e.FWMark != 0 {
		switch e.Family {
		case 4:
			return fmt.Sprintf("fwmark %d inet", e.FWMark)
		case 6:
			return fmt.Sprintf("fwmark %d inet6", e.FWMark)
		}
		return fmt.Sprintf("fwmark %d", e.FWMark)
	}
	s := e.First.String()
	if e.Last.IsValid() && e.Last != e.First {
		s += "-" + e.Last.String()
	}
	if e.Port != 0 {
		s += " " + strconv.Itoa(e.Port)
	}
	return s
}

func (p *printer) checkDefaults(d *config.CheckDefaults) {
	p.dur("delay_loop", d.DelayLoop)
	p.dur("connect_timeout", d.ConnectTimeout)
	p.numPtr("retry", d.Retry)
	p.dur("delay_before_retry", d.DelayBeforeRetry)
	p.durPtr("warmup", d.Warmup)
}

func (p *printer) virtualServer(vs *config.VirtualServer) {
	switch {
	case vs.Group != "":
		p.open("virtual_server", "group", vs.Group)
	case vs.FWMark != 0:
		p.open("virtual_server", "fwmark", strconv.FormatUint(uint64(vs.FWMark), 10))
	case vs.Port != 0:
		p.open("virtual_server", vs.Addr.String(), strconv.Itoa(vs.Port))
	default:
		p.open("virtual_server", vs.Addr.String())
	}
	p.checkDefaults(&vs.CheckDefaults)
	p.opt("lb_algo", vs.Scheduler)
	if vs.Method != "" {
		words := []string{"lb_kind", vs.Method}
		if vs.TunnelType != "" {
			words = append(words, "type", vs.TunnelType)
		}
		if vs.TunnelPort != 0 {
			words = append(words, "port", strconv.Itoa(vs.TunnelPort))
		}
		if vs.TunnelCsum != "" {
			words = append(words, vs.TunnelCsum)
		}
		p.line(words...)
	}
	p.opt("protocol", vs.Protocol)
	switch vs.IPFamily {
	case 4:
		p.line("ip_family", "inet")
	case 6:
		p.line("ip_family", "inet6")
	}
	p.secs("persistence_timeout", vs.PersistenceTimeout)
	p.opt("persistence_granularity", vs.PersistenceGranularity)
	p.opt("persistence_engine", vs.PersistenceEngine)
	p.flag("ops", vs.OPS)
	p.flag("hashed", vs.Hashed)
	for _, f := range vs.SchedFlags {
		p.line(f)
	}
	p.opt("virtualhost", vs.Virtualhost)
	p.flag("ha_suspend", vs.HASuspend)
	p.flag("inhibit_on_failure", vs.InhibitOnFailure)
	p.flag("alpha", vs.Alpha)
	p.flag("omega", vs.Omega)
	if vs.Quorum != config.DefaultQuorum {
		p.num("quorum", vs.Quorum)
	}
	p.num("hysteresis", vs.Hysteresis)
	p.script("quorum_up", vs.QuorumUp)
	p.script("quorum_down", vs.QuorumDown)
	if s := vs.SorryServer; s != nil {
		if s.Port != 0 {
			p.line("sorry_server", s.Addr.String(), strconv.Itoa(s.Port))
		} else {
			p.line("sorry_server", s.Addr.String())
		}
	}
	p.flag("sorry_server_inhibit", vs.SorryServerInhibit)
	p.opt("sorry_server_lvs_method", vs.SorryServerMethod)
	p.boolPtr("smtp_alert", vs.SMTPAlert)
	p.opt("snmp_name", vs.SNMPName)
	p.settings(vs.Extra)
	for i := range vs.RealServers {
		p.realServer(&vs.RealServers[i])
	}
	p.close()
}

func (p *printer) realServer(rs *config.RealServer) {
	if rs.Port != 0 {
		p.open("real_server", rs.Addr.String(), strconv.Itoa(rs.Port))
	} else {
		p.open("real_server", rs.Addr.String())
	}
	p.line("weight", strconv.Itoa(rs.Weight))
	p.opt("lvs_method", rs.Method)
	p.boolPtr("inhibit_on_failure", rs.InhibitOnFailure)
	p.num("uthreshold", rs.UThreshold)
	p.num("lthreshold", rs.LThreshold)
	p.boolPtr("alpha", rs.Alpha)
	p.opt("virtualhost", rs.Virtualhost)
	p.boolPtr("smtp_alert", rs.SMTPAlert)
	p.script("notify_up", rs.NotifyUp)
	p.script("notify_down", rs.NotifyDown)
	p.checkDefaults(&rs.CheckDefaults)
	p.settings(rs.Extra)
	for i := range rs.Checkers {
		p.checker(&rs.Checkers[i])
	}
	p.close()
}

func (p *printer) checker(c *config.Checker) {
	p.open(string(c.Type))
	p.addr("connect_ip", c.ConnectIP)
	p.num("connect_port", c.ConnectPort)
	p.addr("bindto", c.BindTo)
	p.num("bind_port", c.BindPort)
	p.opt("bind_if", c.BindIf)
	if c.FWMark != 0 {
		p.line("fwmark", strconv.FormatUint(uint64(c.FWMark), 10))
	}
	p.checkDefaults(&c.CheckDefaults)
	p.boolPtr("alpha", c.Alpha)
	p.boolPtr("log_all_failures", c.LogAllFailures)
	if h := c.HTTP; h != nil {
		for i := range h.URLs {
			p.url(&h.URLs[i])
		}
		if h.Protocol != "1.0" {
			p.opt("http_protocol", h.Protocol)
		}
		p.opt("virtualhost", h.Virtualhost)
		p.flag("fast_recovery", h.FastRecovery)
		p.flag("enable_sni", h.EnableSNI)
		p.opt("sni_name", h.SNIName)
		p.flag("tls_compliant", h.TLSCompliant)
	}
	if m := c.Misc; m != nil {
		p.script("misc_path", &m.Path)
		p.dur("misc_timeout", m.Timeout)
		p.flag("misc_dynamic", m.Dynamic)
	}
	if s := c.SMTP; s != nil {
		p.opt("helo_name", s.HeloName)
	}
	if d := c.DNS; d != nil {
		p.opt("type", d.Type)
		p.opt("name", d.Name)
	}
	if u := c.UDP; u != nil {
		if u.Payload != nil {
			p.line("payload", hex.EncodeToString(u.Payload))
		}
		if u.RequireReply {
			if u.ReplyPattern != "" {
				p.line("require_reply", quote(u.ReplyPattern))
			} else {
				p.line("require_reply")
			}
		}
		p.num("min_reply_length", u.MinReplyLength)
		p.num("max_reply_length", u.MaxReplyLength)
	}
	if f := c.File; f != nil {
		p.opt("track_file", f.TrackFile)
		if f.Weight != 0 || f.Reverse {
			p.weight(f.Weight, f.Reverse)
		}
	}
	if b := c.BFD; b != nil {
		p.opt("name", b.Name)
	}
	p.settings(c.Extra)
	p.close()
}

func (p *printer) url(u *config.URL) {
	p.open("url")
	p.opt("path", u.Path)
	p.opt("digest", u.Digest)
	if len(u.StatusCodes) > 0 {
		words := []string{"status_code"}
		for _, r := range u.StatusCodes {
			if r.From == r.To {
				words = append(words, strconv.Itoa(r.From))
			} else {
				words = append(words, fmt.Sprintf("%d-%d", r.From, r.To))
			}
		}
		p.line(words...)
	}
	p.opt("virtualhost", u.Virtualhost)
	p.opt("regex", u.Regex)
	p.flag("regex_no_match", u.RegexNoMatch)
	if len(u.RegexOptions) > 0 {
		words := []string{"regex_options"}
		for _, o := range u.RegexOptions {
			words = append(words, quote(o))
		}
		p.line(words...)
	}
	p.num("regex_min_offset", u.RegexMinOffset)
	p.num("regex_max_offset", u.RegexMaxOffset)
	p.close()
}
