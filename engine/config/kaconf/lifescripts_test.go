package kaconf

import (
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// TestLifeScriptTimeouts: startup_script_timeout and
// shutdown_script_timeout are whole seconds in [1, 1000]; a value outside
// is an error on its line that keeps the default (keepalived 2.2.7 -t:
// "(Line 3) shutdown_script_timeout '1001' must be in [1, 1000] -
// ignoring"), and both survive Print.
func TestLifeScriptTimeouts(t *testing.T) {
	c, ds := probe("global_defs {\n startup_script \"/bin/true a\"\n shutdown_script_timeout 1001\n startup_script_timeout 7\n shutdown_script /bin/true\n startup_script_timeout 0\n}\n")
	if c == nil {
		t.Fatalf("not loaded:\n%s", ds)
	}
	g := c.Global
	if g.StartupScriptTimeout != 7*time.Second || g.ShutdownScriptTimeout != 0 {
		t.Errorf("timeouts %v, %v; want 7s and 0 (the default)", g.StartupScriptTimeout, g.ShutdownScriptTimeout)
	}
	lines := map[int]string{}
	for _, d := range ds {
		if d.Severity >= config.Error {
			lines[d.Pos.Line] = d.Keyword + ": " + d.ActionText()
		}
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[3], "shutdown_script_timeout: ignored, default 10 s kept") ||
		!strings.HasPrefix(lines[6], "startup_script_timeout: ignored, default 10 s kept") {
		t.Errorf("errors by line %v, want lines 3 and 6, default 10 s kept\n%s", lines, ds)
	}
	c.Global.ShutdownScriptTimeout = 1000 * time.Second
	roundTrip(t, c)
}
