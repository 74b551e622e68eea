package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Options configure a Sink.
type Options struct {
	// URLs are Alertmanager base URLs (http://host:9093); alerts are POSTed
	// to URL/api/v2/alerts, to every one (as Prometheus does with several
	// Alertmanagers: they deduplicate among themselves).
	URLs []string
	// Labels are added to every alert: the target labels Prometheus gives
	// this agent's series (job, instance, and a cluster label if any), so
	// a pushed alert has the labels of the rule-made one and Alertmanager
	// deduplicates the two.
	Labels map[string]string
	// Client sends the requests (TLS and basic auth configured on it);
	// a client with a 5 s timeout when nil.
	Client *http.Client
	// QueueSize bounds the alerts waiting to be sent (256 when 0); more
	// are dropped and counted, never waited for.
	QueueSize int
	// VIPMovedFor is how long a pushed KeepwatchVIPMoved stays firing
	// (the rule's window, 5m when 0): its endsAt, as the rule resolves.
	VIPMovedFor time.Duration
	// RunbookBase prefixes each alert's runbook_url.
	RunbookBase string
	Log         *slog.Logger
	// Retry is the first wait after a failed send, doubled up to 8 times
	// the first (200 ms when 0); an alert is dropped after MaxAttempts.
	Retry       time.Duration
	MaxAttempts int // 5 when 0
}

// alert is Alertmanager's postable alert (API v2).
type alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt,omitempty"`
}

// Sink turns VRRP transitions into alerts. Emit never blocks: alerts wait
// in a bounded queue for Run, which sends them with retries; what does not
// fit is dropped and counted (QueueDropped), so a slow or absent
// Alertmanager cannot delay a VRRP timer (DESIGN.md §3).
type Sink struct {
	o        Options
	q        chan alert
	dropped  atomic.Uint64
	segments atomic.Pointer[map[string]string]
	sent     atomic.Uint64
}

// New returns a sink; call Run to send.
func New(o Options) *Sink {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.VIPMovedFor <= 0 {
		o.VIPMovedFor = 5 * time.Minute
	}
	if o.Retry <= 0 {
		o.Retry = 200 * time.Millisecond
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for i, u := range o.URLs {
		o.URLs[i] = strings.TrimRight(u, "/") + "/api/v2/alerts"
	}
	return &Sink{o: o, q: make(chan alert, o.QueueSize)}
}

// SetSegments gives the segment label of each VRRP instance (by name), as
// keepwatch_vrrp_instance_info exports it: the rules join it onto their
// alerts, so the pushed ones carry it too.
func (s *Sink) SetSegments(m map[string]string) { s.segments.Store(&m) }

// QueueName, QueueLen and QueueDropped report the queue to the metrics
// (keepwatch_sink_queue_length, keepwatch_sink_events_dropped_total).
func (s *Sink) QueueName() string    { return "alertmanager" }
func (s *Sink) QueueLen() int        { return len(s.q) }
func (s *Sink) QueueDropped() uint64 { return s.dropped.Load() }

// Sent is how many alerts reached every Alertmanager.
func (s *Sink) Sent() uint64 { return s.sent.Load() }

// Emit queues the alerts a transition makes: KeepwatchVIPMoved when an
// instance becomes MASTER, KeepwatchInstanceFault when it enters FAULT
// (resolved when it leaves), with the labels and annotations of the rules
// in alerts/keepwatch.rules.yml.
func (s *Sink) Emit(e event.Event) {
	if e.Kind != event.KindTransition {
		return
	}
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	// Leaving FAULT resolves its alert, whatever the new state: like
	// Initialize, it leads to MASTER for an address owner (priority 255,
	// RFC 9568 §6.4.1).
	if e.From == vrrp.StateFault && e.To != vrrp.StateFault {
		a := s.alert(e, "KeepwatchInstanceFault", "warning", "A VRRP instance is in FAULT and cannot take over.",
			"left FAULT on {{instance}}.")
		a.Labels["state"] = "fault"
		a.StartsAt, a.EndsAt = at, at
		s.enqueue(a)
	}
	switch e.To {
	case vrrp.StateMaster:
		a := s.alert(e, "KeepwatchVIPMoved", "critical", "A VRRP instance became master and took over its virtual addresses.",
			"became MASTER on {{instance}} (pushed by the agent at the transition, reason "+string(e.Reason)+").")
		a.StartsAt, a.EndsAt = at, at.Add(s.o.VIPMovedFor)
		s.enqueue(a)
	case vrrp.StateFault:
		a := s.alert(e, "KeepwatchInstanceFault", "warning", "A VRRP instance is in FAULT and cannot take over.",
			"is in FAULT on {{instance}} (pushed by the agent at the transition).")
		a.Labels["state"] = "fault"
		a.StartsAt = at
		s.enqueue(a)
	}
}

func (s *Sink) alert(e event.Event, name, severity, summary, what string) alert {
	l := map[string]string{
		"alertname": name, "severity": severity,
		"vrrp_instance": e.Instance, "vrid": strconv.Itoa(int(e.VRID)), "interface": e.Interface, "family": e.Family.String(),
	}
	if m := s.segments.Load(); m != nil {
		if seg := (*m)[e.Instance]; seg != "" {
			l["segment"] = seg
		}
	}
	for k, v := range s.o.Labels {
		l[k] = v
	}
	desc := fmt.Sprintf("%s (VRID %d %s on %s) %s", e.Instance, e.VRID, e.Family, e.Interface, strings.ReplaceAll(what, "{{instance}}", l["instance"]))
	ann := map[string]string{"summary": summary, "description": desc}
	if s.o.RunbookBase != "" {
		ann["runbook_url"] = s.o.RunbookBase + "#" + strings.ToLower(name)
	}
	return alert{Labels: l, Annotations: ann}
}

func (s *Sink) enqueue(a alert) {
	select {
	case s.q <- a:
	default:
		s.dropped.Add(1)
	}
}

// Run sends queued alerts until ctx is done. A failed send is retried with
// a doubling wait; while it waits, new alerts queue behind it (bounded).
func (s *Sink) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-s.q:
			batch := []alert{a}
			for len(batch) < 64 {
				select {
				case b := <-s.q:
					batch = append(batch, b)
					continue
				default:
				}
				break
			}
			s.send(ctx, batch)
		}
	}
}

func (s *Sink) send(ctx context.Context, batch []alert) {
	body, err := json.Marshal(batch)
	if err != nil {
		s.dropped.Add(uint64(len(batch)))
		return
	}
	ok := true
	for _, u := range s.o.URLs {
		wait := s.o.Retry
		delivered := false
		for attempt := 1; attempt <= s.o.MaxAttempts && !delivered; attempt++ {
			if err = s.post(ctx, u, body); err == nil {
				delivered = true
				break
			}
			s.o.Log.Warn("pushing alerts to Alertmanager", "url", u, "attempt", attempt, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 8*s.o.Retry)
		}
		ok = ok && delivered
	}
	if ok {
		s.sent.Add(uint64(len(batch)))
	} else {
		s.dropped.Add(uint64(len(batch)))
	}
}

func (s *Sink) post(ctx context.Context, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
