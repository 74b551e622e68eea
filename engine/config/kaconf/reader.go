package kaconf

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// DefaultMaxLines bounds the lines (and ~SEQ/~LST iterations) one Read may
// produce, so that a generator such as ~SEQ(i, 1, 1000000000) cannot exhaust
// memory. keepalived's own documentation generates 65,024 instances (about a
// million lines) with three nested ~SEQs.
const DefaultMaxLines = 4 << 20

// maxDepth bounds include nesting and multi-line definition nesting;
// keepalived has no bound and recurses until it runs out of file
// descriptors or stack.
const maxDepth = 64

// ReadOptions tune Read.
type ReadOptions struct {
	// ConfigID selects @ID conditional lines and is ${_INSTANCE}. Empty means
	// the first label of the host name, as keepalived's -i default.
	ConfigID string
	// LookupEnv resolves ${_ENV NAME} (keepalived 2.4.0+). Nil means
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// RandomSeed seeds ${_RANDOM}; 0 seeds from the clock, as keepalived
	// does without random_seed.
	RandomSeed uint64
	// MaxLines bounds the output; 0 means DefaultMaxLines.
	MaxLines int
	// Log receives what keepalived only logs (a missing file under plain
	// include, a directory skipped, a line split for length): worth showing,
	// but not a config error, so not in the returned Diagnostics and not in
	// the exit code of a config test.
	Log func(config.Diagnostic)
}

// Read reads the keepalived.conf at path: it splits lines, removes comments,
// follows includes and applies @conditions, $definitions and ~SEQ/~LST
// generators, as keepalived 2.2.7's lib/parser.c read_line() does, and
// returns the logical lines for the keyword parser. Diagnostics name the file,
// line and column concerned; a Fatal one means the config could not be read.
func Read(filename string, opts ReadOptions) ([]Line, config.Diagnostics) {
	abs, err := filepath.Abs(filename)
	if err != nil {
		var ds config.Diagnostics
		ds.Add(config.Pos{File: filename}, config.Fatal, "", "unable to find configuration file %s: %v", filename, err)
		return nil, ds
	}
	return read(os.DirFS("/"), strings.TrimPrefix(filepath.ToSlash(abs), "/"), filename, "/", opts)
}

// ReadFS is Read over a file system (fstest.MapFS for tests); name is a
// slash-separated path in fsys and ${_PWD} is relative to fsys's root.
func ReadFS(fsys fs.FS, name string, opts ReadOptions) ([]Line, config.Diagnostics) {
	return read(fsys, path.Clean(name), name, "", opts)
}

func read(fsys fs.FS, fsPath, display, root string, opts ReadOptions) ([]Line, config.Diagnostics) {
	r := &reader{fsys: fsys, root: root, opts: opts, id: opts.ConfigID}
	if r.id == "" {
		r.id = hostConfigID()
	}
	if r.opts.MaxLines <= 0 {
		r.opts.MaxLines = DefaultMaxLines
	}
	if r.opts.LookupEnv == nil {
		r.opts.LookupEnv = os.LookupEnv
	}
	seed := opts.RandomSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	r.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	r.initDefinitions()

	top := config.Pos{File: display}
	st, err := fs.Stat(fsys, fsPath)
	switch {
	case err != nil:
		r.diags.Add(top, config.Fatal, "", "unable to find configuration file %s: %v", display, unwrapPathError(err))
		return nil, r.diags
	case st.IsDir() || !st.Mode().IsRegular():
		r.diags.Add(top, config.Fatal, "", "configuration file '%s' is not a regular file", display)
		return nil, r.diags
	}
	r.readFile(fsPath, display, top, config.Fatal)

	// keepalived counts braces in read_line() across all files and reports
	// the balance once at the end (init_data()).
	if r.blockDepth > 0 {
		r.diags.Add(r.lastOpen, config.Error, "", "there are %d missing '}'s or extra '{'s", r.blockDepth)
	}
	return r.out, r.diags
}

// hostConfigID is keepalived's default config-id: the node name up to the
// first dot.
func hostConfigID() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	id, _, _ := strings.Cut(h, ".")
	return id
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// source is a file being read.
type source struct {
	fsPath  string // path in the reader's fs.FS
	display string // path as reported in positions
}

