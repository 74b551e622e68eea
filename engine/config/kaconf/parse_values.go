package kaconf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// Value parsing, with keepalived's messages (lib/parser.c read_int_strvec,
// read_unsigned_strvec, read_decimal_unsigned_strvec): "invalid number 'x'",
// "negative number '-1'", "number 'x' outside range [lo, hi]". Each message
// is prefixed with the keyword so the diagnostic names keyword and value.

// integer parses word i of l as a decimal integer in [lo, hi].
func (p *parser) integer(l *Line, i int, lo, hi int64) (int64, bool) {
	return p.integerOf(l, i, arg(l, 0), lo, hi)
}

// integerOf is integer for a value that is not the line's first argument,
// named kw in messages (e.g. "track_script chk weight").
func (p *parser) integerOf(l *Line, i int, kw string, lo, hi int64) (int64, bool) {
	s := arg(l, i)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			p.errorf(l, i, kw, "%s: number '%s' outside range [%d, %d]", kw, s, lo, hi)
			return 0, false
		}
		p.errorf(l, i, kw, "%s: invalid number '%s'", kw, s)
		return 0, false
	}
	if v < 0 && lo >= 0 {
		p.errorf(l, i, kw, "%s: negative number '%s'", kw, s)
		return 0, false
	}
	if v < lo || v > hi {
		p.errorf(l, i, kw, "%s: number '%s' outside range [%d, %d]", kw, s, lo, hi)
		return 0, false
	}
	return v, true
}

// micros parses a decimal number of seconds ("1", "0.5", "1.000000") into
// microseconds, keepalived's timer resolution (keepalived.conf(5) <TIMER>).
// It uses no floating point, so printing and re-reading a value is exact.
func micros(s string) (int64, bool) {
	neg := strings.HasPrefix(s, "-")
	if neg || strings.HasPrefix(s, "+") {
		s = s[1:]
	}
	ip, fp, _ := strings.Cut(s, ".")
	if ip == "" && fp == "" {
		return 0, false
	}
	var v int64
	for _, c := range ip {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
		if v > 1<<50 {
			return 0, false
		}
	}
	var f int64
	for i, c := range fp {
		if c < '0' || c > '9' {
			return 0, false
		}
		if i < 6 {
			f = f*10 + int64(c-'0')
		}
	}
	for i := len(fp); i < 6; i++ {
		f *= 10
	}
	v = v*1e6 + f
	if neg {
		v = -v
	}
	return v, true
}

// fmtMicros prints microseconds as keepalived's decimal seconds.
func fmtMicros(us int64) string {
	s := strconv.FormatInt(us/1e6, 10)
	if f := us % 1e6; f != 0 {
		if f < 0 {
			f = -f
		}
		s += strings.TrimRight(fmt.Sprintf(".%06d", f), "0")
	}
	return s
}

// seconds formats a duration as keepalived's decimal seconds.
func seconds(d time.Duration) string { return fmtMicros(d.Microseconds()) }

// timer parses word i of l as decimal seconds in [lo, hi] microseconds.
func (p *parser) timer(l *Line, i int, lo, hi int64) (time.Duration, bool) {
	kw, s := arg(l, 0), arg(l, i)
	v, ok := micros(s)
	if !ok {
		p.errorf(l, i, kw, "%s: invalid number '%s'", kw, s)
		return 0, false
	}
	if v < 0 {
		p.errorf(l, i, kw, "%s: negative number '%s'", kw, s)
		return 0, false
	}
	if v < lo || v > hi {
		p.errorf(l, i, kw, "%s: number '%s' outside range [%s, %s]", kw, s, fmtMicros6(lo), fmtMicros6(hi))
		return 0, false
	}
	return time.Duration(v) * time.Microsecond, true
}

// fmtMicros6 prints a bound the way keepalived's range messages do (%.6f).
func fmtMicros6(us int64) string { return fmt.Sprintf("%d.%06d", us/1e6, us%1e6) }

