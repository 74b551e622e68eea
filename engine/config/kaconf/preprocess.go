package kaconf

import (
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/keepwatch/keepwatch/engine/config"
)

// definition is a $NAME=VALUE parameter (keepalived's def_t). A multi-line
// value keeps its lines separated by '\n', as keepalived stores it.
type definition struct {
	name      string
	value     string
	multiline bool
	// builtin computes the value at each use (${_PWD}, ${_RANDOM ...});
	// defining the name replaces it.
	builtin   func(r *reader, params string) string
	maxParams int
}

func (r *reader) initDefinitions() {
	r.defs = map[string]*definition{
		"_PWD":      {name: "_PWD", builtin: (*reader).pwd},
		"_INSTANCE": {name: "_INSTANCE", builtin: func(r *reader, _ string) string { return r.id }},
		"_RANDOM":   {name: "_RANDOM", builtin: (*reader).random, maxParams: 2},
		// ${_HASH} and ${_BANG} exist since keepalived 2.1.5; the tokenizer
		// still reads them as comments unless double-quoted.
		"_HASH": {name: "_HASH", value: "#"},
		"_BANG": {name: "_BANG", value: "!"},
		// ${_ENV NAME} is keepalived 2.4.0+; 2.2.7 leaves it unreplaced.
		"_ENV": {name: "_ENV", builtin: (*reader).env, maxParams: 1},
	}
}

// pwd is ${_PWD}: keepalived chdir()s into each included file's directory.
func (r *reader) pwd(string) string {
	d := path.Dir(r.cur.fsPath)
	if r.root == "" {
		return d
	}
	if d == "." {
		return r.root
	}
	return r.root + d
}

// random is ${_RANDOM [MIN [MAX]]}: an integer in [MIN, MAX], default
// [0, 32767].
func (r *reader) random(params string) string {
	lo, hi := uint64(0), uint64(32767)
	f := strings.Fields(params)
	if len(f) > 0 {
		lo, _ = strconv.ParseUint(f[0], 10, 32)
	}
	if len(f) > 1 {
		hi, _ = strconv.ParseUint(f[1], 10, 32)
	}
	if hi < lo {
		hi = lo
	}
	return strconv.FormatUint(lo+r.rng.Uint64N(hi-lo+1), 10)
}

func (r *reader) env(params string) string {
	v, _ := r.opts.LookupEnv(strings.TrimSpace(params))
	return v
}

// conditional applies an @ID or @^ID prefix (reference §1.1): the line is
// kept, without its prefix, only if ID matches (or, for @^, does not match)
// the config-id. A prefix with nothing after it drops the line.
func (r *reader) conditional(t text) (text, bool) {
	ofs := 1
	rev := len(t.s) > 1 && t.s[1] == '^'
	if rev {
		ofs = 2
	}
	sp := strings.IndexAny(t.s[ofs:], " \t")
	if sp < 0 {
		return t, false
	}
	match := r.id != "" && t.s[ofs:ofs+sp] == r.id
	if match == rev {
		return t, false
	}
	t = t.slice(ofs+sp, len(t.s)).trimLeft()
	return t, len(t.s) > 0
}

