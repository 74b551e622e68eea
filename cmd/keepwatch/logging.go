package main

import (
	"fmt"
	"log/slog"
	"log/syslog"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/buffer"
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
		return kaEncoder{fields: fieldsEncoder(), time: true}, nil
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
	return &syslogCore{LevelEnabler: zapcore.DebugLevel, enc: kaEncoder{fields: fieldsEncoder()}, w: w}
}

// fieldsEncoder writes a record keepalived has no line for as its message
// and fields: `reload rejected {"err": "bad config"}`.
func fieldsEncoder() zapcore.Encoder {
	return zapcore.NewConsoleEncoder(zapcore.EncoderConfig{MessageKey: "msg", LineEnding: "", ConsoleSeparator: " "})
}

// kaEncoder lays records out as keepalived's log does (keepalived -l -D -n
// on the console, or syslog): "Wed Dec  2 13:37:24 2026: (VI_1) Entering
// MASTER STATE", the time as keepalived's log_message() prints it with
// -l, then the line in keepalived's words (logsink.TextKey). No level: like
// keepalived's, the severity is syslog's. A record keepalived has no line
// for keeps its message and fields; a config diagnostic reads as
// keepalived's "(file: Line N) text". JSON keeps every field.
type kaEncoder struct {
	fields zapcore.Encoder // With's fields, and the fallback layout
	time   bool            // the console's time prefix; syslog adds its own
}

var kaBuffers = buffer.NewPool()

func (k kaEncoder) Clone() zapcore.Encoder { return kaEncoder{fields: k.fields.Clone(), time: k.time} }

func (k kaEncoder) AddArray(key string, v zapcore.ArrayMarshaler) error {
	return k.fields.AddArray(key, v)
}
func (k kaEncoder) AddObject(key string, v zapcore.ObjectMarshaler) error {
	return k.fields.AddObject(key, v)
}
func (k kaEncoder) AddBinary(key string, v []byte)          { k.fields.AddBinary(key, v) }
func (k kaEncoder) AddByteString(key string, v []byte)      { k.fields.AddByteString(key, v) }
func (k kaEncoder) AddBool(key string, v bool)              { k.fields.AddBool(key, v) }
func (k kaEncoder) AddComplex128(key string, v complex128)  { k.fields.AddComplex128(key, v) }
func (k kaEncoder) AddComplex64(key string, v complex64)    { k.fields.AddComplex64(key, v) }
func (k kaEncoder) AddDuration(key string, v time.Duration) { k.fields.AddDuration(key, v) }
func (k kaEncoder) AddFloat64(key string, v float64)        { k.fields.AddFloat64(key, v) }
func (k kaEncoder) AddFloat32(key string, v float32)        { k.fields.AddFloat32(key, v) }
func (k kaEncoder) AddInt(key string, v int)                { k.fields.AddInt(key, v) }
func (k kaEncoder) AddInt64(key string, v int64)            { k.fields.AddInt64(key, v) }
func (k kaEncoder) AddInt32(key string, v int32)            { k.fields.AddInt32(key, v) }
func (k kaEncoder) AddInt16(key string, v int16)            { k.fields.AddInt16(key, v) }
func (k kaEncoder) AddInt8(key string, v int8)              { k.fields.AddInt8(key, v) }
func (k kaEncoder) AddString(key, v string)                 { k.fields.AddString(key, v) }
func (k kaEncoder) AddTime(key string, v time.Time)         { k.fields.AddTime(key, v) }
func (k kaEncoder) AddUint(key string, v uint)              { k.fields.AddUint(key, v) }
func (k kaEncoder) AddUint64(key string, v uint64)          { k.fields.AddUint64(key, v) }
func (k kaEncoder) AddUint32(key string, v uint32)          { k.fields.AddUint32(key, v) }
func (k kaEncoder) AddUint16(key string, v uint16)          { k.fields.AddUint16(key, v) }
func (k kaEncoder) AddUint8(key string, v uint8)            { k.fields.AddUint8(key, v) }
func (k kaEncoder) AddUintptr(key string, v uintptr)        { k.fields.AddUintptr(key, v) }
func (k kaEncoder) AddReflected(key string, v any) error    { return k.fields.AddReflected(key, v) }
func (k kaEncoder) OpenNamespace(key string)                { k.fields.OpenNamespace(key) }

// diagnostic is a config diagnostic as keepwatch writes it,
// "FILE:LINE:COL: SEVERITY: TEXT".
var diagnostic = regexp.MustCompile(`^(.*):([0-9]+):[0-9]+: [a-z]+: (.*)$`)

// EncodeEntry writes one line.
func (k kaEncoder) EncodeEntry(e zapcore.Entry, fs []zapcore.Field) (*buffer.Buffer, error) {
	line := ""
	for _, f := range fs {
		switch {
		case f.Key == logsink.TextKey && f.Type == zapcore.StringType:
			line = f.String
		case f.Key == "diagnostic" && f.Type == zapcore.StringType && line == "":
			// keepalived: "(/etc/keepalived/keepalived.conf: Line 57) Rule
			// has no preference specified ..." (report_config_error()).
			if m := diagnostic.FindStringSubmatch(f.String); m != nil {
				line = "(" + m[1] + ": Line " + m[2] + ") " + m[3]
			}
		}
	}
	if line == "" {
		b, err := k.fields.EncodeEntry(e, fs)
		if err != nil {
			return nil, err
		}
		// Trimmed at the end only: a -d dump line keeps its indentation.
		line = strings.TrimRight(b.String(), " \n")
		b.Free()
	}
	out := kaBuffers.Get()
	if k.time {
		out.AppendString(e.Time.Format("Mon Jan _2 15:04:05 2006"))
		out.AppendString(": ")
	}
	out.AppendString(line)
	out.AppendByte('\n')
	return out, nil
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
	msg := strings.TrimRight(b.String(), " \n")
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
