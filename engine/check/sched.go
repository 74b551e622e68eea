package check

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/track"
)

// DefaultMaxConcurrent bounds the probes in flight at once when
// Options.MaxConcurrent is zero: far above what 10,000 real servers at a
// 1 s delay_loop need against healthy servers, so a burst of timeouts
// delays probes instead of exhausting file descriptors.
const DefaultMaxConcurrent = 4096

// RealServer is one real server with its checkers, as the scheduler runs
// them (FromConfig builds them from a config).
type RealServer struct {
	// Service and Target name it in events: "ip:port/proto" (or
	// "fwmark:N/ipv4", "group:NAME") and "ip:port".
	Service, Target string
	// Weight is the configured weight.
	Weight   int
	Checkers []Checker
}

// Checker is one checker of a real server with its resolved scheduling.
type Checker struct {
	Target
	DelayLoop        time.Duration
	DelayBeforeRetry time.Duration
	// Warmup spreads the first probe uniformly over [0, Warmup).
	Warmup time.Duration
	// Retry is how many failed retries, delay_before_retry apart, an up
	// checker gets before it is declared down.
	Retry int
	// Alpha starts the checker down, so its real server is down until the
	// checker first succeeds (keepalived `alpha`).
	Alpha bool
	// LogAllFailures logs every failed probe, not only those that change
	// the checker's state (log_all_failures, else checker_log_all_failures):
	// its KindProbe failures carry Value 1.
	LogAllFailures bool
}

// Options configure a Scheduler.
type Options struct {
	// Sink receives KindProbe and KindRealServer events; it is called from
	// many goroutines at once and must be safe for that.
	Sink event.Sink
	// MaxConcurrent bounds the probes in flight (DefaultMaxConcurrent if 0).
	// Probes beyond it wait in FIFO order, so none starves.
	MaxConcurrent int
	// Lateness, if set, is told for every probe how long after its
	// scheduled time it started (a slot wait included).
	Lateness func(time.Duration)
	// Probers overrides the probe of a checker type (tests); nil entries
	// fall back to Probers.
	Probers map[config.CheckerType]Prober
	// Log receives what is not a probe result, such as an init_file that
	// could not be written; nil discards it.
	Log *slog.Logger
}

// Scheduler runs the checkers of a set of real servers, each on its own
// delay_loop, and tracks real-server health by keepalived's rules
// (check_api.c, ipwrapper.c update_svr_checker_state): a real server is up
// when all its checkers are up; a checker starts up (down with alpha),
// goes down after its first failure plus Retry failed retries, and comes up
// on one success. A checker never overlaps itself: its next probe is
// scheduled when the last one ends, delay_loop later (delay_before_retry
// while retrying), as keepalived's timer threads do.
type Scheduler struct {
	opts    Options
	servers []*serverState

	// ready holds due jobs in FIFO order for the workers. A job is in the
	// queue or in ready or being probed, never twice, so a buffer of one
	// slot per job means dispatching never blocks.
	ready   chan *job
	workers int          // started so far, at most opts.MaxConcurrent; guarded by mu
	idle    atomic.Int32 // workers waiting on ready

	startReason event.Reason // of the initial KindRealServer events

	mu   sync.Mutex // guards queue
	q    queue
	wake chan struct{}
	wg   sync.WaitGroup

	// suspended are the services (RealServer.Service) whose checkers are
	// suspended: keepalived's ha_suspend (Suspend).
	suspended sync.Map
}

// Suspend suspends (on) or resumes the checkers of service's real servers,
// as keepalived's ha_suspend does while the virtual server's address is not
// on this host (check_api.c update_checker_activity): a suspended checker
// keeps its schedule but does not probe, so its real server keeps the
// state it had.
func (s *Scheduler) Suspend(service string, on bool) {
	if on {
		s.suspended.Store(service, true)
	} else {
		s.suspended.Delete(service)
	}
}

type serverState struct {
	RealServer
	mu        sync.Mutex // guards everything below and the checkers' state
	checkers  []*job
	failed    int // checkers down
	up        bool
	weight    int // last emitted effective weight
	dynamic   int // misc_dynamic weight, if hasDyn
	hasDyn    bool
	announced bool
}

// job is one checker's schedule and state.
type job struct {
	srv     *serverState
	c       *Checker
	probe   Prober
	due     time.Time
	index   int // in the queue; -1 when not queued
	up      bool
	hasRun  bool
	retry   int // failed retries so far
	contrib int // FILE_CHECK weight contribution
	last    Result
	lastAt  time.Time
	lastD   time.Duration

	// The TCP_CHECK loop's state (tcpLoop), when it runs j: async says
	// it does; tkey is the due time or, while probing (tslot >= 0, the
	// socket's slot), the deadline, as time since the loop's base; tstart
	// when the probe started; tindex the place in the deadline queue; sa
	// and family the address, converted on first use.
	async  bool
	tkey   time.Duration
	tstart time.Duration
	tindex int
	tslot  int32
	sa     unix.Sockaddr
	family int
}

