package notify

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keepwatch/keepwatch/engine/boundq"
	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Defaults for Options.
const (
	DefaultQueueSize     = 1024
	DefaultLaneSize      = 64
	DefaultMailQueueSize = 64
	// DefaultScriptTimeout bounds one notify script. keepalived sets no
	// limit because it forks every script and never waits; keepwatch runs
	// an instance's scripts in order, so a stuck one would hold back that
	// instance's later notifications forever.
	DefaultScriptTimeout = time.Minute
	// DefaultStopTimeout is keepalived's limit for scripts run on the STOP
	// state at shutdown (vrrp_notify.c: TIMER_HZ, one second).
	DefaultStopTimeout    = time.Second
	DefaultDrainTimeout   = 5 * time.Second
	DefaultMailRetryDelay = time.Second
)

// Options tune a Notifier. Zero values take the defaults above.
type Options struct {
	// Sink receives what the notifier did: KindNotifyRun per script and
	// KindMailSent per mail. It is called from the notifier's goroutines.
	Sink   event.Sink
	Logger *slog.Logger

	// QueueSize bounds the events waiting for the dispatcher; LaneSize the
	// scripts waiting behind one instance, sync group or virtual server;
	// MailQueueSize the mails waiting to be sent. Whatever does not fit
	// is dropped and counted (QueueDropped), never waited for.
	QueueSize, LaneSize, MailQueueSize int

	ScriptTimeout time.Duration // one notify script
	StopTimeout   time.Duration // a script run for the STOP state
	// DrainTimeout is how long Run, once cancelled, lets queued scripts
	// and mails finish before it kills what is still running.
	DrainTimeout   time.Duration
	MailRetryDelay time.Duration // before the one retry of a failed mail

	// Now is the clock for mail Date headers (default time.Now).
	Now func() time.Time
}

// GroupTransition is a sync group's state change (reference §1.4), which
// the agent reports with GroupChanged: the group's notify scripts, FIFO
// line and mail follow it as an instance's follow a KindTransition.
type GroupTransition struct {
	Group    string
	From, To vrrp.State
	Cause    uint64 // ID of the event that led to it, if any
	Time     time.Time
}

// Notifier is an event.Sink that does what keepalived does when an
// instance, sync group, real server or virtual server changes state: run
// the notify scripts, write the notify FIFO lines and send the SMTP alert
// (reference §1.8, §3.5).
//
// Emit copies the event into a bounded queue and returns: nothing it does
// can delay the emitter, let alone a VRRP timer (DESIGN.md §3). Run's
// dispatcher writes FIFO lines in event order at once, then hands scripts
// to one worker per instance, group or virtual server, so one instance's
// scripts run in order while a hanging script of another cannot hold them
// back, and mails to one mail worker.
type Notifier struct {
	opts    Options
	log     *slog.Logger
	sink    event.Sink
	plan    atomic.Pointer[plan]
	queue   *boundq.Queue[item] // grows with a burst, not QueueSize events up front
	dropped atomic.Uint64
	fifoErr atomic.Uint64
	running atomic.Bool
}

// item is one queued input.
type item struct {
	e     event.Event
	group bool // e is a GroupTransition carried as KindTransition, Name = group
}

var _ event.Sink = (*Notifier)(nil)

