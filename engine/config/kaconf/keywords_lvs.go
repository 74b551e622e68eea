package kaconf

import (
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

func (p *parser) vs() *config.VirtualServer {
	return &p.cfg.VirtualServers[len(p.cfg.VirtualServers)-1]
}
func (p *parser) rs() *config.RealServer {
	v := p.vs()
	return &v.RealServers[len(v.RealServers)-1]
}
func (p *parser) chk() *config.Checker {
	r := p.rs()
	return &r.Checkers[len(r.Checkers)-1]
}
func (p *parser) url() *config.URL {
	h := p.chk().HTTP
	return &h.URLs[len(h.URLs)-1]
}
func (p *parser) vsg() *config.VSGroup { return &p.cfg.VSGroups[len(p.cfg.VSGroups)-1] }

// schedulers are the IPVS schedulers keepalived accepts (check_parser.c).
var schedulers = map[string]bool{
	"rr": true, "wrr": true, "lc": true, "wlc": true, "lblc": true, "sh": true, "mh": true,
	"dh": true, "fo": true, "ovf": true, "lblcr": true, "sed": true, "nq": true, "twos": true,
}

var (
	vsKeywords    table
	rsKeywords    table
	urlKeywords   table
	sslKeywords   table
	checkerTables map[config.CheckerType]table
)

// openVSGroup starts a virtual_server_group. keepalived does not check
// for a duplicate name here.
func openVSGroup(p *parser, l *Line) bool {
	if len(l.Words) != 2 {
		p.errorf(l, 0, "virtual_server_group", "virtual_server_group must have a name")
		p.last(config.ItemSkipped)
		return false
	}
	p.cfg.VSGroups = append(p.cfg.VSGroups, config.VSGroup{Pos: p.pos(l, 0), Name: l.Words[1].Text})
	return true
}

// vsGroupEntry reads `IP [PORT]`, `IP-LAST [PORT]`, `CIDR [PORT]` or
// `fwmark N [inet|inet6]` (reference §1.6).
func vsGroupEntry(p *parser, l *Line) {
	const what = "virtual_server_group"
	e := config.VSGroupEntry{Pos: p.pos(l, 0), Text: rest(l, 0)}
	if l.Words[0].Text == "fwmark" {
		if len(l.Words) < 2 {
			p.errorf(l, 0, what, "%s: fwmark needs a value", what)
			p.last(config.ItemSkipped)
			return
		}
		v, ok := p.integer(l, 1, 0, maxU32)
		if !ok {
			return
		}
		e.FWMark = uint32(v)
		switch arg(l, 2) {
		case "inet":
			e.Family = 4
		case "inet6":
			e.Family = 6
		case "":
		default:
			p.errorf(l, 2, what, "%s: unknown address family '%s'", what, arg(l, 2))
			p.last(config.Ignored)
		}
	} else {
		first, last, ok := addrRange(l.Words[0].Text)
		if !ok {
			p.errorf(l, 0, what, "%s: invalid address or range '%s' - skipping", what, l.Words[0].Text)
			p.last(config.ItemSkipped)
			return
		}
		e.First, e.Last = first, last
		if len(l.Words) > 1 {
			v, ok := p.integer(l, 1, 1, 65535)
			if !ok {
				return
			}
			e.Port = int(v)
		}
	}
	g := p.vsg()
	g.Entries = append(g.Entries, e)
}

// addrRange parses IP, IP/LEN, IP-N (last byte or group) or IP-IP.
func addrRange(s string) (first, last netip.Addr, ok bool) {
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return first, last, false
		}
		pfx = pfx.Masked()
		first, last = pfx.Addr(), pfx.Addr()
		b := last.AsSlice()
		bits := pfx.Bits()
		for i := range b {
			for j := 0; j < 8; j++ {
				if i*8+j >= bits {
					b[i] |= 0x80 >> j
				}
			}
		}
		last, _ = netip.AddrFromSlice(b)
		return first, last, true
	}
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := netip.ParseAddr(lo)
	if err != nil || a.Zone() != "" {
		return first, last, false
	}
	if !isRange {
		return a, a, true
	}
	if b, err := netip.ParseAddr(hi); err == nil {
		if b.Is4() != a.Is4() || b.Less(a) {
			return first, last, false
		}
		return a, b, true
	}
	base, bits := 10, 8
	if a.Is6() {
		base, bits = 16, 16
	}
	n, err := strconv.ParseUint(hi, base, bits)
	if err != nil {
		return first, last, false
	}
	raw := a.AsSlice()
	if a.Is4() {
		if byte(n) < raw[3] {
			return first, last, false
		}
		raw[3] = byte(n)
	} else {
		cur := uint64(raw[14])<<8 | uint64(raw[15])
		if n < cur {
			return first, last, false
		}
		raw[14], raw[15] = byte(n>>8), byte(n)
	}
	b, _ := netip.AddrFromSlice(raw)
	return a, b, true
}

