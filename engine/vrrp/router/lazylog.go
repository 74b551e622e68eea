package router

import (
	"context"
	"log/slog"
	"sync"
)

// memberLogger is the agent's logger with a member's identity attributes
// (vrrp_instance, vrid) added only when the member first logs something
// enabled. slog.Logger.With hands the attributes to the handler at once,
// and keepwatch's handler (zap, under cmd/keepwatch's encoder) pre-encodes
// them into a buffer of its own: ~1.3 KiB per member held for the life of
// the instance, though most members never log (issue 12: 250 instances).
func memberLogger(base *slog.Logger, name string, vrid uint8) *slog.Logger {
	return slog.New(&lazyHandler{base: base.Handler(), name: name, vrid: vrid})
}

// lazyHandler defers base.WithAttrs until a record is handled or the
// logger is derived from; Enabled asks base directly, so a Debug call with
// debug off costs what it did.
type lazyHandler struct {
	base slog.Handler
	name string
	vrid uint8
	once sync.Once
	h    slog.Handler
}

func (l *lazyHandler) handler() slog.Handler {
	l.once.Do(func() {
		l.h = l.base.WithAttrs([]slog.Attr{slog.String("vrrp_instance", l.name), slog.Any("vrid", l.vrid)})
	})
	return l.h
}

func (l *lazyHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.base.Enabled(ctx, level)
}

func (l *lazyHandler) Handle(ctx context.Context, r slog.Record) error {
	return l.handler().Handle(ctx, r)
}

func (l *lazyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return l.handler().WithAttrs(attrs)
}

func (l *lazyHandler) WithGroup(name string) slog.Handler {
	return l.handler().WithGroup(name)
}
