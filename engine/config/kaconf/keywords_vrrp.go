package kaconf

import (
	"net/netip"
	"strings"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

func (p *parser) inst() *config.Instance { return &p.cfg.Instances[len(p.cfg.Instances)-1] }
func (p *parser) sg() *config.SyncGroup  { return &p.cfg.SyncGroups[len(p.cfg.SyncGroups)-1] }
func (p *parser) vscript() *config.Script {
	return &p.cfg.Scripts[len(p.cfg.Scripts)-1]
}
func (p *parser) tfile() *config.TrackFile { return &p.cfg.TrackFiles[len(p.cfg.TrackFiles)-1] }
func (p *parser) tproc() *config.TrackProcess {
	return &p.cfg.TrackProcesses[len(p.cfg.TrackProcesses)-1]
}
func (p *parser) garp() *config.GarpGroup { return &p.cfg.GarpGroups[len(p.cfg.GarpGroups)-1] }

// named checks the NAME of a named block: keepalived wants exactly one
// word ("vrrp_instance must have a name") and skips a block whose name it
// has seen before (for the same keyword).
func (p *parser) named(l *Line) (string, bool) {
	kw := arg(l, 0)
	if len(l.Words) != 2 {
		p.errorf(l, 0, kw, "%s must have a name", kw)
		p.last(config.ItemSkipped)
		if kw == "vrrp_instance" {
			// The block is skipped: whatever it held does not run.
			p.last(config.InstanceNotStarted)
		}
		return "", false
	}
	name := l.Words[1].Text
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	key := kw + "\x00" + name
	if p.seen[key] {
		// keepalived runs the first block of that name and skips this one
		// ("vrrp instance VI_1 already defined") [verified 2.2.7].
		p.errorf(l, 1, kw, "%s %s already defined", kw, name)
		p.last(config.ItemSkipped)
		return "", false
	}
	p.seen[key] = true
	return name, true
}

func openInstance(p *parser, l *Line) table {
	name, ok := p.named(l)
	if !ok {
		return nil
	}
	p.stateSet = false
	p.advertPos = config.Pos{}
	p.curInst = name
	p.cfg.Instances = append(p.cfg.Instances, config.Instance{
		Pos:            p.pos(l, 0),
		Name:           name,
		InitialState:   "BACKUP",
		Priority:       config.DefaultPriority,
		AdvertInterval: config.DefaultAdvertInterval,
	})
	return instanceKeywords
}

// closeInstance applies the checks keepalived makes when an instance block
// ends.
func closeInstance(p *parser, end *Line) {
	in := p.inst()
	p.advertInterval(in)
	if in.VMAC != nil && len(in.UnicastPeers) > 0 && !in.VMACXmitBase {
		p.warnf(end, 0, "use_vmac", "(%s) unicast with use_vmac requires vmac_xmit_base - setting", in.Name)
		p.last(config.Noted)
		in.VMACXmitBase = true
	}
	p.curInst = ""
}

func openSyncGroup(p *parser, l *Line) table {
	name, ok := p.named(l)
	if !ok {
		return nil
	}
	p.cfg.SyncGroups = append(p.cfg.SyncGroups, config.SyncGroup{Pos: p.pos(l, 0), Name: name})
	return syncGroupKeywords
}

func openScript(p *parser, l *Line) table {
	name, ok := p.named(l)
	if !ok {
		return nil
	}
	// Defaults: vrrp_track.h / vrrp_data.c (reference §1.5).
	p.cfg.Scripts = append(p.cfg.Scripts, config.Script{
		Pos: p.pos(l, 0), Name: name, Interval: config.DefaultScriptInterval, Rise: 1, Fall: 1,
	})
	return scriptKeywords
}

// closeScript drops a vrrp_script without a script, as keepalived does.
func closeScript(p *parser, end *Line) {
	s := p.vscript()
	if s.Command == "" {
		p.errorf(end, 0, "vrrp_script", "no script set for vrrp_script %s - removing", s.Name)
		p.last(config.ItemSkipped)
		p.cfg.Scripts = p.cfg.Scripts[:len(p.cfg.Scripts)-1]
		return
	}
	if s.Timeout == 0 {
		s.Timeout = s.Interval
	}
}

func openTrackFile(p *parser, l *Line) table {
	name, ok := p.named(l)
	if !ok {
		return nil
	}
	p.cfg.TrackFiles = append(p.cfg.TrackFiles, config.TrackFile{Pos: p.pos(l, 0), Name: name, Weight: 1})
	return trackFileKeywords
}

func closeTrackFile(p *parser, end *Line) {
	if p.tfile().File == "" {
		p.errorf(end, 0, "track_file", "no file set for track_file %s - removing", p.tfile().Name)
		p.last(config.ItemSkipped)
		p.cfg.TrackFiles = p.cfg.TrackFiles[:len(p.cfg.TrackFiles)-1]
	}
}

func openTrackProcess(p *parser, l *Line) table {
	name, ok := p.named(l)
	if !ok {
		return nil
	}
	p.cfg.TrackProcesses = append(p.cfg.TrackProcesses, config.TrackProcess{Pos: p.pos(l, 0), Name: name, Quorum: 1})
	return trackProcessKeywords
}

func openGarpGroup(p *parser, l *Line) table {
	p.cfg.GarpGroups = append(p.cfg.GarpGroups, config.GarpGroup{Pos: p.pos(l, 0)})
	return garpGroupKeywords
}

var (
	instanceKeywords     table
	syncGroupKeywords    table
	scriptKeywords       table
	trackFileKeywords    table
	trackProcessKeywords table
	garpGroupKeywords    table
	authKeywords         table
)

// trackRefKW is a track_* value block: `NAME [weight N [reverse|noreverse]]`.
func trackRefKW(kw string, lo, hi int64, dst func(p *parser) *[]config.TrackRef) *keyword {
	return &keyword{entry: func(p *parser, l *Line) {
		r := config.TrackRef{Pos: p.pos(l, 0), Name: l.Words[0].Text}
		for i := 1; i < len(l.Words); i++ {
			switch l.Words[i].Text {
			case "weight":
				if i+1 >= len(l.Words) {
					// keepalived ignores it silently.
					p.warnf(l, i, kw, "%s %s: weight has no value - ignoring", kw, r.Name)
					p.last(config.Ignored)
					continue
				}
				i++
				v, ok := p.integerOf(l, i, kw+" "+r.Name+" weight", lo, hi)
				if !ok {
					return
				}
				w := int(v)
				r.Weight = &w
			case "reverse", "noreverse":
				b := l.Words[i].Text == "reverse"
				r.Reverse = &b
			default:
				p.errorf(l, i, r.Name, "unknown track option '%s' for %s", l.Words[i].Text, r.Name)
				p.last(config.Ignored)
			}
		}
		d := dst(p)
		*d = append(*d, r)
	}}
}

// notifyKeywords installs the notify keywords shared by vrrp_instance and
// vrrp_sync_group (reference §1.8). who names the block in messages.
func notifyKeywords(t table, who func(p *parser) string, n func(p *parser) *config.Notify) {
	once := func(kw string, get func(n *config.Notify) **config.Script) {
		t[kw] = scriptKW(func(p *parser, s *config.Script) {
			dst := get(n(p))
			if *dst != nil {
				// keepalived keeps the first one.
				p.diags.Add(s.Pos, config.Warning, kw, "%s %s script already specified - ignoring %s", who(p), kw, s.Command)
				return
			}
			*dst = s
		})
	}
	once("notify_master", func(n *config.Notify) **config.Script { return &n.Master })
	once("notify_backup", func(n *config.Notify) **config.Script { return &n.Backup })
	once("notify_fault", func(n *config.Notify) **config.Script { return &n.Fault })
	once("notify_stop", func(n *config.Notify) **config.Script { return &n.Stop })
	once("notify", func(n *config.Notify) **config.Script { return &n.Any })
	t["smtp_alert"] = boolPtrKW(func(p *parser, b *bool) { n(p).SMTPAlert = b })
	t["notify_priority_changes"] = boolPtrKW(func(p *parser, b *bool) { n(p).PriorityChanges = b })
}

func init() {
	in := (*parser).inst
	instanceKeywords = table{
		"state": {min: 1, fn: func(p *parser, l *Line) {
			switch s := l.Words[1].Text; s {
			case "MASTER":
				in(p).InitialState = s
			case "BACKUP":
				if in(p).InitialState == "MASTER" && p.stateSet {
					p.warnf(l, 1, "state", "(%s) state previously set as MASTER - ignoring BACKUP", in(p).Name)
					p.last(config.Ignored)
					return
				}
				in(p).InitialState = s
			default:
				p.errorf(l, 1, "state", "(%s) unknown state '%s', defaulting to BACKUP", in(p).Name, s)
				in(p).InitialState = "BACKUP"
			}
			p.stateSet = true
		}},
		"interface":         strKW(func(p *parser, s string) { in(p).Interface = s }),
		"virtual_router_id": intKW(1, 255, func(p *parser, v int) { in(p).VRID = v }),
		"priority":          intKW(1, 255, func(p *parser, v int) { in(p).Priority = v }),
		// advert_int: 10 ms to 255 s here; the per-version limit (v3:
		// 40.95 s in units of 10 ms, v2: whole seconds) needs the final
		// version and is checked after parsing, as keepalived does.
		"advert_int": {min: 1, fn: func(p *parser, l *Line) {
			if d, ok := p.timer(l, 1, 10000, 255e6); ok {
				in(p).AdvertInterval = d
				p.advertPos = p.pos(l, 1)
			}
		}},
		"version":       intKW(2, 3, func(p *parser, v int) { in(p).Version = v }),
		"nopreempt":     flagKW(func(p *parser) { in(p).NoPreempt = true }),
		"preempt":       flagKW(func(p *parser) { in(p).NoPreempt = false }),
		"preempt_delay": timerKW(0, 1000e6, func(p *parser, d time.Duration) { in(p).PreemptDelay = d }),
		"accept": flagKW(func(p *parser) {
			b := true
			in(p).Accept = &b
		}),
		"no_accept": flagKW(func(p *parser) {
			b := false
			in(p).Accept = &b
		}),
		"dont_track_primary":  flagKW(func(p *parser) { in(p).DontTrackPrimary = true }),
		"strict_mode":         boolPtrKW(func(p *parser, b *bool) { in(p).Strict = b }),
		"skip_check_adv_addr": boolPtrKW(func(p *parser, b *bool) { in(p).SkipCheckAdvAddr = b }),
		"authentication": {open: func(p *parser, l *Line) table {
			in(p).Auth = &config.Auth{Pos: p.pos(l, 0)}
			return authKeywords
		}},
		"virtual_ipaddress": {entry: func(p *parser, l *Line) {
			if a, ok := p.address(l, false); ok {
				in(p).VIPs = append(in(p).VIPs, a)
			}
		}},
		"virtual_ipaddress_excluded": {entry: func(p *parser, l *Line) {
			if a, ok := p.address(l, false); ok {
				in(p).ExcludedVIPs = append(in(p).ExcludedVIPs, a)
			}
		}},
		"virtual_routes": {entry: func(p *parser, l *Line) {
			if r, ok := p.route(l, false); ok {
				in(p).Routes = append(in(p).Routes, r)
			}
		}},
		"virtual_rules": {entry: func(p *parser, l *Line) {
			if r, ok := p.rule(l, false); ok {
				in(p).Rules = append(in(p).Rules, r)
			}
		}},
		"mcast_src_ip": {min: 1, fn: func(p *parser, l *Line) { p.srcIP(l, &in(p).MulticastSrc) }},
		"unicast_src_ip": {min: 1, fn: func(p *parser, l *Line) {
			p.srcIP(l, &in(p).UnicastSrc)
		}},
		"mcast_dst_ip": {min: 1, fn: func(p *parser, l *Line) {
			a, err := netip.ParseAddr(l.Words[1].Text)
			if a, ok := p.multicast(l, err != nil || a.Is4()); ok {
				in(p).MulticastDst = a
			}
		}},
		"unicast_peer":          {entry: unicastPeer},
		"unicast_ttl":           intKW(0, 255, func(p *parser, v int) { in(p).UnicastTTL = v }),
		"check_unicast_src":     flagKW(func(p *parser) { in(p).CheckUnicastSrc = true }),
		"unicast_fault_no_peer": flagKW(func(p *parser) { in(p).UnicastFaultNoPeer = true }),
		"v3_checksum_as_v2":     boolPtrKW(func(p *parser, b *bool) { in(p).V3ChecksumAsV2 = b }),
		"use_vmac":              {fn: useVMAC},
		"vmac_xmit_base":        flagKW(func(p *parser) { in(p).VMACXmitBase = true }),

		"garp_master_delay": secondsKW(0, maxGarpSecs, func(p *parser, d time.Duration) {
			in(p).GarpMasterDelay = &d
		}),
		"garp_master_repeat": intPtrKW(1, maxI32, func(p *parser, v *int) { in(p).GarpMasterRepeat = v }),
		"garp_master_refresh": secondsKW(0, maxU32, func(p *parser, d time.Duration) {
			in(p).GarpMasterRefresh = &d
		}),
		"garp_master_refresh_repeat": intPtrKW(1, maxI32, func(p *parser, v *int) {
			in(p).GarpMasterRefreshRep = v
		}),
		"garp_lower_prio_delay": secondsKW(0, maxGarpSecs, func(p *parser, d time.Duration) {
			in(p).GarpLowerPrioDelay = &d
		}),
		"garp_lower_prio_repeat": intPtrKW(0, maxI32, func(p *parser, v *int) { in(p).GarpLowerPrioRepeat = v }),
		"down_timer_adverts":     intKW(1, 100, func(p *parser, v int) { in(p).DownTimerAdverts = v }),
		"lower_prio_no_advert":   boolPtrKW(func(p *parser, b *bool) { in(p).LowerPrioNoAdvert = b }),
		"higher_prio_send_advert": boolPtrKW(func(p *parser, b *bool) {
			in(p).HigherPrioSendAdvert = b
		}),
		"promote_secondaries": flagKW(func(p *parser) { in(p).PromoteSecondaries = true }),

		"track_script":    trackRefKW("track_script", -253, 253, func(p *parser) *[]config.TrackRef { return &in(p).TrackScripts }),
		"track_interface": trackRefKW("track_interface", -253, 253, func(p *parser) *[]config.TrackRef { return &in(p).TrackInterfaces }),
		"track_file":      trackRefKW("track_file", -254, 254, func(p *parser) *[]config.TrackRef { return &in(p).TrackFiles }),
		"track_process":   trackRefKW("track_process", -254, 254, func(p *parser) *[]config.TrackRef { return &in(p).TrackProcesses }),

		"notify_deleted": {fn: func(p *parser, l *Line) {
			if len(l.Words) < 2 {
				in(p).Notify.Deleted = &config.Script{Pos: p.pos(l, 0)}
				return
			}
			in(p).Notify.Deleted = p.script(l, 1)
		}},
		"notify_master_rx_lower_pri": scriptKW(func(p *parser, s *config.Script) { in(p).Notify.MasterRxLowerPri = s }),
	}
	notifyKeywords(instanceKeywords, func(p *parser) string { return "(" + in(p).Name + ")" },
		func(p *parser) *config.Notify { return &in(p).Notify })
	instExtra := func(p *parser) *[]config.Setting { return &in(p).Extra }
	ignore(instanceKeywords, instExtra, "use_vmac_addr", "use_ipvlan", "vrf", "track_src_ip",
		"old_unicast_checksum", "native_ipv6", "linkbeat_use_polling", "garp_extra_if",
		"vmac_garp_intvl", "timer_expired_backup", "thread_timer_expired", "owner_ignore_adverts",
		"kernel_rx_buf_size", "lvs_sync_daemon_interface", "debug")
	ignoreBlocks(instanceKeywords, instExtra, "track_bfd", "auth_hmac")

	authKeywords = table{
		"auth_type": {min: 1, fn: func(p *parser, l *Line) {
			switch t := l.Words[1].Text; t {
			case "PASS", "AH":
				in(p).Auth.Type = t
			default:
				p.errorf(l, 1, "auth_type", "(%s) unknown authentication type '%s'", in(p).Name, t)
			}
		}},
		"auth_pass": {min: 1, fn: func(p *parser, l *Line) {
			pass := l.Words[1].Text
			// RFC 3768 §5.3.6.1: the field holds 8 octets; keepalived truncates.
			if len(pass) > 8 {
				p.warnf(l, 1, "auth_pass", "truncating auth_pass to 8 characters")
				p.last(config.Noted)
				pass = pass[:8]
			}
			in(p).Auth.Pass = config.Secret(pass)
		}},
	}

	sg := (*parser).sg
	syncGroupKeywords = table{
		"group": {fn: func(p *parser, l *Line) {
			if sg(p).Members != nil {
				// keepalived skips the rest of the sync group, and the
				// '}' of this list ends it (skip_block).
				p.errorf(l, 0, "group", "group list already specified for sync group %s", sg(p).Name)
				p.last(config.Ignored)
				p.skipBlock()
				p.endBlock = true
				return
			}
			sg(p).Members = []string{}
			for _, w := range p.words() {
				sg(p).Members = append(sg(p).Members, w.Text)
			}
		}},
		"track_script":               trackRefKW("track_script", -253, 253, func(p *parser) *[]config.TrackRef { return &sg(p).TrackScripts }),
		"track_interface":            trackRefKW("track_interface", -253, 253, func(p *parser) *[]config.TrackRef { return &sg(p).TrackInterfaces }),
		"track_file":                 trackRefKW("track_file", -254, 254, func(p *parser) *[]config.TrackRef { return &sg(p).TrackFiles }),
		"track_process":              trackRefKW("track_process", -254, 254, func(p *parser) *[]config.TrackRef { return &sg(p).TrackProcesses }),
		"sync_group_tracking_weight": flagKW(func(p *parser) { sg(p).TrackingWeight = true }),
		"global_tracking": {fn: func(p *parser, l *Line) {
			p.warnf(l, 0, "global_tracking", "(%s) global_tracking is deprecated. Use track_interface/script/file on the sync group", sg(p).Name)
			p.last(config.Noted)
			sg(p).TrackingWeight = true
		}},
	}
	notifyKeywords(syncGroupKeywords, func(p *parser) string { return "vrrp group " + sg(p).Name + ":" },
		func(p *parser) *config.Notify { return &sg(p).Notify })
	ignoreBlocks(syncGroupKeywords, func(p *parser) *[]config.Setting { return &sg(p).Extra }, "track_bfd")

	vs := (*parser).vscript
	scriptKeywords = table{
		"script": {min: 1, fn: func(p *parser, l *Line) {
			s := p.script(l, 1)
			v := vs(p)
			v.Command, v.Args = s.Command, s.Args
			if s.User != "" {
				v.User, v.Group = s.User, s.Group
			}
		}},
		// keepalived 2.2.7 reads both as whole seconds (1..4294).
		"interval": secondsKW(1, maxGarpSecs, func(p *parser, d time.Duration) { vs(p).Interval = d }),
		"timeout":  secondsKW(1, maxGarpSecs, func(p *parser, d time.Duration) { vs(p).Timeout = d }),
		"weight": {min: 1, fn: func(p *parser, l *Line) {
			v, ok := p.integer(l, 1, -253, 253)
			if !ok {
				return
			}
			vs(p).Weight = int(v)
			vs(p).Reverse = arg(l, 2) == "reverse"
		}},
		"rise":      intKW(1, maxI32, func(p *parser, v int) { vs(p).Rise = v }),
		"fall":      intKW(1, maxI32, func(p *parser, v int) { vs(p).Fall = v }),
		"user":      {min: 1, fn: func(p *parser, l *Line) { vs(p).User, vs(p).Group = userGroup(l.Words[1:]) }},
		"init_fail": flagKW(func(p *parser) { vs(p).InitFail = true }),
	}

	tf := (*parser).tfile
	trackFileKeywords = table{
		"file": strKW(func(p *parser, s string) { tf(p).File = s }),
		"weight": {min: 1, fn: func(p *parser, l *Line) {
			v, ok := p.integer(l, 1, -254, 254)
			if !ok {
				return
			}
			tf(p).Weight = int(v)
			tf(p).Reverse = arg(l, 2) == "reverse"
		}},
		"init_file": {fn: func(p *parser, l *Line) {
			v := 0
			i := 1
			if i < len(l.Words) && l.Words[i].Text != "overwrite" {
				n, ok := p.integer(l, i, -maxI32, maxI32)
				if !ok {
					return
				}
				v = int(n)
				i++
			}
			tf(p).InitFile = &v
			tf(p).InitOverwrite = arg(l, i) == "overwrite"
		}},
	}

	tp := (*parser).tproc
	trackProcessKeywords = table{
		"process": {min: 1, fn: func(p *parser, l *Line) {
			tp(p).Process = l.Words[1].Text
			tp(p).Args = nil
			for _, w := range l.Words[2:] {
				tp(p).Args = append(tp(p).Args, w.Text)
			}
		}},
		"param_match": {min: 1, fn: func(p *parser, l *Line) {
			switch s := l.Words[1].Text; s {
			case "initial", "partial":
				tp(p).ParamMatch = s
			default:
				p.errorf(l, 1, "param_match", "param_match: invalid value '%s' (initial|partial)", s)
			}
		}},
		"weight": {min: 1, fn: func(p *parser, l *Line) {
			v, ok := p.integer(l, 1, -254, 254)
			if !ok {
				return
			}
			tp(p).Weight = int(v)
			tp(p).Reverse = arg(l, 2) == "reverse"
		}},
		"quorum":          intKW(1, 65535, func(p *parser, v int) { tp(p).Quorum = v }),
		"quorum_max":      intKW(0, 65535, func(p *parser, v int) { tp(p).QuorumMax = v }),
		"delay":           timerKW(1, 3600e6, func(p *parser, d time.Duration) { tp(p).Delay = d }),
		"terminate_delay": timerKW(1, 3600e6, func(p *parser, d time.Duration) { tp(p).TerminateDelay = d }),
		"fork_delay":      timerKW(1, 3600e6, func(p *parser, d time.Duration) { tp(p).ForkDelay = d }),
		"full_command":    flagKW(func(p *parser) { tp(p).FullCommand = true }),
	}

	gg := (*parser).garp
	garpGroupKeywords = table{
		"garp_interval": timerKW(0, maxTimerUS, func(p *parser, d time.Duration) { gg(p).GarpInterval = d }),
		"gna_interval":  timerKW(0, maxTimerUS, func(p *parser, d time.Duration) { gg(p).GnaInterval = d }),
		"interface":     strKW(func(p *parser, s string) { gg(p).Interfaces = append(gg(p).Interfaces, s) }),
		"interfaces": {entry: func(p *parser, l *Line) {
			for _, w := range l.Words {
				gg(p).Interfaces = append(gg(p).Interfaces, w.Text)
			}
		}},
	}
}

// advertInterval applies the per-version limits on advert_int that
// keepalived checks once the instance is complete (vrrp.c): VRRPv2 carries
// whole seconds (RFC 3768 §5.3.7), VRRPv3 centiseconds below 40.96 s
// (RFC 9568 §5.2.7). keepalived rounds or clamps, and says so.
func (p *parser) advertInterval(in *config.Instance) {
	if p.advertPos.Line == 0 {
		return
	}
	d := in.AdvertInterval
	warn := func(format string, args ...any) {
		p.diags.Add(p.advertPos, config.Warning, "advert_int", format, args...)
	}
	if in.EffectiveVersion(&p.cfg.Global) == 3 {
		const limit = 40950 * time.Millisecond
		switch {
		case d > limit:
			warn("(%s) VRRPv3 advertisement interval %.2fs is out of range. Must be less than 40.96s. Setting to 40.95s", in.Name, d.Seconds())
			in.AdvertInterval = limit
		case d%(10*time.Millisecond) != 0:
			warn("(%s) VRRPv3 advertisement interval %fs must be in units of 10ms - rounding", in.Name, d.Seconds())
			in.AdvertInterval = max(d.Round(10*time.Millisecond), 10*time.Millisecond)
		}
		return
	}
	if d%time.Second != 0 {
		warn("(%s) VRRPv2 advertisement interval %fs must be an integer. rounding", in.Name, d.Seconds())
		in.AdvertInterval = max(d.Round(time.Second), time.Second)
	}
}

// srcIP reads mcast_src_ip / unicast_src_ip.
func (p *parser) srcIP(l *Line, dst *netip.Addr) {
	a, err := hostAddr(l.Words[1].Text)
	if err != nil {
		p.errorf(l, 1, arg(l, 0), "(%s) %s: malformed src address '%s' - skipping", p.inst().Name, arg(l, 0), l.Words[1].Text)
		p.last(config.ItemSkipped)
		return
	}
	*dst = a
}

// unicastPeer reads one unicast_peer entry: `IP [min_ttl N] [max_ttl N]`.
func unicastPeer(p *parser, l *Line) {
	in := p.inst()
	a, err := hostAddr(l.Words[0].Text)
	if err != nil {
		p.errorf(l, 0, "unicast_peer", "(%s) malformed unicast peer address '%s' - skipping", in.Name, l.Words[0].Text)
		p.last(config.ItemSkipped)
		return
	}
	peer := config.UnicastPeer{Pos: p.pos(l, 0), Addr: a}
	for i := 1; i < len(l.Words); i++ {
		opt := l.Words[i].Text
		if (opt != "min_ttl" && opt != "max_ttl") || i+1 >= len(l.Words) {
			// keepalived reports it and keeps the peer.
			p.errorf(l, i, "unicast_peer", "(%s) unknown unicast_peer option '%s'", in.Name, opt)
			p.last(config.Ignored)
			break
		}
		i++
		v, ok := p.integerOf(l, i, "unicast_peer "+l.Words[0].Text+" "+opt, 0, 255)
		if !ok {
			return
		}
		if opt == "min_ttl" {
			peer.MinTTL = int(v)
		} else {
			peer.MaxTTL = int(v)
		}
	}
	in.UnicastPeers = append(in.UnicastPeers, peer)
}

// useVMAC reads `use_vmac [NAME] [MAC] [netlink_notify_msg] [group G]`.
func useVMAC(p *parser, l *Line) {
	v := &config.VMAC{}
	for i := 1; i < len(l.Words); i++ {
		w := l.Words[i].Text
		switch {
		case w == "netlink_notify_msg":
			v.Notify = true
		case w == "group" && i+1 < len(l.Words):
			i++
			v.Group = l.Words[i].Text
		case isMAC(w):
			// RFC 9568 §7.3: 00-00-5E-00-01/02-{VRID} is the VRRP virtual
			// MAC; keepalived refuses it as a configured VMAC address.
			if m := strings.ToLower(w); strings.HasPrefix(m, "00:00:5e:00:01:") || strings.HasPrefix(m, "00:00:5e:00:02:") {
				p.errorf(l, i, "use_vmac", "VMAC MAC address not allowed to be RFC5798 address (%s) - ignoring", w)
				p.last(config.Ignored)
				continue
			}
			v.MAC = w
		case v.Name == "":
			v.Name = w
		default:
			p.errorf(l, i, "use_vmac", "use_vmac: unknown option '%s'", w)
			p.last(config.Ignored)
		}
	}
	p.inst().VMAC = v
}

// isMAC reports whether s looks like a MAC address (six hex pairs).
func isMAC(s string) bool {
	if len(s) != 17 {
		return false
	}
	for i := 0; i < 17; i++ {
		c := s[i]
		if i%3 == 2 {
			if c != ':' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// hostAddr parses an address that may carry a prefix length, which
// keepalived's inet_stosockaddr() accepts and drops (unicast_src_ip
// 192.0.2.1/24 is common in real configs).
func hostAddr(s string) (netip.Addr, error) {
	if ip, _, ok := strings.Cut(s, "/"); ok {
		if _, err := netip.ParsePrefix(s); err != nil {
			return netip.Addr{}, err
		}
		s = ip
	}
	return netip.ParseAddr(s)
}