// openVirtualServer reads the three header forms: `IP [PORT]`,
// `fwmark N`, `group NAME`. An invalid header skips the block, as
// keepalived does ("Invalid virtual server IP address/port - skipping").
func openVirtualServer(p *parser, l *Line) table {
	vs := config.VirtualServer{
		Pos: p.pos(l, 0), Scheduler: config.DefaultScheduler,
		Method: config.DefaultMethod, Quorum: config.DefaultQuorum,
	}
	switch l.Words[1].Text {
	case "fwmark":
		if len(l.Words) < 3 {
			p.errorf(l, 1, "virtual_server", "virtual_server: fwmark needs a value - skipping")
			p.last(config.ItemSkipped)
			return nil
		}
		v, ok := p.integer(l, 2, 1, maxU32)
		if !ok {
			return nil
		}
		vs.FWMark = uint32(v)
	case "group":
		if len(l.Words) < 3 {
			p.errorf(l, 1, "virtual_server", "virtual_server: group needs a name - skipping")
			p.last(config.ItemSkipped)
			return nil
		}
		vs.Group = l.Words[2].Text
	default:
		a, err := netip.ParseAddr(l.Words[1].Text)
		if err != nil || a.Zone() != "" {
			p.errorf(l, 1, "virtual_server", "invalid virtual server IP address/port %s/%s - skipping", l.Words[1].Text, arg(l, 2))
			p.last(config.ItemSkipped)
			return nil
		}
		vs.Addr = a
		if len(l.Words) > 2 {
			v, ok := p.integer(l, 2, 1, 65535)
			if !ok {
				p.errorf(l, 2, "virtual_server", "invalid virtual server IP address/port %s/%s - skipping", l.Words[1].Text, l.Words[2].Text)
				p.last(config.ItemSkipped)
				return nil
			}
			vs.Port = int(v)
		}
	}
	p.cfg.VirtualServers = append(p.cfg.VirtualServers, vs)
	return vsKeywords
}

// vsProtocols applies keepalived's protocol rule once every block is read
// (check_data.c validate_check_config): a service by address, or by a group
// with address entries, that has no protocol gets UDP, because that is what
// the kernel does with protocol 0, and keepalived says so; a service by
// fwmark ignores its protocol.
func (p *parser) vsProtocols() {
	groups := map[string]bool{} // group name → has address entries
	for _, g := range p.cfg.VSGroups {
		for _, e := range g.Entries {
			if e.First.IsValid() {
				groups[g.Name] = true
			}
		}
	}
	for i := range p.cfg.VirtualServers {
		vs := &p.cfg.VirtualServers[i]
		byAddr := vs.Group == "" && vs.FWMark == 0 || vs.Group != "" && groups[vs.Group]
		switch {
		case byAddr && vs.Protocol == "":
			p.diags.Add(vs.Pos, config.Warning, "virtual_server", "virtual server %s: no protocol set - defaulting to UDP", vsName(vs))
			vs.Protocol = "UDP"
		case vs.FWMark != 0 && vs.Protocol != "":
			p.diags.Add(vs.Pos, config.Warning, "protocol", "virtual server %s: protocol specified for fwmark - protocol will be ignored", vsName(vs))
		}
	}
}

