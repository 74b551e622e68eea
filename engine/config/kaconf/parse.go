package kaconf

import (
	"slices"
	"strings"

	"github.com/keepwatch/keepwatch/engine/config"
)

// Parse turns the reader's logical lines into a config model, reporting what
// keepalived would report while parsing (unknown keywords, missing
// parameters, values out of range) at the file, line and column of the word
// concerned. Cross-block checks are config.Validate's job.
//
// Parse follows keepalived's structure (lib/parser.c process_stream,
// reference §1.1) rather than a grammar: a block keyword expects '{' on the
// next line; an unknown keyword only warns, and if it opened a block that
// block is not skipped, so its lines are read at the current level and its
// '}' closes the enclosing block.
func Parse(lines []Line, source string) (*config.Config, config.Diagnostics) {
	return parse(lines, source, nil)
}

// parse is Parse with the name tables route and rule options are resolved
// with (nil: names other than the built-in ones are not checked).
func parse(lines []Line, source string, tables *config.RTTables) (*config.Config, config.Diagnostics) {
	p := &parser{lines: lines, cfg: &config.Config{Source: source}, tables: tables}
	p.cfg.Global = newGlobal()
	p.block(rootKeywords, 0)
	p.vsProtocols()
	p.cfg.Instances = trimmed(p.cfg.Instances)
	for i := range p.cfg.Instances {
		in := &p.cfg.Instances[i]
		in.VIPs, in.ExcludedVIPs = trimmed(in.VIPs), trimmed(in.ExcludedVIPs)
	}
	return p.cfg, p.diags
}

// trimmed returns s without the spare capacity append left it, copied if
// it had any. The agent keeps the running config for its life (status,
// the signal dumps, the next reload): at 250 instances appending left room
// for ~40 more vrrp_instances of 672 bytes each, ~110 bytes an instance
// (issue 12).
func trimmed[S ~[]E, E any](s S) S {
	if cap(s) == len(s) || len(s) == 0 {
		return s
	}
	return slices.Clone(s)
}

// parser is the state of one Parse. Handlers reach the object being filled
// through the accessors below (the last element of the relevant slice), as
// keepalived's handlers use LIST_TAIL_DATA.
type parser struct {
	// tables resolves table, protocol and realm names (nil: unchecked).
	tables *config.RTTables
	lines  []Line
	next   int
	cfg    *config.Config
	diags  config.Diagnostics
	// closing is the line of the '}' that ended the last block, where
	// keepalived reports checks made when a block closes.
	closing *Line
	// endBlock makes the current block end after a handler, as
	// keepalived's skip_block() does.
	endBlock bool
	// seen holds "keyword\x00name" of the named blocks read so far.
	seen map[string]bool
	// advertPos is where the current instance's advert_int was set.
	advertPos config.Pos
	// stateSet records that the current instance has a state keyword.
	stateSet bool
	// curInst names the vrrp_instance being read, "" outside one: its
	// diagnostics carry it (config.Diagnostic.Instance).
	curInst string
}

// keyword is one entry of a keyword table. Exactly one of fn, open and
// entry is set.
type keyword struct {
	// min is the number of arguments the keyword requires.
	min int
	// fn handles a keyword without a block.
	fn func(p *parser, l *Line)
	// open handles a keyword that opens a block of keywords and returns the
	// table for that block, or nil to skip the block (keepalived's
	// skip_block, e.g. after "vrrp_instance must have a name").
	open func(p *parser, l *Line) table
	// close, if set, runs when the block opened by open ends.
	close func(p *parser, l *Line)
	// entry handles each line of a value block (virtual_ipaddress,
	// track_script, ...): the block holds entries, not keywords.
	entry func(p *parser, l *Line)
	// start, if set, runs on the keyword line of a value block; false skips
	// the block.
	start func(p *parser, l *Line) bool
}

// missingTolerated are the keywords whose keepalived 2.2.7 handler checks
// for its parameter and ignores the line without one; for every other
// keyword that needs a parameter, a line without it stops keepalived
// (lib/parser.c strvec_slot). Found by running keepalived -t on each
// keyword of the tables alone in its block [verified 2.2.7: 87 of 107
// keyword lines exit 2; these 19 keywords (20 lines) do not].
var missingTolerated = map[string]bool{
	"router_id": true, "notification_email_from": true, "smtp_helo_name": true, "script_user": true,
	"default_interface": true, "startup_script": true, "shutdown_script": true,
	"notify_fifo": true, "notify_fifo_script": true, "vrrp_notify_fifo": true, "vrrp_notify_fifo_script": true,
	"lvs_notify_fifo": true, "lvs_notify_fifo_script": true, "lvs_sync_daemon": true, "lvs_timeouts": true,
	"script": true, "virtualhost": true, "sorry_server_lvs_method": true, "snmp_name": true,
}

// table maps the keywords of one block level to their handlers.
type table map[string]*keyword

