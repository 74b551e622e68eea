package lab_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/deploy/lab"
)

// soakEnv is the soak's duration (a Go duration, 60s when unset): `make
// soak` raises it (SOAK=10m). soakEnv+"_SEED" repeats a run's fault
// choices; soakEnv+"_KEEPALIVED"=1 makes node 3 the Debian keepalived.
const soakEnv = "KEEPWATCH_SOAK"

// TestSoak is the chaos soak (issue 9 §5): three nodes under random link
// flaps, 30% loss, SIGKILL and restart, SIGSTOP/SIGCONT, SIGHUP storms
// with random priorities and VIP-list edits, and a tracked interface
// deleted and recreated, with the invariants of deploy/lab/soak_linux.go
// checked over the whole run. It fails on any violation and prints the
// faults, the checks and each violation with its timeline.
func TestSoak(t *testing.T) {
	t.Parallel()
	d := 60 * time.Second
	if v := os.Getenv(soakEnv); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < 10*time.Second {
			t.Fatalf("%s=%q: want a duration of at least 10s", soakEnv, v)
		}
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(soakEnv + "_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s_SEED=%q: %v", soakEnv, v, err)
		}
	}
	o := lab.Options{
		Params:  lab.Params{TrackInterface: lab.SoakTrackInterface, Extra: lab.SoakExtra[:1]},
		Stopped: []int{1, 2, 3},
	}
	if os.Getenv(soakEnv+"_KEEPALIVED") == "1" {
		o.Keepalived = []int{3}
	}
	c := newCluster(t, "soak", o)
	ctx, cancel := context.WithTimeout(context.Background(), d+5*time.Minute)
	defer cancel()
	w := &lineLogger{t: t}
	rep, err := c.Soak(ctx, lab.SoakOptions{Duration: d, Seed: seed, Out: w})
	w.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("soak: %d violations (seed %d), listed above", len(rep.Violations), seed)
	}
}

// lineLogger writes whole lines to t.Log, so they stream with -v.
type lineLogger struct {
	t    *testing.T
	mu   sync.Mutex
	part string
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part += string(p)
	for {
		i := strings.IndexByte(l.part, '\n')
		if i < 0 {
			break
		}
		l.t.Log(l.part[:i])
		l.part = l.part[i+1:]
	}
	return len(p), nil
}

func (l *lineLogger) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.part != "" {
		l.t.Log(l.part)
		l.part = ""
	}
}