// define handles a $NAME=VALUE line (keepalived check_definition()): no blank
// may come between NAME and '='; a VALUE ending in '\' continues on the
// following lines. It reports false if the line is not a definition.
func (r *reader) define(t text) bool {
	s := t.s
	if len(s) < 2 || !(isAlpha(s[1]) || s[1] == '_') {
		return false
	}
	p := 2
	for p < len(s) && s[p] != '=' {
		if !isNameByte(s[p]) {
			return false
		}
		p++
	}
	if p >= len(s) {
		return false
	}
	name := s[1:p]
	v := strings.TrimLeft(s[p+1:], " \t")
	d := &definition{name: name}
	if strings.HasSuffix(v, `\`) {
		v = strings.TrimRight(v[:len(v)-1], " \t")
		if v != "" {
			v += "\n"
		}
		d.multiline = true
		r.pending = d
	}
	d.value = v
	r.defs[name] = d
	return true
}

// continuePending adds a line to the multi-line definition being read.
func (r *reader) continuePending(t text) {
	d := r.pending
	s := t.s
	if s == "" {
		// A comment-only line: skipped (verified 2.2.7).
		return
	}
	if strings.HasSuffix(s, `\`) {
		s = strings.TrimRight(s[:len(s)-1], " \t")
		if s != "" {
			d.value += s + "\n"
		}
		return
	}
	d.value += s
	r.endPending()
}

func (r *reader) endPending() {
	if r.pending != nil && r.pending.value == "" {
		r.pending.multiline = false
	}
	r.pending = nil
}

// use finds a parameter use at s[i] == '$' (keepalived find_definition()):
// $NAME followed by a blank, ',', ')' or the end of the line, or ${NAME}
// anywhere; only built-ins take parameters (${_RANDOM 1 6}). A multi-line
// definition is only used at the end of a line. It returns the definition,
// the end of the use and the parameter text.
func (r *reader) use(s string, i int) (*definition, int, string) {
	j := i + 1
	braces := j < len(s) && s[j] == '{'
	if braces {
		j++
	}
	if j >= len(s) || !(isAlpha(s[j]) || s[j] == '_') {
		return nil, 0, ""
	}
	k := j + 1
	for k < len(s) && isNameByte(s[k]) {
		k++
	}
	name := s[j:k]
	end := k
	params := ""
	if braces {
		p := k
		if name == "_ENV" {
			// ${_ENV NAME}: the parameter is a variable name.
			for p < len(s) && (s[p] == ' ' || isNameByte(s[p])) {
				p++
			}
		} else {
			for p < len(s) && (s[p] == ' ' || isDigit(s[p])) {
				p++
			}
		}
		params = s[k:p]
		if tp := strings.TrimSpace(params); tp != "" && strings.HasSuffix(params, " ") {
			return nil, 0, ""
		}
		if p >= len(s) || s[p] != '}' {
			return nil, 0, ""
		}
		end = p + 1
	} else if k < len(s) && !strings.ContainsRune(" \t,)", rune(s[k])) {
		return nil, 0, ""
	}
	d := r.defs[name]
	if d == nil || (d.multiline && end != len(s)) {
		return nil, 0, ""
	}
	if strings.TrimSpace(params) != "" && d.maxParams == 0 {
		return nil, 0, ""
	}
	return d, end, params
}

// substitute replaces parameter uses in t (keepalived replace_param()). A
// replacement is scanned again at once, so values may use other parameters;
// substitution is by value at the time of use. A value starting with '~'
// stops the scan so the caller can run the generator. For a multi-line
// definition the line takes its first line and more holds the others.
func (r *reader) substitute(t text) (out text, changed bool, more []string, moreCol int) {
	i := 0
	for n := 0; ; n++ {
		j := strings.IndexByte(t.s[i:], '$')
		if j < 0 {
			break
		}
		i += j
		if i+1 >= len(t.s) {
			break
		}
		d, end, params := r.use(t.s, i)
		if d == nil {
			i++
			continue
		}
		if n >= 10000 {
			r.errorf(t.col(i), "parameter substitution does not terminate on line '%s'", t.s)
			return t, false, nil, 0
		}
		value := d.value
		if d.builtin != nil {
			value = d.builtin(r, params)
		}
		repl := value
		var rest []string
		if d.multiline {
			first, tail, ok := strings.Cut(value, "\n")
			repl = first
			if ok {
				rest = strings.Split(tail, "\n")
			}
		}
		if len(t.s)-(end-i)+len(repl) > maxLineLen {
			// keepalived logs this and keeps the line as substituted so far.
			r.logf(config.Warning, t.col(i), "parameter substitution on line '%s' would exceed maximum line length", t.s)
			return t, false, nil, 0
		}
		col := t.col(i)
		t = t.replace(i, end, repl, col)
		changed = true
		if rest != nil {
			more = append(rest, more...)
			moreCol = col
		}
		if strings.HasPrefix(strings.TrimLeft(value, " \t"), "~") {
			break
		}
	}
	return t, changed, more, moreCol
}

// substituteString substitutes parameters in generator arguments.
func (r *reader) substituteString(s string, col int) (string, bool) {
	t, _, more, _ := r.substitute(constText(s, col))
	return t.s, more == nil
}

// strtol parses a C long as strtol(s, &end, 0) does: leading white space, a
// sign, then 0x hex, 0 octal or decimal; it saturates on overflow and returns
// how many bytes it used (0 if none).
func strtol(s string) (int64, int) {
	i := 0
	for i < len(s) && isWhite(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := uint64(10)
	if i+1 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && i+2 < len(s) && isHex(s[i+2]) {
		base = 16
		i += 2
	} else if i < len(s) && s[i] == '0' {
		base = 8
	}
	start := i
	var v uint64
	over := false
	for i < len(s) {
		c := s[i]
		var d uint64
		switch {
		case isDigit(c):
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			d = 99
		}
		if d >= base {
			break
		}
		if v > (math.MaxUint64-d)/base {
			over = true
		} else {
			v = v*base + d
		}
		i++
	}
	if i == start {
		return 0, 0
	}
	switch {
	case !neg && (over || v > math.MaxInt64):
		return math.MaxInt64, i
	case neg && (over || v > 1<<63):
		return math.MinInt64, i
	case neg:
		return -int64(v), i
	}
	return int64(v), i
}

// seq runs a ~SEQ(var, [start,] [step,] end) or ~SEQx(...) line (keepalived
// add_seq(); reference §1.1): the rest of the line is read once per value,
// with $var set to it (in lower-case hex for ~SEQx).
func (r *reader) seq(t text) {
	s := t.s
	bad := func(format string) {
		if format != "" {
			r.errorf(t.col(0), format, s)
		}
		r.errorf(t.col(0), "Invalid ~SEQ specification '%s'", s)
	}
	p := 4
	hex := p < len(s) && s[p] == 'x'
	if hex {
		p++
	}
	p = skipBlanks(s, p)
	if p >= len(s) || s[p] != '(' {
		bad("")
		return
	}
	p = skipBlanks(s, p+1)
	v0 := p
	for p < len(s) && !strings.ContainsRune(" \t,)", rune(s[p])) {
		p++
	}
	name := s[v0:p]
	p = skipBlanks(s, p)
	if p >= len(s) || s[p] == ')' || name == "" {
		bad("Invalid ~SEQ definition '%s'")
		return
	}
	p = skipBlanks(s, p+1)
	e := strings.IndexByte(s[p:], ')')
	// keepalived copies the arguments into a 64-byte buffer.
	if e < 0 || e+2 > 3*20+3+1 {
		bad("~SEQ parameter strings too long '%s'")
		return
	}
	args, ok := r.substituteString(s[p:p+e+1], t.col(p))
	if !ok {
		bad("~SEQ parameter is multiline definition '%s'")
		return
	}
	var start, step, end int64
	one, n := strtol(args)
	q := skipBlanks(args, n)
	switch {
	case q < len(args) && args[q] == ')':
		end = one
		step, start = 1, 1
		if end < 1 {
			step = -1
		}
		if end < 0 {
			start = -1
		}
	case q >= len(args) || args[q] != ',':
		bad("Invalid ~SEQ definition '%s'")
		return
	default:
		two, n := strtol(args[q+1:])
		q = skipBlanks(args, q+1+n)
		switch {
		case q < len(args) && args[q] == ')':
			start, end = one, two
			step = 1
			if start > end {
				step = -1
			}
		case q >= len(args) || args[q] != ',':
			bad("Invalid ~SEQ definition '%s'")
			return
		default:
			three, n := strtol(args[q+1:])
			q = skipBlanks(args, q+1+n)
			if q >= len(args) || args[q] != ')' {
				bad("Invalid ~SEQ definition '%s'")
				return
			}
			start, step, end = one, two, three
			if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
				bad("Invalid ~SEQ values '%s'")
				return
			}
		}
	}
	if hex && (start < 0 || end < 0) {
		bad("~SEQx is only valid for positive numbers '%s'")
		return
	}
	rest := t.slice(skipBlanks(s, p+e+1), len(s))
	r.generate(func(yield func() bool) {
		for v := start; ; {
			if hex {
				r.set(name, strconv.FormatUint(uint64(v), 16))
			} else {
				r.set(name, strconv.FormatInt(v, 10))
			}
			if !yield() {
				return
			}
			next := v + step
			if (step > 0 && (next > end || next < v)) || (step < 0 && (next < end || next > v)) {
				return
			}
			v = next
		}
	}, rest)
}

// lst runs a ~LST(var, v1, v2, …) or ~LST({a,b}, {1,2}, {3,4}) line: the rest
// of the line is read once per value (or tuple of values). Values may be
// empty but may not contain blanks or quotes (verified 2.2.7).
func (r *reader) lst(t text) {
	s := t.s
	bad := func() { r.errorf(t.col(0), "Invalid ~LST specification '%s'", s) }
	p := skipBlanks(s, 4)
	if p >= len(s) || s[p] != '(' {
		bad()
		return
	}
	e := strings.IndexByte(s[p:], ')')
	if e < 0 {
		bad()
		return
	}
	args, ok := r.substituteString(s[p+1:p+e], t.col(p+1))
	if !ok {
		bad()
		return
	}
	items, ok := splitList(args)
	if !ok || len(items) < 2 {
		bad()
		return
	}
	vars := items[0]
	for _, v := range vars {
		if v == "" || !(isAlpha(v[0]) || v[0] == '_') || strings.IndexFunc(v, func(c rune) bool { return c > 0x7f || !isNameByte(byte(c)) }) >= 0 {
			bad()
			return
		}
	}
	rest := t.slice(skipBlanks(s, p+e+1), len(s))
	r.generate(func(yield func() bool) {
		for _, vals := range items[1:] {
			for i, v := range vals {
				if i < len(vars) {
					r.set(vars[i], v)
				}
			}
			if !yield() {
				return
			}
		}
	}, rest)
}

// splitList splits "a, {b, c}, d" into [[a] [b c] [d]].
func splitList(s string) ([][]string, bool) {
	var items [][]string
	p := 0
	for {
		p = skipBlanks(s, p)
		var item []string
		if p < len(s) && s[p] == '{' {
			e := strings.IndexByte(s[p:], '}')
			if e < 0 {
				return nil, false
			}
			for _, v := range strings.Split(s[p+1:p+e], ",") {
				v = strings.Trim(v, " \t")
				if !plainValue(v) {
					return nil, false
				}
				item = append(item, v)
			}
			p = skipBlanks(s, p+e+1)
		} else {
			e := strings.IndexByte(s[p:], ',')
			if e < 0 {
				e = len(s) - p
			}
			v := strings.Trim(s[p:p+e], " \t")
			if !plainValue(v) {
				return nil, false
			}
			item = []string{v}
			p += e
		}
		items = append(items, item)
		if p >= len(s) {
			return items, true
		}
		if s[p] != ',' {
			return nil, false
		}
		p++
	}
}

func plainValue(v string) bool { return !strings.ContainsAny(v, " \t\"'{}") }

func skipBlanks(s string, p int) int {
	for p < len(s) && isBlank(s[p]) {
		p++
	}
	return p
}

// set defines a generator variable.
func (r *reader) set(name, value string) {
	r.defs[name] = &definition{name: name, value: value}
}

// generate reads rest once per iteration of values.
func (r *reader) generate(values func(yield func() bool), rest text) {
	if r.depth >= maxDepth {
		r.errorf(rest.col(0), "generators nested more than %d deep", maxDepth)
		return
	}
	r.depth++
	values(func() bool {
		if !r.spend() {
			return false
		}
		r.process(rest)
		return !r.stopped
	})
	r.depth--
}