// vsName names a virtual server in messages.
func vsName(vs *config.VirtualServer) string {
	switch {
	case vs.Group != "":
		return "group " + vs.Group
	case vs.FWMark != 0:
		return "fwmark " + strconv.FormatUint(uint64(vs.FWMark), 10)
	case vs.Port != 0:
		return netip.AddrPortFrom(vs.Addr, uint16(vs.Port)).String()
	}
	return vs.Addr.String()
}

// realServer reads `IP [PORT]` of real_server and sorry_server.
func (p *parser) realServer(l *Line) (config.RealServer, bool) {
	kw := arg(l, 0)
	a, err := netip.ParseAddr(l.Words[1].Text)
	if err != nil || a.Zone() != "" {
		p.errorf(l, 1, kw, "invalid %s IP address/port %s/%s - skipping", kw, l.Words[1].Text, arg(l, 2))
		p.last(config.ItemSkipped)
		return config.RealServer{}, false
	}
	rs := config.RealServer{Pos: p.pos(l, 0), Addr: a, Weight: config.DefaultWeight}
	if len(l.Words) > 2 {
		v, ok := p.integer(l, 2, 1, 65535)
		if !ok {
			return rs, false
		}
		rs.Port = int(v)
	}
	return rs, true
}

// method reads `lb_kind NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`.
func (p *parser) method(l *Line, vs *config.VirtualServer) (string, bool) {
	kw := arg(l, 0)
	m := strings.ToUpper(l.Words[1].Text)
	switch m {
	case "NAT", "DR", "TUN":
	case "PMASQ", "MASQ":
		m = "NAT"
	default:
		p.errorf(l, 1, kw, "%s: unknown [%s] routing method for virtual server", kw, l.Words[1].Text)
		return "", false
	}
	if vs == nil {
		return m, true
	}
	for i := 2; i < len(l.Words); i++ {
		switch w := l.Words[i].Text; w {
		case "type":
			if i+1 >= len(l.Words) {
				p.errorf(l, i, kw, "%s: tunnel type missing", kw)
				p.last(config.Ignored)
				return m, true
			}
			i++
			vs.TunnelType = l.Words[i].Text
		case "port":
			if i+1 >= len(l.Words) {
				p.errorf(l, i, kw, "%s: tunnel port missing", kw)
				p.last(config.Ignored)
				return m, true
			}
			i++
			if v, ok := p.integer(l, i, 1, 65535); ok {
				vs.TunnelPort = int(v)
			}
		case "nocsum", "csum", "remcsum":
			vs.TunnelCsum = w
		default:
			p.errorf(l, i, kw, "%s: unknown tunnel option '%s'", kw, w)
			p.last(config.Ignored)
		}
	}
	return m, true
}

// checkDefaultsKeywords installs the scheduling keywords shared by
// virtual_server, real_server and the checkers (inheritance, reference §1.6).
func checkDefaultsKeywords(t table, d func(p *parser) *config.CheckDefaults) {
	t["delay_loop"] = timerKW(1, 1<<62/1000, func(p *parser, v time.Duration) { d(p).DelayLoop = v })
	t["delay_before_retry"] = timerKW(0, maxTimerUS, func(p *parser, v time.Duration) { d(p).DelayBeforeRetry = v })
	t["warmup"] = timerPtrKW(0, maxTimerUS, func(p *parser, v *time.Duration) { d(p).Warmup = v })
	t["retry"] = intPtrKW(1, maxU32, func(p *parser, v *int) { d(p).Retry = v })
}

