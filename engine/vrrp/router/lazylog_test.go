package router

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// countingHandler counts WithAttrs calls on the handler it wraps.
type countingHandler struct {
	slog.Handler
	withAttrs *int
}

func (c countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	*c.withAttrs++
	return countingHandler{c.Handler.WithAttrs(as), c.withAttrs}
}

// TestMemberLoggerLazy: a member's logger hands its identity attributes to
// the agent's handler only when it first logs an enabled record (a debug
// record with debug off does not), once, and then writes exactly what
// slog.Logger.With would have.
func TestMemberLoggerLazy(t *testing.T) {
	var got, want bytes.Buffer
	n := 0
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	base := slog.New(countingHandler{slog.NewJSONHandler(&got, opts), &n})
	log := memberLogger(base, "VI_7", 7)
	log.Debug("transition", "from", "BACKUP")
	if n != 0 || got.Len() != 0 {
		t.Fatalf("after a disabled debug record: %d WithAttrs calls, output %q; want none", n, got.String())
	}
	log.Warn("sending advert", "err", "boom")
	log.Error("adding VIP", "address", "192.0.2.1/32")
	if n != 1 {
		t.Errorf("%d WithAttrs calls after two records, want 1", n)
	}
	ref := slog.New(slog.NewJSONHandler(&want, opts)).With("vrrp_instance", "VI_7", "vrid", uint8(7))
	ref.Warn("sending advert", "err", "boom")
	ref.Error("adding VIP", "address", "192.0.2.1/32")
	if got.String() != want.String() {
		t.Errorf("member logger wrote\n%s\nslog.With writes\n%s", got.String(), want.String())
	}
	if !strings.Contains(got.String(), `"vrrp_instance":"VI_7","vrid":7`) {
		t.Errorf("identity attributes missing: %s", got.String())
	}
	// Derived loggers and enabled checks go through too.
	log.With("k", "v").Info("derived")
	if !strings.Contains(got.String(), `"vrid":7,"k":"v"`) {
		t.Errorf("derived logger lost the identity: %s", got.String())
	}
	if log.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("debug enabled through the member logger, not in its base")
	}
}
