package kaconf

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestQuotedWords follows keepalived.conf(5) "Quoted strings".
func TestQuotedWords(t *testing.T) {
	tests := []struct {
		text    string
		want    []string
		wantErr bool
	}{
		{text: `abcd" efg h jkl "mnop`, want: []string{"abcd efg h jkl mnop"}},
		{text: `abcd "efg h jkl" mnop`, want: []string{"abcd", "efg h jkl", "mnop"}},
		{text: `notify_master "/bin/n.sh 'arg 2' x"`, want: []string{"notify_master", "/bin/n.sh 'arg 2' x"}},
		{text: `a\tb "c\nd" 'e\x41\101\cA' \\ \" \q`, want: []string{"a\tb", "c\nd", "eAA\x01", `\`, `"`, "q"}},
		{text: `x\x4142`, want: []string{"xB"}}, // \x takes every hex digit, keeps the low byte
		{text: `"open`, wantErr: true},
		{text: `'open`, wantErr: true},
		{text: `end\`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			ws, err := Line{Text: tt.text}.QuotedWords()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			var got []string
			for _, w := range ws {
				got = append(got, w.Text)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func TestTokenize(t *testing.T) {
	tests := map[string][]string{
		`a "b c"d e`:        {"a", "b c", "d", "e"},
		`x'y z' w`:          {"x'y", "z'", "w"},
		`FOO#BAR baz`:       {"FOO"},
		`a \#b c\!d`:        {"a", "#b", "c!d"},
		`"a#b" !c`:          {"a#b"},
		"a\vb\fc\rd":        {"a", "b", "c", "d"},
		`""`:                {""},
		"nb\u00a0sp x":      {"nb\u00a0sp", "x"},
		`"unterminated x`:   nil,
		`a "unterminated x`: {"a"},
	}
	for in, want := range tests {
		ws, _ := tokenize(newText(in, 1), nil)
		var got []string
		for _, w := range ws {
			got = append(got, w.Text)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q: -want +got:\n%s", in, diff)
		}
	}
}

func TestStrtol(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		n    int
	}{
		{"12)", 12, 2}, {" -3,", -3, 3}, {"0x1f", 31, 4}, {"010", 8, 3}, {"0x", 0, 1},
		{"", 0, 0}, {"z", 0, 0}, {"99999999999999999999", 9223372036854775807, 20},
	}
	for _, tt := range tests {
		v, n := strtol(tt.in)
		if v != tt.want || n != tt.n {
			t.Errorf("strtol(%q) = %d, %d; want %d, %d", tt.in, v, n, tt.want, tt.n)
		}
	}
}

func TestExpandBraces(t *testing.T) {
	got := expandBraces("a{b,c{d,e}}f{1,2}")
	want := []string{"abf1", "abf2", "acdf1", "acdf2", "acef1", "acef2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
	if got := expandBraces("a{b"); !cmp.Equal(got, []string{"a{b"}) {
		t.Errorf("unbalanced: %q", got)
	}
}