// New returns a scheduler for servers. Run starts it.
func New(servers []RealServer, opts Options) *Scheduler {
	if opts.Sink == nil {
		opts.Sink = event.Discard
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	s := &Scheduler{opts: opts, wake: make(chan struct{}, 1), startReason: event.ReasonStartup}
	njobs := 0
	for i := range servers {
		srv := &serverState{RealServer: servers[i]}
		for k := range srv.Checkers {
			c := &srv.Checkers[k]
			p := opts.Probers[c.Type]
			if p == nil {
				p = Probers[c.Type]
			}
			j := &job{srv: srv, c: c, probe: p, index: -1, up: !c.Alpha, tindex: -1, tslot: -1,
				// TCP_CHECK with its own prober runs on the scheduler's
				// connect loop rather than a worker (tcpLoop).
				async: c.Type == config.TCPCheck && opts.Probers[config.TCPCheck] == nil}
			if !j.up {
				srv.failed++
			}
			srv.checkers = append(srv.checkers, j)
		}
		srv.up = srv.failed == 0
		srv.weight = srv.effectiveWeight()
		s.servers = append(s.servers, srv)
		njobs += len(srv.checkers)
	}
	s.ready = make(chan *job, njobs)
	return s
}

// Inherit carries health over from old, the scheduler of the configuration
// being replaced, as keepalived keeps checker states across a reload
// (reference §4.2): a real server with the same Service and Target keeps,
// for each checker of the same type and address, its up/down state, retry
// count and weight contribution, and keeps its misc_dynamic weight. Run
// then announces the carried state with Reason "reload". Call it before
// Run, after old's Run has returned.
func (s *Scheduler) Inherit(old *Scheduler) {
	type key struct{ service, target string }
	prev := make(map[key]*serverState, len(old.servers))
	for _, srv := range old.servers {
		prev[key{srv.Service, srv.Target}] = srv
	}
	for _, srv := range s.servers {
		o := prev[key{srv.Service, srv.Target}]
		if o == nil {
			continue
		}
		o.mu.Lock()
		used := make([]bool, len(o.checkers))
		for _, j := range srv.checkers {
			for k, oj := range o.checkers {
				if used[k] || oj.c.Type != j.c.Type || oj.c.Addr != j.c.Addr || !oj.hasRun {
					continue
				}
				used[k] = true
				j.up, j.hasRun, j.retry, j.contrib, j.last = oj.up, oj.hasRun, oj.retry, oj.contrib, oj.last
				break
			}
		}
		srv.dynamic, srv.hasDyn = o.dynamic, o.hasDyn
		o.mu.Unlock()
		srv.failed = 0
		for _, j := range srv.checkers {
			if !j.up {
				srv.failed++
			}
		}
		srv.up = srv.failed == 0
		srv.weight = srv.effectiveWeight()
	}
	s.startReason = event.ReasonReload
}

// Run probes until ctx is cancelled, then waits for the probes in flight
// (which see ctx cancelled) and returns ctx's error. Before the first probe
// it emits each real server's initial state as a KindRealServer event
// (Reason "startup", or "reload" after Inherit), FILE_CHECKs already evaluated, since keepalived knows
// a tracked file's value at start.
func (s *Scheduler) Run(ctx context.Context) error {
	// FILE_CHECK files are read before s.mu is taken: a read, however
	// quick (track.ReadRegular cannot block), must never hold the lock
	// Status and the probes need.
	first := map[*job]Result{}
	inited := map[string]bool{}
	for _, srv := range s.servers {
		for _, j := range srv.checkers {
			if j.c.Type == config.FileCheck {
				if t := &j.c.Target; t.TrackInit != nil && !inited[t.TrackFile] && s.startReason != event.ReasonReload {
					// track_file's init_file, as keepalived's checker
					// process applies it (track_file.c), never through a
					// symbolic link (track.WriteInit).
					inited[t.TrackFile] = true
					if _, err := track.WriteInit(t.TrackFile, *t.TrackInit, t.TrackInitOverwrite); err != nil && s.opts.Log != nil {
						s.opts.Log.Error("FILE_CHECK: init_file not written", "file", t.TrackFile, "err", err)
					}
				}
				first[j] = j.run(ctx)
			}
		}
	}
	var loop *tcpLoop
	if s.hasAsync() {
		var err error
		if loop, err = newTCPLoop(s); err != nil {
			if s.opts.Log != nil {
				s.opts.Log.Error("TCP_CHECK: connect loop not started, probing on workers", "err", err)
			}
			for _, srv := range s.servers {
				for _, j := range srv.checkers {
					j.async = false
				}
			}
		}
	}
	now := time.Now()
	s.mu.Lock()
	for _, srv := range s.servers {
		for _, j := range srv.checkers {
			if j.c.Type == config.FileCheck {
				s.apply(j, first[j], 0, false)
				j.due = now.Add(j.c.DelayLoop)
			} else {
				j.due = now
				if j.c.Warmup > 0 {
					j.due = now.Add(rand.N(j.c.Warmup))
				}
			}
			if j.async {
				loop.add(j, j.due)
			} else {
				heap.Push(&s.q, j)
			}
		}
		srv.mu.Lock()
		srv.announced = true
		srv.weight = srv.effectiveWeight()
		s.emitServer(srv, s.startReason)
		srv.mu.Unlock()
	}
	s.mu.Unlock()
	if loop != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			loop.run(ctx)
		}()
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		now := time.Now()
		for len(s.q) > 0 && !s.q[0].due.After(now) {
			s.ready <- heap.Pop(&s.q).(*job)
		}
		// Probes run on long-lived workers (no goroutine start and stack
		// growth per probe), started as the backlog needs them.
		for len(s.ready) > int(s.idle.Load()) && s.workers < s.opts.MaxConcurrent {
			s.workers++
			s.idle.Add(1)
			s.wg.Add(1)
			go s.worker(ctx)
		}
		wait := time.Hour
		if len(s.q) > 0 {
			wait = s.q[0].due.Sub(now)
		}
		s.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			if loop != nil {
				loop.stop()
			}
			s.wg.Wait()
			return ctx.Err()
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// hasAsync reports whether a checker runs on the connect loop.
func (s *Scheduler) hasAsync() bool {
	for _, srv := range s.servers {
		for _, j := range srv.checkers {
			if j.async {
				return true
			}
		}
	}
	return false
}

// worker probes jobs from ready, in FIFO order, until ctx is cancelled. It
// starts counted as idle.
func (s *Scheduler) worker(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case j := <-s.ready:
			s.idle.Add(-1)
			s.probe(ctx, j)
			s.idle.Add(1)
		case <-ctx.Done():
			return
		}
	}
}