// block reads lines into the keywords of t until the '}' that ends the
// block (depth > 0) or the end of input.
func (p *parser) block(t table, depth int) {
	needOpen := depth > 0
	for p.next < len(p.lines) {
		l := &p.lines[p.next]
		p.next++
		if len(l.Words) == 0 {
			continue
		}
		word := l.Words[0].Text
		if needOpen {
			needOpen = false
			if word == "{" {
				continue
			}
			p.errorf(l, 0, "", "missing '{' at beginning of configuration block")
			p.last(config.Ignored)
		} else if word == "{" {
			p.warnf(l, 0, "", "unexpected '{' - ignoring")
			p.last(config.Ignored)
			continue
		}
		if word == "}" && depth > 0 {
			p.closing = l
			return
		}
		k := t[word]
		if k == nil {
			p.warnf(l, 0, word, "unknown keyword '%s'", word)
			p.last(config.Ignored)
			continue
		}
		if len(l.Words)-1 < k.min {
			p.errorf(l, 0, word, "keyword '%s' is missing a parameter", word)
			if missingTolerated[word] {
				// The handler checks and logs ("routerid name missing -
				// ignoring"): the keyword is ignored.
				p.last(config.Ignored)
			} else {
				// keepalived's strvec_slot exits on this ("permanent error
				// CONFIG"; -t exits 2) [verified 2.2.7].
				p.last(config.Stops)
				p.diags[len(p.diags)-1].Abort = true
			}
			if k.open != nil || k.entry != nil {
				p.skipBlock()
			}
			continue
		}
		switch {
		case k.open != nil:
			sub := k.open(p, l)
			if sub == nil {
				p.skipBlock()
				continue
			}
			p.closing = nil
			p.block(sub, depth+1)
			if k.close != nil {
				end := p.closing
				if end == nil {
					end = l
				}
				k.close(p, end)
			}
		case k.entry != nil:
			if k.start != nil && !k.start(p, l) {
				p.skipBlock()
				continue
			}
			p.valueBlock(k.entry)
		default:
			k.fn(p, l)
			if p.endBlock {
				p.endBlock = false
				if depth > 0 {
					return
				}
			}
		}
	}
}

// valueBlock feeds each line of a value block to entry. keepalived's
// alloc_value_block only warns when the '{' is missing.
func (p *parser) valueBlock(entry func(p *parser, l *Line)) {
	first := true
	for p.next < len(p.lines) {
		l := &p.lines[p.next]
		p.next++
		if len(l.Words) == 0 {
			continue
		}
		w := l.Words[0].Text
		if first {
			first = false
			if w == "{" {
				continue
			}
			p.warnf(l, 0, "", "'{' missing from beginning of block")
			p.last(config.Noted)
		}
		switch w {
		case "}":
			p.closing = l
			return
		case "{":
			p.warnf(l, 0, "", "unexpected '{' - ignoring")
			p.last(config.Ignored)
			continue
		}
		entry(p, l)
	}
}

// words collects every word of a value block, for blocks that are lists
// (sync group members, notification_email).
func (p *parser) words() []Word {
	var out []Word
	p.valueBlock(func(_ *parser, l *Line) { out = append(out, l.Words...) })
	return out
}

// skipBlock skips a '{' … '}' block that follows, if any, keeping nested
// braces balanced (keepalived's skip_sublevel).
func (p *parser) skipBlock() {
	if p.next >= len(p.lines) || p.lines[p.next].Keyword() != "{" {
		return
	}
	depth := 0
	for p.next < len(p.lines) {
		l := &p.lines[p.next]
		p.next++
		switch l.Keyword() {
		case "{":
			depth++
		case "}":
			depth--
			if depth == 0 {
				return
			}
		}
	}
}

// capture reads a block that keepwatch keeps without modelling it: each line
// becomes a Setting, and a line followed by '{' takes the nested block.
func (p *parser) capture() []config.Setting {
	if p.next >= len(p.lines) || p.lines[p.next].Keyword() != "{" {
		return nil
	}
	p.next++
	var out []config.Setting
	for p.next < len(p.lines) {
		l := &p.lines[p.next]
		p.next++
		switch l.Keyword() {
		case "":
			continue
		case "}":
			return out
		case "{":
			continue
		}
		s := setting(p, l)
		s.Block = p.capture()
		out = append(out, s)
	}
	return out
}

// setting is a line as a config.Setting.
func setting(p *parser, l *Line) config.Setting {
	s := config.Setting{Pos: p.pos(l, 0), Keyword: l.Words[0].Text}
	if len(l.Words) > 1 {
		s.Args = make([]string, len(l.Words)-1)
		for i, w := range l.Words[1:] {
			s.Args[i] = w.Text
		}
	}
	return s
}

// pos is the position of word i of l (the line's start if there is no such word).
func (p *parser) pos(l *Line, i int) config.Pos {
	pos := l.Pos
	if i < len(l.Words) {
		pos.Col = l.Words[i].Col
	} else if len(l.Words) > 0 {
		pos.Col = l.Words[0].Col
	}
	return pos
}

func (p *parser) errorf(l *Line, word int, kw, format string, args ...any) {
	p.diags.Add(p.pos(l, word), config.Error, kw, format, args...)
	p.diags[len(p.diags)-1].Instance = p.curInst
}

func (p *parser) warnf(l *Line, word int, kw, format string, args ...any) {
	p.diags.Add(p.pos(l, word), config.Warning, kw, format, args...)
	p.diags[len(p.diags)-1].Instance = p.curInst
}

// last sets what was done about the diagnostic just reported, where it is
// not what its severity implies (config.Diagnostic.Outcome): keepalived
// skips an entry ("- skipping"), ignores an option, or stops.
func (p *parser) last(a config.Action) { p.diags[len(p.diags)-1].Action = a }

// arg is the text of word i, or "".
func arg(l *Line, i int) string {
	if i < len(l.Words) {
		return l.Words[i].Text
	}
	return ""
}

// rest joins the texts of words from i on.
func rest(l *Line, i int) string {
	if i >= len(l.Words) {
		return ""
	}
	var b strings.Builder
	for j, w := range l.Words[i:] {
		if j > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w.Text)
	}
	return b.String()
}