// New returns a Notifier for cfg. It does nothing until Run. cfg is
// retained and must not be modified afterwards (a reload passes a new one
// to Update).
func New(cfg *config.Config, opts Options) *Notifier {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.LaneSize <= 0 {
		opts.LaneSize = DefaultLaneSize
	}
	if opts.MailQueueSize <= 0 {
		opts.MailQueueSize = DefaultMailQueueSize
	}
	if opts.ScriptTimeout <= 0 {
		opts.ScriptTimeout = DefaultScriptTimeout
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.MailRetryDelay <= 0 {
		opts.MailRetryDelay = DefaultMailRetryDelay
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	n := &Notifier{opts: opts, log: opts.Logger, sink: opts.Sink, queue: boundq.New[item](opts.QueueSize)}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.sink == nil {
		n.sink = event.Discard
	}
	n.plan.Store(compile(cfg))
	return n
}

// Update switches to a reloaded config: later events use its scripts,
// mail settings and smtp_alert switches. The notify FIFOs stay those Run
// opened.
//
// The instances the new config no longer has are kept aside (plan.deleted):
// the agent stops them after Update, and their STOP transition is then
// announced as keepalived announces an instance a reload deleted.
func (n *Notifier) Update(cfg *config.Config) {
	p := compile(cfg)
	if old := n.plan.Load(); old != nil {
		for _, m := range []map[string]*target{old.deleted, old.instances} {
			for name, t := range m {
				if p.instances[name] == nil {
					if p.deleted == nil {
						p.deleted = map[string]*target{}
					}
					p.deleted[name] = t
				}
			}
		}
	}
	n.plan.Store(p)
}

// Emit queues the events the notifier acts on (KindTransition,
// KindRealServer, KindQuorum) and ignores the rest. It never blocks: on a
// full queue the event is dropped and counted.
func (n *Notifier) Emit(e event.Event) {
	switch e.Kind {
	case event.KindTransition, event.KindRealServer, event.KindQuorum, event.KindMasterRxLowerPri, event.KindChecker:
		n.enqueue(item{e: e})
	case event.KindPriorityChanged:
		// Only FIFO lines come of it, and only with notify_priority_changes.
		if p := n.plan.Load(); p != nil && p.anyPrio {
			n.enqueue(item{e: e})
		}
	}
}

// GroupChanged queues a sync group's state change; like Emit, it never blocks.
func (n *Notifier) GroupChanged(g GroupTransition) {
	n.enqueue(item{group: true, e: event.Event{Kind: event.KindTransition, Name: g.Group,
		From: g.From, To: g.To, Cause: g.Cause, Time: g.Time}})
}

func (n *Notifier) enqueue(it item) {
	if !n.queue.Push(it) {
		n.dropped.Add(1)
	}
}

// QueueName returns the sink label for metrics.Queue.
func (n *Notifier) QueueName() string { return "notify" }

// QueueLen returns the number of events waiting for the dispatcher.
func (n *Notifier) QueueLen() int { return n.queue.Len() }

// QueueDropped returns how many events, scripts and mails were dropped
// because a queue was full.
func (n *Notifier) QueueDropped() uint64 { return n.dropped.Load() }

// FIFOWriteErrors returns how many FIFO lines could not be written (the
// pipe was full because its reader stopped reading, or it broke).
func (n *Notifier) FIFOWriteErrors() uint64 { return n.fifoErr.Load() }

// Run opens the notify FIFOs (starting their reader scripts) and handles
// queued events until ctx is cancelled. Then it handles what was queued
// before the cancel (so STOP transitions emitted at shutdown still run
// notify_stop), waits up to DrainTimeout for scripts and mails, kills what
// is left, removes the FIFOs it created and returns. Run may be called once.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("notify: Run called twice")
	}
	// Scripts and mails outlive ctx by up to DrainTimeout.
	work, kill := context.WithCancel(context.WithoutCancel(ctx))
	defer kill()
	d := &dispatcher{n: n, work: work, lanes: make(map[string]*boundq.Queue[job]), lanesDone: make(chan struct{}),
		mailq: make(chan message, n.opts.MailQueueSize), lastMail: make(map[string]vrrp.State),
		lastUp: make(map[string]bool), insts: make(map[string]instState)}
	d.fifos = n.openFIFOs(n.plan.Load())
	defer d.fifos.close()
	d.wg.Add(1)
	go d.mailLoop()
	for {
		select {
		case <-n.queue.Ready():
			for it, ok := n.queue.Pop(); ok; it, ok = n.queue.Pop() {
				d.handle(it)
			}
		case <-ctx.Done():
			for it, ok := n.queue.Pop(); ok; it, ok = n.queue.Pop() {
				d.handle(it)
			}
			close(d.lanesDone)
			close(d.mailq)
			done := make(chan struct{})
			go func() { d.wg.Wait(); close(done) }()
			t := time.NewTimer(n.opts.DrainTimeout)
			defer t.Stop()
			select {
			case <-done:
			case <-t.C:
				n.log.Warn("notify: drain timeout, killing scripts and mail still running",
					"timeout_seconds", n.opts.DrainTimeout.Seconds())
				kill()
				<-done
			}
			return ctx.Err()
		}
	}
}

// dispatcher is Run's state; only Run's goroutine touches its maps.
type dispatcher struct {
	n     *Notifier
	work  context.Context
	fifos *fifoSet
	// lanes holds each key's scripts, grown as they queue: a lane is made
	// at an instance's first script and lives as long as the agent, so a
	// 64-job channel each (~13 KiB, zeroed when made) was ~3 MiB for 250
	// instances with notify scripts. lanesDone tells every lane to run what
	// it holds and stop.
	lanes     map[string]*boundq.Queue[job]
	lanesDone chan struct{}
	mailq     chan message
	wg        sync.WaitGroup

	lastMail map[string]vrrp.State // keepalived's last_email_state
	lastUp   map[string]bool       // last real server / quorum state acted on
	insts    map[string]instState  // each instance's last state and priority
}

// instState is an instance's state and effective priority as the
// dispatcher last saw them, for notify_priority_changes.
type instState struct {
	state vrrp.State
	prio  int
}