func init() {
	vs := (*parser).vs
	vsKeywords = table{
		"lb_algo":   {min: 1, fn: scheduler},
		"lvs_sched": {min: 1, fn: scheduler},
		"lb_kind": {min: 1, fn: func(p *parser, l *Line) {
			if m, ok := p.method(l, vs(p)); ok {
				vs(p).Method = m
			}
		}},
		"protocol": {min: 1, fn: func(p *parser, l *Line) {
			switch s := strings.ToUpper(l.Words[1].Text); s {
			case "TCP", "UDP", "SCTP":
				vs(p).Protocol = s
			default:
				p.errorf(l, 1, "protocol", "unknown protocol %s - ignoring", l.Words[1].Text)
			}
		}},
		"ip_family": {min: 1, fn: func(p *parser, l *Line) {
			switch l.Words[1].Text {
			case "inet":
				vs(p).IPFamily = 4
			case "inet6":
				vs(p).IPFamily = 6
			default:
				p.errorf(l, 1, "ip_family", "unknown address family %s", l.Words[1].Text)
			}
		}},
		"persistence_timeout": {fn: func(p *parser, l *Line) {
			if len(l.Words) < 2 {
				vs(p).PersistenceTimeout = 6 * time.Minute // IPVS_SVC_PERSISTENT_TIMEOUT
				return
			}
			if v, ok := p.integer(l, 1, 1, maxLVSTimeout); ok {
				vs(p).PersistenceTimeout = time.Duration(v) * time.Second
			}
		}},
		"persistence_granularity": strKW(func(p *parser, s string) { vs(p).PersistenceGranularity = s }),
		"persistence_engine":      strKW(func(p *parser, s string) { vs(p).PersistenceEngine = s }),
		"ops":                     flagKW(func(p *parser) { vs(p).OPS = true }),
		"hashed":                  flagKW(func(p *parser) { vs(p).Hashed = true }),
		"virtualhost":             strKW(func(p *parser, s string) { vs(p).Virtualhost = s }),
		"ha_suspend":              flagKW(func(p *parser) { vs(p).HASuspend = true }),
		"inhibit_on_failure":      boolKW(func(p *parser, b bool) { vs(p).InhibitOnFailure = b }),
		// keepalived sets alpha and omega on a virtual server whatever follows.
		"alpha":       flagKW(func(p *parser) { vs(p).Alpha = true }),
		"omega":       flagKW(func(p *parser) { vs(p).Omega = true }),
		"quorum":      intKW(1, maxU32, func(p *parser, v int) { vs(p).Quorum = v }),
		"hysteresis":  intKW(0, maxU32, func(p *parser, v int) { vs(p).Hysteresis = v }),
		"quorum_up":   scriptKW(func(p *parser, s *config.Script) { vs(p).QuorumUp = s }),
		"quorum_down": scriptKW(func(p *parser, s *config.Script) { vs(p).QuorumDown = s }),
		"sorry_server": {min: 1, fn: func(p *parser, l *Line) {
			if rs, ok := p.realServer(l); ok {
				vs(p).SorryServer = &rs
			}
		}},
		"sorry_server_inhibit": boolKW(func(p *parser, b bool) { vs(p).SorryServerInhibit = b }),
		"sorry_server_lvs_method": {min: 1, fn: func(p *parser, l *Line) {
			if m, ok := p.method(l, nil); ok {
				vs(p).SorryServerMethod = m
			}
		}},
		"smtp_alert": boolPtrKW(func(p *parser, b *bool) { vs(p).SMTPAlert = b }),
		"snmp_name":  strKW(func(p *parser, s string) { vs(p).SNMPName = s }),
		"connect_timeout": timerKW(minTimerUS, maxTimerUS, func(p *parser, d time.Duration) {
			vs(p).ConnectTimeout = d
		}),
		"real_server": {min: 1, open: func(p *parser, l *Line) table {
			rs, ok := p.realServer(l)
			if !ok {
				return nil
			}
			v := vs(p)
			v.RealServers = append(v.RealServers, rs)
			return rsKeywords
		}},
	}
	vsKeywords["lvs_method"] = vsKeywords["lb_kind"]
	for _, f := range []string{"flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback"} {
		vsKeywords[f] = flagKW(func(p *parser) { vs(p).SchedFlags = append(vs(p).SchedFlags, f) })
	}
	checkDefaultsKeywords(vsKeywords, func(p *parser) *config.CheckDefaults { return &vs(p).CheckDefaults })
	ignore(vsKeywords, func(p *parser) *[]config.Setting { return &vs(p).Extra }, "weight")

	rs := (*parser).rs
	rsKeywords = table{
		"weight": intKW(0, maxI32, func(p *parser, v int) { rs(p).Weight = v }),
		"lvs_method": {min: 1, fn: func(p *parser, l *Line) {
			if m, ok := p.method(l, nil); ok {
				rs(p).Method = m
			}
		}},
		"inhibit_on_failure": boolPtrKW(func(p *parser, b *bool) { rs(p).InhibitOnFailure = b }),
		"uthreshold":         intKW(0, maxU32, func(p *parser, v int) { rs(p).UThreshold = v }),
		"lthreshold":         intKW(0, maxU32, func(p *parser, v int) { rs(p).LThreshold = v }),
		"alpha":              boolPtrKW(func(p *parser, b *bool) { rs(p).Alpha = b }),
		"virtualhost":        strKW(func(p *parser, s string) { rs(p).Virtualhost = s }),
		"smtp_alert":         boolPtrKW(func(p *parser, b *bool) { rs(p).SMTPAlert = b }),
		"notify_up":          scriptKW(func(p *parser, s *config.Script) { rs(p).NotifyUp = s }),
		"notify_down":        scriptKW(func(p *parser, s *config.Script) { rs(p).NotifyDown = s }),
		"connect_timeout": timerKW(minTimerUS, maxTimerUS, func(p *parser, d time.Duration) {
			rs(p).ConnectTimeout = d
		}),
	}
	checkDefaultsKeywords(rsKeywords, func(p *parser) *config.CheckDefaults { return &rs(p).CheckDefaults })
	ignore(rsKeywords, func(p *parser) *[]config.Setting { return &rs(p).Extra }, "snmp_name")

	checkerTables = map[config.CheckerType]table{}
	for _, t := range []config.CheckerType{config.TCPCheck, config.HTTPGet, config.SSLGet, config.MiscCheck,
		config.SMTPCheck, config.DNSCheck, config.UDPCheck, config.PingCheck, config.FileCheck, config.BFDCheck} {
		checkerTables[t] = checkerKeywords(t)
		rsKeywords[string(t)] = &keyword{open: openChecker(t), close: closeChecker}
	}

	u := (*parser).url
	urlKeywords = table{
		"path": strKW(func(p *parser, s string) { u(p).Path = s }),
		"digest": {min: 1, fn: func(p *parser, l *Line) {
			d := strings.ToLower(l.Words[1].Text)
			if _, err := hex.DecodeString(d); err != nil || len(d) != 32 {
				p.errorf(l, 1, "digest", "digest '%s' must be 32 hex characters (an MD5 sum)", l.Words[1].Text)
				return
			}
			u(p).Digest = d
		}},
		"status_code": {min: 1, fn: statusCodes},
		"virtualhost": strKW(func(p *parser, s string) { u(p).Virtualhost = s }),
		"regex": {min: 1, fn: func(p *parser, l *Line) {
			u(p).Regex, u(p).RegexPos = l.Words[1].Text, p.pos(l, 1)
		}},
		"regex_no_match": flagKW(func(p *parser) {
			u(p).RegexNoMatch = true
		}),
		"regex_options": {fn: func(p *parser, l *Line) {
			for _, w := range l.Words[1:] {
				u(p).RegexOptions = append(u(p).RegexOptions, w.Text)
			}
		}},
		"regex_min_offset": intKW(0, maxU32, func(p *parser, v int) { u(p).RegexMinOffset = v }),
		"regex_max_offset": intKW(0, maxU32, func(p *parser, v int) { u(p).RegexMaxOffset = v }),
		"regex_stack": {fn: func(p *parser, l *Line) {
			p.warnf(l, 0, "regex_stack", "keyword regex_stack is accepted but ignored by keepwatch")
			p.last(config.NotImplemented)
		}},
		// keepalived reads tls_compliant in a url block too; keepwatch has
		// no use for it there, and says so rather than drop it silently.
		"tls_compliant": {fn: func(p *parser, l *Line) { p.ignored(l, "tls_compliant") }},
	}

	ssl := func(p *parser) *config.SSL { return p.cfg.SSL }
	sslKeywords = table{
		"password":    strKW(func(p *parser, s string) { ssl(p).Password = config.Secret(s) }),
		"ca":          strKW(func(p *parser, s string) { ssl(p).CA = s }),
		"certificate": strKW(func(p *parser, s string) { ssl(p).Certificate = s }),
		"key":         strKW(func(p *parser, s string) { ssl(p).Key = s }),
	}
}