// probe runs one probe of j, applies the result and queues j's next probe.
func (s *Scheduler) probe(ctx context.Context, j *job) {
	start := time.Now()
	if s.opts.Lateness != nil {
		s.opts.Lateness(start.Sub(j.due))
	}
	var next time.Duration
	if _, off := s.suspended.Load(j.srv.Service); off {
		next = max(j.c.DelayLoop, time.Second)
	} else {
		r := j.run(ctx)
		d := time.Since(start)
		if ctx.Err() != nil {
			return // a probe cut short by shutdown says nothing about the server
		}
		next = s.apply(j, r, d, true)
	}
	j.due = time.Now().Add(next)
	s.mu.Lock()
	heap.Push(&s.q, j)
	head := s.q[0] == j
	s.mu.Unlock()
	if head {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// run calls the prober, turning a panic into a failure so one bad checker
// cannot take the agent down.
func (j *job) run(ctx context.Context) (r Result) {
	if j.probe == nil {
		return fail(ReasonConfig, fmt.Errorf("no prober for %s", j.c.Type))
	}
	defer func() {
		if p := recover(); p != nil {
			r = fail(ReasonConfig, fmt.Errorf("%s probe panicked: %v", j.c.Type, p))
		}
	}()
	return j.probe(ctx, &j.c.Target)
}

// apply records r for j, moves the checker and its real server by
// keepalived's rules, emits the events and returns the delay to j's next
// probe.
func (s *Scheduler) apply(j *job, r Result, d time.Duration, emit bool) time.Duration {
	srv := j.srv
	srv.mu.Lock()
	defer srv.mu.Unlock()
	j.last, j.lastAt, j.lastD = r, time.Now(), d
	if emit {
		var loud int64
		if j.c.LogAllFailures && !r.OK {
			loud = 1
		}
		s.opts.Sink.Emit(event.Event{Kind: event.KindProbe, Time: j.lastAt, Name: string(j.c.Type),
			Service: srv.Service, Target: srv.Target, Addr: j.c.Addr.Addr(), OK: r.OK,
			Duration: d, Reason: r.Reason, Err: r.Err, Value: loud})
	}
	if r.SetWeight {
		switch j.c.Type {
		case config.MiscCheck:
			srv.dynamic, srv.hasDyn = r.Weight, true
		case config.FileCheck:
			j.contrib = r.Weight
		}
	}
	if j.c.Type == config.FileCheck && !r.OK {
		j.contrib = 0 // keepalived zeroes a faulted file's contribution
	}

	// The retry rules of keepalived's *_epilog functions (check_udp.c
	// udp_epilog is the cleanest statement): an up checker that fails is
	// retried Retry times delay_before_retry apart before it goes down; a
	// down checker is simply probed again a delay_loop later.
	delay := j.c.DelayLoop
	switch {
	case r.OK:
		j.retry = 0
		s.setChecker(j, true)
	case (j.up || !j.hasRun) && j.retry >= j.c.Retry:
		j.retry = 0
		s.setChecker(j, false)
	case j.up:
		j.retry++
		delay = j.c.DelayBeforeRetry
	}
	j.hasRun = true

	if w := srv.effectiveWeight(); w != srv.weight && srv.announced {
		srv.weight = w
		s.emitServer(srv, "")
	}
	if delay <= 0 {
		delay = time.Second
	}
	return delay
}

// setChecker moves j up or down and its real server with it; the caller
// holds j.srv.mu.
func (s *Scheduler) setChecker(j *job, up bool) {
	if j.up == up {
		return
	}
	j.up = up
	srv := j.srv
	if up {
		srv.failed--
	} else {
		srv.failed++
	}
	if alive := srv.failed == 0; alive != srv.up {
		srv.up = alive
		if srv.announced {
			srv.weight = srv.effectiveWeight()
			s.emitServer(srv, "")
		}
		return
	}
	// The checker changed and its server did not: keepalived still mails
	// for it unless no_checker_emails (its check_*.c epilogs send "=> ...
	// CHECK failed on service <=" when the checker flips and either the
	// server's state changed or !no_checker_emails).
	if srv.announced {
		var alive int64
		if srv.up {
			alive = 1
		}
		s.opts.Sink.Emit(event.Event{Kind: event.KindChecker, Time: time.Now(), Service: srv.Service,
			Target: srv.Target, Name: string(j.c.Type), OK: up, Value: alive})
	}
}

// effectiveWeight is the configured weight, or the last misc_dynamic one,
// plus the FILE_CHECK contributions, within IPVS's range.
func (srv *serverState) effectiveWeight() int {
	w := srv.Weight
	if srv.hasDyn {
		w = srv.dynamic
	}
	for _, j := range srv.checkers {
		w += j.contrib
	}
	return max(0, min(w, MaxWeight))
}

func (s *Scheduler) emitServer(srv *serverState, reason event.Reason) {
	s.opts.Sink.Emit(event.Event{Kind: event.KindRealServer, Time: time.Now(), Service: srv.Service,
		Target: srv.Target, OK: srv.up, Value: int64(srv.weight), Reason: reason})
}

// ServerStatus is a real server's state, for the status API.
type ServerStatus struct {
	Service, Target string
	Up              bool
	Weight          int
	Checkers        []CheckerStatus
}

// CheckerStatus is one checker's state.
type CheckerStatus struct {
	Type     config.CheckerType
	Addr     string
	Up       bool
	HasRun   bool
	Reason   event.Reason // of the last probe; "" when it succeeded
	Duration time.Duration
	At       time.Time // when the last probe ended; zero before the first
}

// Status returns every real server's current state, in configuration order.
func (s *Scheduler) Status() []ServerStatus {
	out := make([]ServerStatus, 0, len(s.servers))
	for _, srv := range s.servers {
		srv.mu.Lock()
		st := ServerStatus{Service: srv.Service, Target: srv.Target, Up: srv.up, Weight: srv.weight}
		for _, j := range srv.checkers {
			st.Checkers = append(st.Checkers, CheckerStatus{Type: j.c.Type, Addr: j.c.Addr.String(),
				Up: j.up, HasRun: j.hasRun, Reason: j.last.Reason, Duration: j.lastD, At: j.lastAt})
		}
		srv.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// queue is a min-heap of jobs by due time: the next probe is found in
// O(1) and rescheduled in O(log n), so 10,000 checkers cost one timer.
type queue []*job

func (q queue) Len() int           { return len(q) }
func (q queue) Less(a, b int) bool { return q[a].due.Before(q[b].due) }
func (q queue) Swap(a, b int) {
	q[a], q[b] = q[b], q[a]
	q[a].index, q[b].index = a, b
}
func (q *queue) Push(x any) {
	j := x.(*job)
	j.index = len(*q)
	*q = append(*q, j)
}
func (q *queue) Pop() any {
	old := *q
	j := old[len(old)-1]
	old[len(old)-1] = nil
	j.index = -1
	*q = old[:len(old)-1]
	return j
}
