package config

import (
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// TestCheckRegexNamesPCREConstruct: every PCRE2-only construct keepalived's
// regex would accept is refused with its name; what RE2 runs is accepted,
// including look-alikes inside a class or a \Q...\E quote (which RE2 then
// rejects or not on its own, unnamed).
func TestCheckRegexNamesPCREConstruct(t *testing.T) {
	for _, tt := range []struct {
		src, construct string // construct "" = accepted
	}{
		{`<title>OK</title>`, ""},
		{`status: (up|ok)\s+\d+`, ""},
		{`a*?b+?c??`, ""},
		{`(?i)healthy`, ""},
		{`(?P<state>up)`, ""},
		{`(?<state>up)`, ""},
		{`[(?=]x`, ""},
		{`\Q(?=\E`, ""},
		{`\x41\101\A\z`, ""},
		{`foo(?=bar)`, "lookahead (?=...)"},
		{`foo(?!bar)`, "negative lookahead (?!...)"},
		{`(?<=foo)bar`, "lookbehind (?<=...)"},
		{`(?<!foo)bar`, "negative lookbehind (?<!...)"},
		{`(a)\1`, `backreference \1`},
		{`(a)(b)\2`, `backreference \2`},
		{`(?<n>a)\k<n>`, `named backreference \k`},
		{`(a)\g1`, `backreference or subroutine \g`},
		{`(?P<n>a)(?P=n)`, "named backreference (?P=name)"},
		{`a++`, "possessive quantifier ++"},
		{`a*+b`, "possessive quantifier *+"},
		{`a?+b`, "possessive quantifier ?+"},
		{`a{2}+`, "possessive quantifier {n}+"},
		{`(?>a+)b`, "atomic group (?>...)"},
		{`foo\Kbar`, `match reset \K`},
		{`\((?:[^()]|(?R))*\)`, "recursion (?R)"},
		{`(a|b(?1))`, "subroutine call (?N)"},
		{`(?<p>a)(?&p)`, "subroutine call (?&name)"},
		{`(?|(a)|(b))`, "branch reset group (?|...)"},
		{`(?(1)a|b)`, "conditional group (?(...)...)"},
		{`a(?#note)b`, "comment group (?#...)"},
		{`(*UTF)ok`, "backtracking verb or option (*...)"},
		{`a(*SKIP)(*FAIL)|b`, "backtracking verb or option (*...)"},
		{`\Gok`, `anchor \G`},
		{`ok\Z`, `end-of-subject anchor \Z`},
		{`\h+`, `horizontal space \h`},
		{`\R`, `newline sequence \R`},
	} {
		err := CheckRegex(tt.src)
		if tt.construct == "" {
			if err != nil {
				t.Errorf("CheckRegex(%q) = %v, want nil", tt.src, err)
			}
			continue
		}
		var re *RegexError
		if !errors.As(err, &re) {
			t.Errorf("CheckRegex(%q) = %v, want a *RegexError", tt.src, err)
			continue
		}
		if re.Construct != tt.construct {
			t.Errorf("CheckRegex(%q): construct %q, want %q", tt.src, re.Construct, tt.construct)
		}
		if !strings.Contains(err.Error(), tt.construct) {
			t.Errorf("CheckRegex(%q) = %q, does not name %q", tt.src, err, tt.construct)
		}
	}
}

// TestRegexRefusedAtLoad: a url regex RE2 cannot run stops the config at
// load (Validate), at the regex's own position, keyword "regex".
func TestRegexRefusedAtLoad(t *testing.T) {
	pos := Pos{File: "keepalived.conf", Line: 9, Col: 15}
	c := &Config{VirtualServers: []VirtualServer{{
		Addr: netip.MustParseAddr("192.0.2.1"), Port: 80, Protocol: "TCP",
		RealServers: []RealServer{{Addr: netip.MustParseAddr("192.0.2.2"), Port: 80, Weight: DefaultWeight, Checkers: []Checker{{
			Type: HTTPGet,
			HTTP: &HTTPCheck{URLs: []URL{{Pos: Pos{File: "keepalived.conf", Line: 7}, Path: "/", Regex: `ok(?=\n)`, RegexPos: pos}}},
		}}}},
	}}}
	ds := Validate(c, ValidateOptions{})
	var found bool
	for _, d := range ds {
		if d.Keyword != "regex" {
			continue
		}
		found = true
		if d.Pos != pos || d.Outcome() != Stops || !strings.Contains(d.Message, "lookahead (?=...)") {
			t.Errorf("diagnostic %s (%s), want at %s, fatal, naming the lookahead", d, d.Outcome(), pos)
		}
	}
	if !found || !ds.Fatal() {
		t.Fatalf("no fatal regex diagnostic:\n%s", ds)
	}
}

// FuzzCheckRegex: CheckRegex never panics, accepts exactly what RE2
// compiles, and a construct it names is in the source.
func FuzzCheckRegex(f *testing.F) {
	for _, s := range []string{`ok`, `foo(?=bar)`, `(?<=a)b`, `(a)\1`, `a++`, `(?>a)`, `a\Kb`, `(?R)`, `[\]]+`, `\Q(?=`, `[^]]`, `(?P=n)`, `{`, `\`, `(?`, `(*`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		err := CheckRegex(src)
		_, cerr := regexp.Compile(src)
		if (err == nil) != (cerr == nil) {
			t.Fatalf("CheckRegex(%q) = %v, RE2 says %v", src, err, cerr)
		}
	})
}