func openSSL(p *parser, l *Line) table {
	if p.cfg.SSL != nil {
		p.warnf(l, 0, "SSL", "SSL context already specified - replacing")
		p.last(config.Noted)
	}
	p.cfg.SSL = &config.SSL{Pos: p.pos(l, 0)}
	return sslKeywords
}

func scheduler(p *parser, l *Line) {
	s := l.Words[1].Text
	if !schedulers[s] {
		p.errorf(l, 1, arg(l, 0), "invalid lvs_scheduler '%s' - ignoring", s)
		return
	}
	p.vs().Scheduler = s
}

// statusCodes reads `status_code N|N-M ...` (HTTP status codes 100-599).
func statusCodes(p *parser, l *Line) {
	u := p.url()
	for i := 1; i < len(l.Words); i++ {
		s := l.Words[i].Text
		lo, hi, isRange := strings.Cut(s, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 100 || b > 599 || b < a {
			p.errorf(l, i, "status_code", "invalid HTTP_GET status code '%s'", s)
			p.last(config.Ignored)
			continue
		}
		u.StatusCodes = append(u.StatusCodes, config.StatusRange{From: a, To: b})
	}
}

func openChecker(t config.CheckerType) func(p *parser, l *Line) table {
	return func(p *parser, l *Line) table {
		c := config.Checker{Pos: p.pos(l, 0), Type: t}
		switch t {
		case config.HTTPGet, config.SSLGet:
			c.HTTP = &config.HTTPCheck{Protocol: "1.0"}
		case config.MiscCheck:
			c.Misc = &config.MiscSpec{}
		case config.SMTPCheck:
			c.SMTP = &config.SMTPSpec{}
		case config.DNSCheck:
			c.DNS = &config.DNSSpec{Type: config.DefaultDNSType, Name: config.DefaultDNSName}
		case config.UDPCheck:
			c.UDP = &config.UDPSpec{}
		case config.FileCheck:
			c.File = &config.FileSpec{}
		case config.BFDCheck:
			c.BFD = &config.BFDSpec{}
		}
		r := p.rs()
		r.Checkers = append(r.Checkers, c)
		return checkerTables[t]
	}
}

// closeChecker drops checkers keepalived would not run.
func closeChecker(p *parser, end *Line) {
	c := p.chk()
	drop := ""
	switch {
	case c.Type == config.MiscCheck && c.Misc.Path.Command == "":
		drop = "no script path has been specified for MISC_CHECK - skipping"
	case c.Type == config.FileCheck && c.File.TrackFile == "":
		drop = "no track_file specified for FILE_CHECK - skipping"
	case c.Type == config.BFDCheck && c.BFD.Name == "":
		drop = "no name specified for BFD_CHECK - skipping"
	}
	if drop != "" {
		p.errorf(end, 0, string(c.Type), "%s", drop)
		p.last(config.ItemSkipped)
		r := p.rs()
		r.Checkers = r.Checkers[:len(r.Checkers)-1]
	}
}

// checkerKeywords builds the table of one checker type (check_api.c
// install_checker_common_keywords and each check_*.c, reference §1.7).
func checkerKeywords(typ config.CheckerType) table {
	c := (*parser).chk
	t := table{}
	// Scheduling keywords: every checker but FILE_CHECK and BFD_CHECK.
	if typ != config.FileCheck && typ != config.BFDCheck {
		checkDefaultsKeywords(t, func(p *parser) *config.CheckDefaults { return &c(p).CheckDefaults })
		t["retry"] = intPtrKW(0, maxU32, func(p *parser, v *int) { c(p).Retry = v })
		t["alpha"] = boolPtrKW(func(p *parser, b *bool) { c(p).Alpha = b })
		t["log_all_failures"] = boolPtrKW(func(p *parser, b *bool) { c(p).LogAllFailures = b })
	}
	// Connection keywords: not for MISC_CHECK, FILE_CHECK, BFD_CHECK.
	if typ != config.MiscCheck && typ != config.FileCheck && typ != config.BFDCheck {
		t["connect_ip"] = addrKW(func(p *parser, a netip.Addr) { c(p).ConnectIP = a })
		t["connect_port"] = intKW(1, 65535, func(p *parser, v int) { c(p).ConnectPort = v })
		t["bindto"] = addrKW(func(p *parser, a netip.Addr) { c(p).BindTo = a })
		t["bind_port"] = intKW(1, 65535, func(p *parser, v int) { c(p).BindPort = v })
		t["bind_if"] = strKW(func(p *parser, s string) { c(p).BindIf = s })
		t["fwmark"] = intKW(0, maxU32, func(p *parser, v int) { c(p).FWMark = uint32(v) })
		t["connect_timeout"] = timerKW(minTimerUS, maxTimerUS, func(p *parser, d time.Duration) {
			c(p).ConnectTimeout = d
		})
	}
	extra := func(p *parser) *[]config.Setting { return &c(p).Extra }
	switch typ {
	case config.HTTPGet, config.SSLGet:
		h := func(p *parser) *config.HTTPCheck { return c(p).HTTP }
		t["url"] = &keyword{open: func(p *parser, l *Line) table {
			h(p).URLs = append(h(p).URLs, config.URL{Pos: p.pos(l, 0)})
			return urlKeywords
		}}
		t["http_protocol"] = &keyword{min: 1, fn: func(p *parser, l *Line) {
			switch s := l.Words[1].Text; s {
			case "1.0", "1.1", "1.0C":
				h(p).Protocol = s
			case "1.0c":
				h(p).Protocol = "1.0C"
			default:
				p.errorf(l, 1, "http_protocol", "invalid http_protocol version '%s' (1.0|1.0C|1.1)", s)
			}
		}}
		t["virtualhost"] = strKW(func(p *parser, s string) { h(p).Virtualhost = s })
		t["fast_recovery"] = boolKW(func(p *parser, b bool) { h(p).FastRecovery = b })
		t["enable_sni"] = boolKW(func(p *parser, b bool) { h(p).EnableSNI = b })
		t["sni_name"] = strKW(func(p *parser, s string) { h(p).SNIName = s })
		t["tls_compliant"] = boolKW(func(p *parser, b bool) { h(p).TLSCompliant = b })
		t["nb_get_retry"] = &keyword{min: 1, fn: func(p *parser, l *Line) {
			p.warnf(l, 0, "nb_get_retry", "nb_get_retry is deprecated - please use 'retry'")
			p.last(config.Noted)
			if v, ok := p.integer(l, 1, 0, maxU32); ok {
				n := int(v)
				c(p).Retry = &n
			}
		}}
	case config.MiscCheck:
		m := func(p *parser) *config.MiscSpec { return c(p).Misc }
		t["misc_path"] = scriptKW(func(p *parser, s *config.Script) {
			user, group := m(p).Path.User, m(p).Path.Group
			m(p).Path = *s
			if s.User == "" {
				m(p).Path.User, m(p).Path.Group = user, group
			}
		})
		t["misc_timeout"] = timerKW(0, maxTimerUS, func(p *parser, d time.Duration) { m(p).Timeout = d })
		t["misc_dynamic"] = flagKW(func(p *parser) { m(p).Dynamic = true })
		t["user"] = &keyword{min: 1, fn: func(p *parser, l *Line) {
			m(p).Path.User, m(p).Path.Group = userGroup(l.Words[1:])
		}}
	case config.SMTPCheck:
		t["helo_name"] = strKW(func(p *parser, s string) { c(p).SMTP.HeloName = s })
		ignoreBlocks(t, extra, "host")
	case config.DNSCheck:
		t["type"] = &keyword{min: 1, fn: func(p *parser, l *Line) {
			switch s := strings.ToUpper(l.Words[1].Text); s {
			case "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA", "RRSIG", "DNSKEY":
				c(p).DNS.Type = s
			default:
				p.errorf(l, 1, "type", "DNS_CHECK: unknown type '%s'", l.Words[1].Text)
			}
		}}
		t["name"] = strKW(func(p *parser, s string) { c(p).DNS.Name = s })
	case config.UDPCheck:
		t["payload"] = &keyword{min: 1, fn: func(p *parser, l *Line) {
			if b, ok := p.hexBytes(l, 1); ok {
				c(p).UDP.Payload = b
			}
		}}
		t["require_reply"] = &keyword{fn: func(p *parser, l *Line) {
			c(p).UDP.RequireReply = true
			c(p).UDP.ReplyPattern = rest(l, 1)
		}}
		t["min_reply_length"] = intKW(0, 65535, func(p *parser, v int) { c(p).UDP.MinReplyLength = v })
		t["max_reply_length"] = intKW(0, 65535, func(p *parser, v int) { c(p).UDP.MaxReplyLength = v })
	case config.FileCheck:
		t["track_file"] = strKW(func(p *parser, s string) { c(p).File.TrackFile = s })
		t["weight"] = &keyword{min: 1, fn: func(p *parser, l *Line) {
			// keepalived 2.2.7 does not bound FILE_CHECK's weight here.
			v, ok := p.integer(l, 1, -maxI32, maxI32)
			if !ok {
				return
			}
			c(p).File.Weight = int(v)
			c(p).File.Reverse = arg(l, 2) == "reverse"
		}}
	case config.BFDCheck:
		t["name"] = strKW(func(p *parser, s string) { c(p).BFD.Name = s })
		t["alpha"] = boolPtrKW(func(p *parser, b *bool) { c(p).Alpha = b })
	}
	return t
}

// hexBytes reads keepalived.conf(5)'s free-format HEX_STR from word i on:
// each group of hex digits gives bytes two digits at a time, and a last
// single digit is a byte of its own ("Ab12f 3" is AB 12 0F 03).
func (p *parser) hexBytes(l *Line, i int) ([]byte, bool) {
	var out []byte
	for j := i; j < len(l.Words); j++ {
		s := l.Words[j].Text
		for k := 0; k < len(s); k += 2 {
			end := min(k+2, len(s))
			v, err := strconv.ParseUint(s[k:end], 16, 8)
			if err != nil {
				kw := arg(l, 0)
				p.errorf(l, j, kw, "%s: invalid hex string '%s'", kw, s)
				p.last(config.Ignored)
				return nil, false
			}
			out = append(out, byte(v))
		}
	}
	return out, true
}
