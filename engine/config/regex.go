package config

import (
	"fmt"
	"regexp"
	"strings"
)

// keepalived 2.2.7 compiles a url's regex with PCRE2 (check_http.c, built
// with --enable-regex), and only when the checker starts: `keepalived -t`
// accepts any regex. keepwatch runs Go's RE2, which has no backtracking, so
// some PCRE2 constructs cannot be run at all. Such a regex is reported when
// the config is loaded, naming the construct, rather than by every probe.

// pcreConstructs are PCRE2 constructs RE2 has no equivalent of, by the text
// that starts them outside a character class (pcre2pattern(3)). Longer
// openings come first so that "(?<=" is not reported as "(?<".
var pcreConstructs = []struct{ open, name string }{
	{"(?<=", "lookbehind (?<=...)"},
	{"(?<!", "negative lookbehind (?<!...)"},
	{"(?=", "lookahead (?=...)"},
	{"(?!", "negative lookahead (?!...)"},
	{"(?>", "atomic group (?>...)"},
	{"(?|", "branch reset group (?|...)"},
	{"(?(", "conditional group (?(...)...)"},
	{"(?#", "comment group (?#...)"},
	{"(?R)", "recursion (?R)"},
	{"(?&", "subroutine call (?&name)"},
	{"(?P>", "subroutine call (?P>name)"},
	{"(?P=", "named backreference (?P=name)"},
	{"(?C", "callout (?C...)"},
	{"(*", "backtracking verb or option (*...)"},
}

// pcreEscapes are PCRE2 escapes RE2 rejects, by the letter after '\'.
var pcreEscapes = map[byte]string{
	'K': `match reset \K`,
	'g': `backreference or subroutine \g`,
	'k': `named backreference \k`,
	'G': `anchor \G`,
	'R': `newline sequence \R`,
	'X': `extended grapheme cluster \X`,
	'h': `horizontal space \h`,
	'H': `non-horizontal space \H`,
	'V': `non-vertical space \V`,
	'N': `non-newline \N`,
	'Z': `end-of-subject anchor \Z`,
	'C': `single code unit \C`,
	'c': `control character \c`,
	'e': `escape character \e`,
	'o': `octal \o{...}`,
	'E': `\E without \Q`,
}

// RegexError is a regex RE2 cannot compile: Construct names the PCRE2
// construct found (empty when none was recognised), Err is RE2's error.
type RegexError struct {
	Construct string
	Err       error
}

func (e *RegexError) Error() string {
	if e.Construct != "" {
		return fmt.Sprintf("uses the PCRE2 %s, which Go's RE2 cannot run (%v)", e.Construct, e.Err)
	}
	return e.Err.Error()
}

func (e *RegexError) Unwrap() error { return e.Err }

// CheckRegex returns nil if RE2 compiles src; otherwise a *RegexError that
// names the first PCRE2-only construct of src, if it has one.
func CheckRegex(src string) error {
	_, err := regexp.Compile(src)
	if err == nil {
		return nil
	}
	return &RegexError{Construct: pcreConstruct(src), Err: err}
}

// pcreConstruct finds the first PCRE2-only construct of src: outside a
// character class and a \Q...\E quote, an escape or group opening from the
// tables above, a numbered backreference (\1 to \9, and (?1) / (?-1) /
// (?+1) subroutine calls) or a possessive quantifier (*+, ++, ?+, {n}+).
func pcreConstruct(src string) string {
	inClass := false
	prevQuant := false // the previous token was a quantifier
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '\\' && i+1 < len(src) {
			n := src[i+1]
			i++
			prevQuant = false
			switch {
			case n == 'Q':
				end := strings.Index(src[i+1:], `\E`)
				if end < 0 {
					return ""
				}
				i += end + 2
				continue
			case inClass:
				continue
			case n >= '1' && n <= '9' && (i+1 >= len(src) || src[i+1] < '0' || src[i+1] > '7'):
				return `backreference \` + string(n)
			}
			if name, ok := pcreEscapes[n]; ok {
				return name
			}
			continue
		}
		if inClass {
			if c == ']' {
				inClass = false
			}
			continue
		}
		switch c {
		case '[':
			inClass = true
			// A ']' first in the class (after an optional '^') is literal.
			if i+1 < len(src) && src[i+1] == '^' {
				i++
			}
			if i+1 < len(src) && src[i+1] == ']' {
				i++
			}
			prevQuant = false
			continue
		case '(':
			rest := src[i:]
			for _, pc := range pcreConstructs {
				if strings.HasPrefix(rest, pc.open) {
					return pc.name
				}
			}
			if len(rest) > 3 && rest[1] == '?' && (isDigit(rest[2]) || (rest[2] == '-' || rest[2] == '+') && isDigit(rest[3])) {
				return "subroutine call (?N)"
			}
		case '*', '+', '?':
			if prevQuant && c == '+' {
				if src[i-1] == '}' {
					return "possessive quantifier {n}+"
				}
				return "possessive quantifier " + src[i-1:i+1]
			}
			if c == '?' && prevQuant {
				prevQuant = false // lazy: a*? is RE2 too
				continue
			}
			prevQuant = true
			continue
		case '}':
			prevQuant = strings.LastIndexByte(src[:i], '{') >= 0
			continue
		}
		prevQuant = false
	}
	return ""
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
