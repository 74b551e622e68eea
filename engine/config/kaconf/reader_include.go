package kaconf

import (
	"io/fs"
	"path"
	"strings"

	"github.com/keepwatch/keepwatch/engine/config"
)

// Include checks (keepalived include_check, man keepalived.conf(5)).
const (
	checkReadable = 1 << iota // an unusable match (directory, executable, unreadable) is an error
	checkMatch                // a file name without wildcards that matches nothing is an error
	checkWildcard             // a wildcard that matches nothing is an error
	checkBrace                // a brace alternative that matches nothing is an error, and nothing is read
)

// includeVariants maps each include keyword to its checks (verified against
// keepalived 2.2.7: plain include only logs; includer does not fail on a
// missing file; includeb does not fail on a missing plain name).
var includeVariants = map[string]int{
	"include":  0,
	"includer": checkReadable,
	"includem": checkReadable | checkMatch,
	"includew": checkReadable | checkMatch | checkWildcard,
	"includeb": checkReadable | checkBrace,
	"includea": checkReadable | checkMatch | checkWildcard | checkBrace,
}

// report adds a diagnostic. Where keepalived only logs (sev 0: it exits 0),
// keepwatch still warns: a user running check wants to know an include
// found nothing, and "keepalived accepts" allows warnings.
func (r *reader) report(pos config.Pos, sev config.Severity, format string, args ...any) {
	if sev == 0 {
		sev = config.Warning
	}
	r.diags.Add(pos, sev, "include", format, args...)
}

// include handles an include line. keepalived 2.2.7 recognises it after
// conditionals and substitution (so "@id include f" and "include $F" work;
// later releases check first), and takes the whole rest of the line, quotes
// and blanks included, as the file pattern (verified 2.2.7). The pattern is
// a glob with {a,b} braces, relative to the including file's directory.
func (r *reader) include(t text) bool {
	kw, _, _ := strings.Cut(t.s, " ")
	kw, _, _ = strings.Cut(kw, "\t")
	checks, ok := includeVariants[kw]
	if !ok {
		return false
	}
	p := skipBlanks(t.s, len(kw))
	if p >= len(t.s) {
		return false
	}
	pattern := t.s[p:]
	from := r.pos(t.col(p))
	sev := func(check int) config.Severity {
		if checks&check != 0 {
			return config.Error
		}
		return 0
	}

	abs := strings.HasPrefix(pattern, "/")
	full := path.Join(path.Dir(r.cur.fsPath), pattern)
	if abs {
		full = strings.TrimPrefix(path.Clean(pattern), "/")
		if full == "" {
			full = "."
		}
	}
	alts := expandBraces(full)
	braced := len(alts) > 1
	var files []string
	missing, unmatched := false, false
	for _, alt := range alts {
		if strings.ContainsAny(alt, "*?[") {
			m, err := fs.Glob(r.fsys, alt)
			if err != nil || len(m) == 0 {
				unmatched = true
			}
			files = append(files, m...)
			continue
		}
		if _, err := fs.Stat(r.fsys, alt); err != nil {
			missing = true
			continue
		}
		files = append(files, alt)
	}
	switch {
	case braced && (missing || unmatched):
		r.report(from, sev(checkBrace), "Some config files missing: \"%s\".", pattern)
		if checks&checkBrace != 0 {
			return true
		}
	case missing:
		r.report(from, sev(checkMatch), "Config files missing '%s'.", pattern)
	case unmatched && len(files) == 0:
		if checks&checkWildcard != 0 {
			r.report(from, config.Error, "No config files matched '%s'.", pattern)
		}
	}
	for _, f := range files {
		shown := r.shown(f, abs)
		st, err := fs.Stat(r.fsys, f)
		switch {
		case err != nil:
			r.report(from, sev(checkReadable), "Configuration file '%s' open problem (%v) - skipping", shown, unwrapPathError(err))
			continue
		case st.IsDir():
			r.report(from, sev(checkReadable), "Configuration file '%s/' is a directory - skipping", shown)
			continue
		case !st.Mode().IsRegular() || st.Mode().Perm()&0o111 != 0:
			r.report(from, sev(checkReadable), "Configuration file '%s' is not a regular non-executable file - skipping", shown)
			continue
		}
		r.readFile(f, shown, from, sev(checkReadable))
		if r.stopped {
			break
		}
	}
	return true
}

// shown is the name reported for an included file: relative to where the
// including file was named, like the pattern, or absolute.
func (r *reader) shown(f string, abs bool) string {
	dir := path.Dir(r.cur.fsPath)
	switch {
	case abs:
	case dir == ".":
		return path.Join(path.Dir(r.cur.display), f)
	case strings.HasPrefix(f, dir+"/"):
		return path.Join(path.Dir(r.cur.display), f[len(dir)+1:])
	}
	if r.root == "" {
		return f
	}
	return r.root + f
}

// expandBraces expands csh-style braces as glob(3) with GLOB_BRACE does:
// "a{b,c{d,e}}f" is abf, acdf, acef. Unbalanced braces stay literal.
func expandBraces(s string) []string {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return []string{s}
	}
	depth := 0
	var commas []int
	closeAt := -1
	for i := open; i < len(s) && closeAt < 0; i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				closeAt = i
			}
		case ',':
			if depth == 1 {
				commas = append(commas, i)
			}
		}
	}
	if closeAt < 0 {
		return []string{s}
	}
	prefix, suffix := s[:open], s[closeAt+1:]
	var out []string
	start := open + 1
	for _, c := range append(commas, closeAt) {
		for _, e := range expandBraces(prefix + s[start:c] + suffix) {
			out = append(out, e)
			if len(out) > 4096 {
				return out
			}
		}
		start = c + 1
	}
	return out
}
