package main

import (
	"fmt"
	"log/slog"
	"log/syslog"
	"math"
	"os"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"

	"github.com/keepwatch/keepwatch/tracing/logsink"
)

// noStacks keeps Go stack traces out of log records: zapslog adds one to
// every ERROR record by default, so a config diagnostic printed fifteen lines
// of runtime frames. keepalived's log lines are one line each; a stack
// belongs to a panic, which the runtime prints itself.
var noStacks = zapslog.AddStacktraceAt(slog.Level(math.MaxInt))

// zapLogger returns an slog.Logger whose handler is zap, writing JSON or
// console lines to stderr.
func zapLogger(format, level string) (*slog.Logger, func(), error) {
	return zapLoggerTo(format, level, zapcore.Lock(os.Stderr))
}

// zapLoggerTo is zapLogger writing to w and, when extra cores are given
// (syslog, the keepalived -g log file), to those too.
func zapLoggerTo(format, level string, w zapcore.WriteSyncer, extra ...zapcore.Core) (*slog.Logger, func(), error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("--log.level %q: %w", level, err)
	}
	enc, err := encoder(format)
	if err != nil {
		return nil, nil, err
	}
	var cores []zapcore.Core
	if w != nil {
		cores = append(cores, zapcore.NewCore(enc, w, lvl))
	}
	for _, c := range extra {
		cores = append(cores, levelCore{c, lvl})
	}
	core := zapcore.NewTee(cores...)
	// Records logged with a context holding a span carry its trace and span ids.
	return slog.New(logsink.TraceHandler(zapslog.NewHandler(core, noStacks))), func() { _ = core.Sync() }, nil
}

func encoder(format string) (zapcore.Encoder, error) {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	switch format {
	case "json":
		return zapcore.NewJSONEncoder(ec), nil
	case "console", "":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		return zapcore.NewConsoleEncoder(ec), nil
	}
	return nil, fmt.Errorf("--log.format %q: want console or json", format)
}

// levelCore filters a core to a minimum level (the tee's cores each
// decide for themselves).
type levelCore struct {
	zapcore.Core
	min zapcore.Level
}

func (c levelCore) Enabled(l zapcore.Level) bool { return l >= c.min && c.Core.Enabled(l) }

func (c levelCore) With(f []zapcore.Field) zapcore.Core { return levelCore{c.Core.With(f), c.min} }

func (c levelCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if !c.Enabled(e.Level) {
		return ce
	}
	return c.Core.Check(e, ce)
}

// syslogFacility parses keepalived's -S argument (keepalived(8)): 0-7 for
// LOG_LOCAL0-7, local0-local7, user or daemon (the default).
func syslogFacility(s string) (syslog.Priority, error) {
	switch l := strings.ToLower(s); l {
	case "", "daemon":
		return syslog.LOG_DAEMON, nil
	case "user":
		return syslog.LOG_USER, nil
	default:
		n, err := strconv.Atoi(strings.TrimPrefix(l, "local"))
		if err != nil || n < 0 || n > 7 {
			return 0, fmt.Errorf("invalid log facility %q: want 0-7, local0-local7, user or daemon", s)
		}
		return syslog.LOG_LOCAL0 + syslog.Priority(n)<<3, nil
	}
}

// syslogCore writes each record as one syslog message at the record's
// severity: the message and its fields on one line, as keepalived logs
// ("(VI_1) Entering MASTER STATE"); syslog adds time and tag itself.
type syslogCore struct {
	zapcore.LevelEnabler
	enc zapcore.Encoder
	w   *syslog.Writer
}

func newSyslogCore(w *syslog.Writer) zapcore.Core {
	ec := zapcore.EncoderConfig{MessageKey: "msg", LineEnding: "", ConsoleSeparator: " "}
	return &syslogCore{LevelEnabler: zapcore.DebugLevel, enc: zapcore.NewConsoleEncoder(ec), w: w}
}

func (c *syslogCore) With(f []zapcore.Field) zapcore.Core {
	enc := c.enc.Clone()
	for _, x := range f {
		x.AddTo(enc)
	}
	return &syslogCore{LevelEnabler: c.LevelEnabler, enc: enc, w: c.w}
}

func (c *syslogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *syslogCore) Write(e zapcore.Entry, f []zapcore.Field) error {
	b, err := c.enc.EncodeEntry(e, f)
	if err != nil {
		return err
	}
	msg := strings.TrimSpace(b.String())
	b.Free()
	switch {
	case e.Level >= zapcore.ErrorLevel:
		return c.w.Err(msg)
	case e.Level == zapcore.WarnLevel:
		return c.w.Warning(msg)
	case e.Level == zapcore.InfoLevel:
		return c.w.Info(msg)
	}
	return c.w.Debug(msg)
}

func (c *syslogCore) Sync() error { return nil }