// boolean parses keepalived's <BOOL> (check_true_false): a keyword with no
// argument means true.
func (p *parser) boolean(l *Line, i int) (bool, bool) {
	if i >= len(l.Words) {
		return true, true
	}
	switch strings.ToLower(l.Words[i].Text) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	kw := arg(l, 0)
	p.errorf(l, i, kw, "%s: invalid boolean '%s' (on|off|true|false|yes|no)", kw, l.Words[i].Text)
	return false, false
}

// isFalse reports whether s is one of the <BOOL> words for false.
func isFalse(s string) bool {
	switch strings.ToLower(s) {
	case "off", "false", "no":
		return true
	}
	return false
}

// addr parses word i of l as an IP address.
func (p *parser) addr(l *Line, i int) (netip.Addr, bool) {
	a, err := netip.ParseAddr(arg(l, i))
	if err != nil {
		kw := arg(l, 0)
		p.errorf(l, i, kw, "%s: invalid IP address '%s'", kw, arg(l, i))
		return netip.Addr{}, false
	}
	return a, true
}

// Keyword constructors for the tables. set functions reach the object being
// filled through the parser.

func intKW(lo, hi int64, set func(p *parser, v int)) *keyword {
	return &keyword{min: 1, fn: func(p *parser, l *Line) {
		if v, ok := p.integer(l, 1, lo, hi); ok {
			set(p, int(v))
		}
	}}
}

func intPtrKW(lo, hi int64, set func(p *parser, v *int)) *keyword {
	return intKW(lo, hi, func(p *parser, v int) { set(p, &v) })
}

func timerKW(lo, hi int64, set func(p *parser, d time.Duration)) *keyword {
	return &keyword{min: 1, fn: func(p *parser, l *Line) {
		if d, ok := p.timer(l, 1, lo, hi); ok {
			set(p, d)
		}
	}}
}

func timerPtrKW(lo, hi int64, set func(p *parser, d *time.Duration)) *keyword {
	return timerKW(lo, hi, func(p *parser, d time.Duration) { set(p, &d) })
}

// boolKW is a <BOOL> keyword whose bare form means true.
func boolKW(set func(p *parser, b bool)) *keyword {
	return &keyword{fn: func(p *parser, l *Line) {
		if b, ok := p.boolean(l, 1); ok {
			set(p, b)
		}
	}}
}

func boolPtrKW(set func(p *parser, b *bool)) *keyword {
	return boolKW(func(p *parser, b bool) { set(p, &b) })
}

// flagKW is a keyword that takes no argument; extra words are ignored, as
// keepalived ignores them.
func flagKW(set func(p *parser)) *keyword {
	return &keyword{fn: func(p *parser, _ *Line) { set(p) }}
}

func strKW(set func(p *parser, s string)) *keyword {
	return &keyword{min: 1, fn: func(p *parser, l *Line) { set(p, l.Words[1].Text) }}
}

func addrKW(set func(p *parser, a netip.Addr)) *keyword {
	return &keyword{min: 1, fn: func(p *parser, l *Line) {
		if a, ok := p.addr(l, 1); ok {
			set(p, a)
		}
	}}
}

func scriptKW(set func(p *parser, s *config.Script)) *keyword {
	return &keyword{min: 1, fn: func(p *parser, l *Line) { set(p, p.script(l, 1)) }}
}

// ignoredKW keeps a rare keyword keepwatch does not act on (reference tier
// R) in the block's Extra, and says so.
func ignoredKW(extra func(p *parser) *[]config.Setting) *keyword {
	return &keyword{fn: func(p *parser, l *Line) {
		s := setting(p, l)
		p.ignored(l, s.Keyword)
		dst := extra(p)
		*dst = append(*dst, s)
	}}
}

// ignored says that keepwatch does not act on keyword kw. The note is
// keepwatch's own (it leaves check's exit code alone), except for the
// keywords keepalived 2.2.7 itself reports however they are written:
// those it does not know (newer keywords), the deprecated ones, and
// vrrp_iptables/vrrp_ipsets, which the Debian build does not support
// [verified with keepalived -t on each]. For those keepalived -t exits 5,
// and so does check.
func (p *parser) ignored(l *Line, kw string) {
	p.warnf(l, 0, kw, "keyword %s is accepted but ignored by keepwatch", kw)
	if keepalivedReports[kw] {
		p.last(config.Ignored)
		return
	}
	p.last(config.NotImplemented)
}

