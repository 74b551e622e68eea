package logsink

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/keepwatch/keepwatch/engine/boundq"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// SpanSource gives the span ids an event has as a span: tracing.Sink
// implements it. The ids are known when the event is emitted, before the
// span is built, so a record and its span always match.
type SpanSource interface {
	SpanContext(event.Event) (trace.SpanContext, bool)
}

// Options tune a Sink.
type Options struct {
	// Spans, if set, gives records of events that became spans their
	// trace_id and span_id.
	Spans SpanSource
	// QueueSize bounds the records waiting for the writer; when it is full,
	// events are dropped and counted, never waited for. Default 1024.
	QueueSize int
}

// Sink is an event.Sink that logs what an operator reads in keepalived's
// log: transitions, priority and VIP changes, config loads and rejected
// reloads, failing scripts, checks and notifications. Adverts are not
// logged (the metrics count them; at 0.05 s they would drown the log).
//
// Emit only queues a copy: a log writer stuck on a full pipe must never
// delay a VRRP timer (DESIGN.md §3). Run writes the records.
type Sink struct {
	log     *slog.Logger
	spans   SpanSource
	queue   *boundq.Queue[queued] // grows with a burst, not 1024 events up front
	dropped atomic.Uint64

	// scriptOK is each script's last result, owned by Run: a script that
	// keeps failing is logged once at warn, then at debug.
	scriptOK map[string]bool
}

type queued struct {
	e  event.Event
	sc trace.SpanContext
}

var _ event.Sink = (*Sink)(nil)

// New returns a Sink writing to log.
func New(log *slog.Logger, opts Options) *Sink {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	return &Sink{log: log, spans: opts.Spans, queue: boundq.New[queued](opts.QueueSize), scriptOK: map[string]bool{}}
}

// logged reports whether events of kind k are written at all.
func logged(k event.Kind) bool {
	switch k {
	case event.KindUnknown, event.KindAdvertSent, event.KindAdvertReceived, event.KindAdvertDropped,
		event.KindGratuitousSent, event.KindPeerMaster:
		return false
	}
	return true
}

// Emit queues e if its kind is logged. It never blocks: a full queue drops
// the event and counts it (QueueDropped).
func (s *Sink) Emit(e event.Event) {
	if !logged(e.Kind) {
		return
	}
	q := queued{e: e}
	if s.spans != nil {
		// Asked now, not in Run: the tracing sink remembers a bounded
		// number of recent events.
		q.sc, _ = s.spans.SpanContext(e)
	}
	if !s.queue.Push(q) {
		s.dropped.Add(1)
	}
}

// QueueName returns "log", the sink label of the queue metrics.
func (s *Sink) QueueName() string { return "log" }

// QueueLen returns the number of events waiting to be written.
func (s *Sink) QueueLen() int { return s.queue.Len() }

// QueueDropped returns the number of events dropped on a full queue.
func (s *Sink) QueueDropped() uint64 { return s.dropped.Load() }

// Run writes queued events until ctx is cancelled, then writes those still
// queued and returns.
func (s *Sink) Run(ctx context.Context) error {
	for {
		select {
		case <-s.queue.Ready():
			for q, ok := s.queue.Pop(); ok; q, ok = s.queue.Pop() {
				s.write(q)
			}
		case <-ctx.Done():
			for q, ok := s.queue.Pop(); ok; q, ok = s.queue.Pop() {
				s.write(q)
			}
			return nil
		}
	}
}

// write turns one event into one record, timed when the event happened.
// A transition keepalived logs with its cause first ("(VI_1) Receive
// advertisement timeout") gets that line too, as a record of its own.
func (s *Sink) write(q queued) {
	e := &q.e
	lvl, msg, attrs := s.record(e)
	if msg == "" {
		return
	}
	ctx := context.Background()
	h := s.log.Handler()
	if !h.Enabled(ctx, lvl) {
		return
	}
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	if pre := preText(e); pre != "" {
		r := slog.NewRecord(t, lvl, "vrrp transition cause", 0)
		r.AddAttrs(attrs[:instanceAttrs(e)]...)
		r.AddAttrs(slog.String("reason", string(e.Reason)), slog.String(TextKey, pre))
		_ = h.Handle(ctx, r)
	}
	r := slog.NewRecord(t, lvl, msg, 0)
	r.AddAttrs(attrs...)
	if txt := text(e); txt != "" {
		r.AddAttrs(slog.String(TextKey, txt))
	}
	if q.sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", q.sc.TraceID().String()), slog.String("span_id", q.sc.SpanID().String()))
	}
	_ = h.Handle(ctx, r)
}

// instanceAttrs is how many of record's attributes name the instance.
func instanceAttrs(e *event.Event) int {
	n := 0
	if e.Instance != "" {
		n += 2
	}
	if e.Interface != "" {
		n++
	}
	if e.Instance != "" && e.Family != 0 {
		n++
	}
	return n
}

