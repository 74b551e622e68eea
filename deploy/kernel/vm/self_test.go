package vm

import (
	"strings"
	"testing"
)

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		console, body string
		ok, err       bool
	}{
		{"boot\nKWVM-BEGIN\n--- PASS: X\nKWVM-EXIT 0\npower off", "\n--- PASS: X\n", true, false},
		{"KWVM-BEGIN\n--- FAIL: X\nKWVM-EXIT 1\n", "\n--- FAIL: X\n", false, false},
		{"KWVM-BEGIN\nout\nKWVM-EXIT 10\n", "\nout\n", false, false},
		{"Kernel panic - not syncing", "", false, true},
		{"KWVM-BEGIN\npanic: boom\n", "", false, true},
	} {
		body, ok, err := Verdict(tc.console)
		if body != tc.body || ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("Verdict(%q) = %q, %v, %v; want %q, %v, error %v", tc.console, body, ok, err, tc.body, tc.ok, tc.err)
		}
	}
}

// TestSelfScript: the guest runs Setup, then the binary in its mode with
// its flags between the markers Verdict reads.
func TestSelfScript(t *testing.T) {
	s := Self{Name: "x.test", Mode: "tier", Flags: "-test.v", Setup: "ip link set lo up\n"}
	got := s.script()
	want := "ip link set lo up\necho KWVM-BEGIN\nKEEPWATCH_VM=tier /x.test -test.v\necho KWVM-EXIT $?\n"
	if got != want {
		t.Errorf("script = %q, want %q", got, want)
	}
	// What the guest would print for that script parses back.
	console := strings.NewReplacer("echo ", "", "$?", "0").Replace(got)
	if _, ok, err := Verdict(console); !ok || err != nil {
		t.Errorf("Verdict of the script's own markers: %v %v", ok, err)
	}
}