var keepalivedReports = map[string]bool{
	// Unknown to 2.2.7 ("Unknown keyword").
	"json_dump_file": true, "stats_dump_file": true, "state_dump_file": true, "json_version": true,
	"set_supplementary_groups": true, "use_symlink_paths": true, "vrrp_delay_after_boot": true,
	"iproute_usr_dir": true, "iproute_etc_dir": true, "snmp_vs_stats_update_interval": true,
	"snmp_rs_stats_update_interval": true, "dbus_no_interface_name": true, "thread_timer_expired": true,
	"timer_expired_backup": true, "owner_ignore_adverts": true, "auth_hmac": true, "tls_compliant": true,
	// Deprecated.
	"vrrp_vmac_garp_intvl": true, "vmac_garp_intvl": true, "linkbeat_use_polling": true,
	"lvs_sync_daemon_interface": true,
	// "iptables not supported, using nftables instead".
	"vrrp_iptables": true, "vrrp_ipsets": true,
}

// ignoredBlockKW is ignoredKW for a keyword that opens a block.
func ignoredBlockKW(extra func(p *parser) *[]config.Setting) *keyword {
	return &keyword{fn: func(p *parser, l *Line) {
		s := setting(p, l)
		p.ignored(l, s.Keyword)
		s.Block = p.capture()
		dst := extra(p)
		*dst = append(*dst, s)
	}}
}

// ignore adds names to t as ignored keywords.
func ignore(t table, extra func(p *parser) *[]config.Setting, names ...string) {
	k := ignoredKW(extra)
	for _, n := range names {
		t[n] = k
	}
}

// ignoreBlocks adds names to t as ignored block keywords.
func ignoreBlocks(t table, extra func(p *parser) *[]config.Setting, names ...string) {
	k := ignoredBlockKW(extra)
	for _, n := range names {
		t[n] = k
	}
}

// script reads a script specification starting at word i: the command (one
// word, quoted if it has arguments; keepalived.conf(5) SCRIPTS) and an
// optional `user [:][group]`. Script keywords are keepalived's "quoted"
// keywords: both quote characters group and escapes are processed.
func (p *parser) script(l *Line, i int) *config.Script {
	s := &config.Script{Pos: p.pos(l, i)}
	qw, err := l.QuotedWords()
	if err != nil {
		p.errorf(l, i, arg(l, 0), "%s: %v", arg(l, 0), err)
		p.last(config.Ignored)
	}
	if i >= len(qw) {
		qw = l.Words
	}
	s.Command = qw[i].Text
	s.User, s.Group = userGroup(qw[i+1:])
	s.Args = splitScript(s.Command)
	return s
}

// userGroup reads `user`, `user group`, `user :group` or `user:group`.
func userGroup(ws []Word) (user, group string) {
	if len(ws) == 0 {
		return "", ""
	}
	user = ws[0].Text
	if u, g, ok := strings.Cut(user, ":"); ok {
		return u, g
	}
	if len(ws) > 1 {
		group = strings.TrimPrefix(ws[1].Text, ":")
	}
	return user, group
}

// splitScript splits a command into argv: unquoted whitespace separates,
// single or double quotes group, a backslash outside single quotes takes the
// next character literally (reference §1.1, Script specification).
func splitScript(cmd string) []string {
	var (
		args  []string
		cur   strings.Builder
		have  bool
		quote byte
	)
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' && i+1 < len(cmd) && (cmd[i+1] == '"' || cmd[i+1] == '\\') {
				i++
				cur.WriteByte(cmd[i])
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, have = c, true
		case c == '\\' && i+1 < len(cmd):
			i++
			cur.WriteByte(cmd[i])
			have = true
		case c == ' ' || c == '\t':
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}