// record chooses the level, message and attributes of e's record; an
// empty message means e is not written.
func (s *Sink) record(e *event.Event) (slog.Level, string, []slog.Attr) {
	var a []slog.Attr
	if e.Instance != "" {
		a = append(a, slog.String("vrrp_instance", e.Instance), slog.Int("vrid", int(e.VRID)))
	}
	if e.Interface != "" {
		a = append(a, slog.String("interface", e.Interface))
	}
	if e.Instance != "" && e.Family != 0 {
		a = append(a, slog.String("family", e.Family.String()))
	}
	switch e.Kind {
	case event.KindTransition:
		a = append(a, slog.String("from", e.From.String()), slog.String("to", e.To.String()),
			slog.String("reason", string(e.Reason)), slog.Int("priority", e.Priority))
		lvl := slog.LevelInfo
		if e.To == vrrp.StateFault {
			lvl = slog.LevelWarn
		}
		return lvl, "vrrp transition", a
	case event.KindPriorityChanged:
		a = append(a, slog.Int("priority", e.Priority), slog.Int("base_priority", e.BasePriority),
			slog.Int64("delta", e.Value))
		if e.Tracker != "" {
			a = append(a, slog.String("tracker", e.Tracker))
		}
		return slog.LevelInfo, "priority changed", a
	case event.KindVIPAdded, event.KindVIPRemoved:
		a = append(a, slog.String("address", e.Addr.String()))
		a = appendErr(a, e.Err)
		msg := "vip added"
		if e.Kind == event.KindVIPRemoved {
			msg = "vip removed"
		}
		return errLevel(e.Err, slog.LevelInfo), msg, a
	case event.KindScriptRun:
		a = append(a, slog.String("script", e.Name), slog.Int("exit_code", e.ExitCode),
			slog.Float64("duration_seconds", e.Duration.Seconds()))
		was, seen := s.scriptOK[e.Name]
		s.scriptOK[e.Name] = e.OK
		if e.OK {
			if seen && !was {
				return slog.LevelInfo, "script recovered", a
			}
			if !seen {
				// keepalived logs a script's first result too
				// ("VRRP_Script(chk) succeeded").
				return slog.LevelInfo, "script ok", a
			}
			return slog.LevelDebug, "script ok", a
		}
		if e.Reason != "" {
			a = append(a, slog.String("reason", string(e.Reason)))
		}
		a = appendErr(a, e.Err)
		if seen && !was {
			return slog.LevelDebug, "script failed", a
		}
		return slog.LevelWarn, "script failed", a
	case event.KindInterfaceChanged:
		a = append(a, slog.Bool("up", e.OK))
		return slog.LevelDebug, "interface changed", a
	case event.KindFileValue:
		a = append(a, slog.String("track_file", e.Name), slog.Int64("value", e.Value))
		return slog.LevelInfo, "track file changed", a
	case event.KindProbe:
		if e.OK {
			return 0, "", nil
		}
		a = append(a, slog.String("checker", e.Name), slog.String("virtual_server", e.Service),
			slog.String("target", e.Target), slog.String("reason", string(e.Reason)),
			slog.Float64("duration_seconds", e.Duration.Seconds()))
		a = appendErr(a, e.Err)
		if e.Value == 1 {
			// log_all_failures / checker_log_all_failures: keepalived logs
			// each failure, not only the one that takes the checker down.
			return slog.LevelInfo, "probe failed", a
		}
		return slog.LevelDebug, "probe failed", a
	case event.KindRealServer:
		a = append(a, slog.String("virtual_server", e.Service), slog.String("real_server", e.Target),
			slog.Bool("up", e.OK), slog.Int64("weight", e.Value))
		return slog.LevelInfo, "real server changed", a
	case event.KindQuorum:
		a = append(a, slog.String("virtual_server", e.Service), slog.Bool("up", e.OK))
		return slog.LevelInfo, "quorum changed", a
	case event.KindIPVSReconcile:
		a = append(a, slog.Int("added", e.Added), slog.Int("changed", e.Changed), slog.Int("removed", e.Removed),
			slog.Float64("duration_seconds", e.Duration.Seconds()))
		a = appendErr(a, e.Err)
		if e.Err == nil && e.Added+e.Changed+e.Removed == 0 {
			return slog.LevelDebug, "ipvs reconciled", a
		}
		return errLevel(e.Err, slog.LevelInfo), "ipvs reconciled", a
	case event.KindIPVSUnavailable:
		return slog.LevelWarn, "ipvs unavailable", appendErr(a, e.Err)
	case event.KindConfigLoaded:
		a = append(a, slog.String("path", e.Name), slog.Float64("duration_seconds", e.Duration.Seconds()))
		return slog.LevelInfo, "config loaded", a
	case event.KindReloadRejected:
		a = append(a, slog.String("path", e.Name))
		return slog.LevelError, "reload rejected: keeping the running config", appendErr(a, e.Err)
	case event.KindNotifyRun:
		a = append(a, slog.String("script", e.Name), slog.Int("exit_code", e.ExitCode),
			slog.Float64("duration_seconds", e.Duration.Seconds()))
		if e.OK {
			return slog.LevelDebug, "notify script ran", a
		}
		if e.Reason != "" {
			a = append(a, slog.String("reason", string(e.Reason)))
		}
		return slog.LevelWarn, "notify script failed", appendErr(a, e.Err)
	case event.KindMailSent:
		// The subject, never the server's credentials: those are config.Secret
		// and no event carries them.
		a = append(a, slog.String("subject", e.Name))
		if e.OK {
			return slog.LevelInfo, "mail sent", a
		}
		return slog.LevelWarn, "mail failed", appendErr(a, e.Err)
	}
	return 0, "", nil
}

func appendErr(a []slog.Attr, err error) []slog.Attr {
	if err == nil {
		return a
	}
	return append(a, slog.String("err", err.Error()))
}

func errLevel(err error, ok slog.Level) slog.Level {
	if err != nil {
		return slog.LevelError
	}
	return ok
}