type reader struct {
	fsys fs.FS
	root string // "/" when fsys is the OS root: ${_PWD} is then absolute
	opts ReadOptions
	id   string
	rng  *rand.Rand

	defs map[string]*definition
	// pending is a multi-line $NAME= definition still collecting lines.
	pending *definition

	files []source // include stack, innermost last
	cur   source
	line  int // current physical line number

	out        []Line
	words      []Word // scratch for tokenize
	arena      []Word // backing store for the output's words
	diags      config.Diagnostics
	budget     int  // lines and generator iterations produced so far
	stopped    bool // budget exhausted: stop producing
	depth      int  // nesting of multi-line definitions and generators
	blockDepth int
	lastOpen   config.Pos
}

func (r *reader) pos(col int) config.Pos {
	return config.Pos{File: r.cur.display, Line: r.line, Col: col}
}

// errorf reports a line the reader cannot make sense of; keepalived logs
// it and reads on, so the construct is ignored.
func (r *reader) errorf(col int, format string, args ...any) {
	r.diags.Add(r.pos(col), config.Error, "", format, args...)
	r.diags[len(r.diags)-1].Action = config.Ignored
}

func (r *reader) logf(sev config.Severity, col int, format string, args ...any) {
	if r.opts.Log != nil {
		r.opts.Log(config.Diagnostic{Pos: r.pos(col), Severity: sev, Message: fmt.Sprintf(format, args...)})
	}
}

// spend counts one unit of output against MaxLines, reporting once when the
// budget runs out.
func (r *reader) spend() bool {
	if r.stopped {
		return false
	}
	r.budget++
	if r.budget > r.opts.MaxLines {
		r.stopped = true
		r.diags.Add(r.pos(0), config.Fatal, "", "configuration expands to more than %d lines", r.opts.MaxLines)
		return false
	}
	return true
}

// readFile reads one file (the top one or an include) line by line.
func (r *reader) readFile(fsPath, display string, from config.Pos, sev config.Severity) {
	for _, f := range r.files {
		if f.fsPath == fsPath {
			r.diags.Add(from, config.Error, "include", "include cycle: '%s' is already being read", display)
			return
		}
	}
	if len(r.files) >= maxDepth {
		r.diags.Add(from, config.Error, "include", "includes nested more than %d deep at '%s'", maxDepth, display)
		return
	}
	data, err := fs.ReadFile(r.fsys, fsPath)
	if err != nil {
		r.report(from, sev, "configuration file '%s' open problem (%v) - skipping", display, unwrapPathError(err))
		return
	}
	prevCur, prevLine := r.cur, r.line
	r.files = append(r.files, source{fsPath: fsPath, display: display})
	r.cur = r.files[len(r.files)-1]
	chunks(data, func(c chunk) bool {
		r.line = c.line
		r.physical(c)
		return !r.stopped
	})
	// A multi-line definition ends with its file: keepalived's read_line()
	// keeps that state only while it reads.
	r.endPending()
	r.files = r.files[:len(r.files)-1]
	r.cur, r.line = prevCur, prevLine
}

// physical handles one chunk read from a file.
func (r *reader) physical(c chunk) {
	b := c.b
	if i := indexByte(b, 0); i >= 0 {
		// fgets() reads past a NUL, strlen() stops at it: the rest of the
		// line is lost (and keepalived 2.2.7 miscounts the lines after it).
		r.logf(config.Warning, c.col+i, "line contains a NUL byte: the text after it is ignored")
		b = b[:i]
	}
	if c.long && c.col == 1 {
		r.logf(config.Warning, 1, "line longer than %d bytes: keepalived reads it as several lines", maxLineLen)
	}
	n := len(b)
	for n > 0 && (b[n-1] == '\n' || b[n-1] == '\r') {
		n--
	}
	if n == 0 {
		// An empty line ends a multi-line definition (a comment line
		// does not, verified 2.2.7).
		r.endPending()
		return
	}
	t, unterminated := decomment(newText(string(b[:n]), c.col))
	if unterminated {
		r.errorf(t.col(0), "unterminated quote '%s'", t.s)
	}
	if r.pending != nil {
		r.continuePending(t)
		return
	}
	if len(t.s) == 0 {
		return
	}
	r.process(t)
}

// maxSteps bounds the lines one source line may turn into through brace
// residues and multi-line definitions (generators count against MaxLines):
// a definition whose value contains its own use could otherwise grow
// forever, as it does in keepalived.
const maxSteps = 100000

// group is the rest of a multi-line definition being expanded.
type group struct {
	lines []string
	col   int
}

// process runs a line through keepalived read_line()'s inner loop and emits
// it. The residue after a brace is read next, then the remaining lines of any
// multi-line definition used, innermost first.
func (r *reader) process(t text) {
	var stack []group
	for steps := 0; !r.stopped; steps++ {
		if len(t.s) == 0 {
			for len(stack) > 0 && len(stack[len(stack)-1].lines) == 0 {
				stack = stack[:len(stack)-1]
			}
			if len(stack) == 0 {
				return
			}
			g := &stack[len(stack)-1]
			t = constText(g.lines[0], g.col)
			g.lines = g.lines[1:]
			continue
		}
		if steps > min(maxSteps, r.opts.MaxLines) {
			r.errorf(t.col(0), "line expands to more than %d lines through braces and definitions", maxSteps)
			return
		}
		t2, follow, col, ok := r.prepare(t)
		if len(follow) > 0 {
			if len(stack) >= maxDepth {
				r.errorf(col, "multi-line definitions nested more than %d deep", maxDepth)
				return
			}
			stack = append(stack, group{lines: follow, col: col})
		}
		if !ok {
			t = text{}
			continue
		}
		t = r.emit(t2)
	}
}

// prepare applies conditionals, definitions, generators and substitution.
// It reports false when nothing is left to emit (the line was dropped, or
// was a definition or a generator, which prepare ran).
func (r *reader) prepare(t text) (text, []string, int, bool) {
	var follow []string
	followCol := 0
	for guard := 0; ; guard++ {
		if len(t.s) == 0 || guard > 1000 {
			return t, follow, followCol, false
		}
		if t.s[0] == '@' {
			var ok bool
			if t, ok = r.conditional(t); !ok {
				return t, follow, followCol, false
			}
		}
		if t.s[0] == '$' && r.define(t) {
			return t, follow, followCol, false
		}
		if strings.HasPrefix(t.s, "~SEQ") {
			r.seq(t)
			return t, follow, followCol, false
		}
		if strings.HasPrefix(t.s, "~LST") {
			r.lst(t)
			return t, follow, followCol, false
		}
		if t.s[0] == '~' || strings.IndexByte(t.s, '$') < 0 {
			return t, follow, followCol, true
		}
		nt, changed, more, moreCol := r.substitute(t)
		t = nt
		if len(more) > 0 {
			// A nested multi-line definition's lines come before the
			// rest of the outer one.
			follow = append(more, follow...)
			followCol = moreCol
		}
		if !changed || (len(t.s) > 0 && t.s[0] != '@' && strings.IndexByte(t.s, '$') < 0) {
			return t, follow, followCol, len(t.s) > 0
		}
	}
}

// emit handles a fully substituted line: an include, or the line up to its
// first unquoted brace. It returns the residue, which goes through the whole
// of read_line() again.
func (r *reader) emit(t text) text {
	if r.include(t) {
		return text{}
	}
	head, residue := braceSplit(t)
	r.add(head)
	return residue
}

// add tokenizes a line and appends it to the output.
func (r *reader) add(t text) {
	switch t.s {
	case "{":
		if r.blockDepth == 0 {
			r.lastOpen = r.pos(t.col(0))
		}
		r.blockDepth++
	case "}":
		r.blockDepth--
		if r.blockDepth < 0 {
			r.errorf(t.col(0), "extra '}' found")
			r.blockDepth = 0
		}
	}
	words, err := tokenize(t, r.words[:0])
	if err != nil {
		r.errorf(t.col(0), "unmatched quote: '%s'", t.s)
	}
	if len(words) == 0 || !r.spend() {
		return
	}
	// Words come from a shared arena: one allocation per few thousand
	// words instead of one per line.
	if cap(r.arena)-len(r.arena) < len(words) {
		r.arena = make([]Word, 0, max(4096, len(words)))
	}
	n := len(r.arena)
	r.arena = append(r.arena, words...)
	ws := r.arena[n:len(r.arena):len(r.arena)]
	r.words = words
	r.out = append(r.out, Line{Pos: r.pos(ws[0].Col), Words: ws, Text: t.s})
}
