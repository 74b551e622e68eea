package agent

import (
	"context"
	"log/slog"
	"sync"
)

// task is one goroutine the agent started: an instance, a socket's read
// loop, a tracker, the load balancer, the link watch. Its one rule, as in
// corerad's Task: run returns nil when its context is cancelled; any other
// return is the task failing, and is logged. Each task has its own context,
// not the caller's, because the agent stops its tasks in an order
// (Agent.shutdown), not all at once.
//
// stop waits for the goroutine on a WaitGroup, not a channel: there is a
// task per instance, and a channel was 96 bytes of each (issue 12).
type task struct {
	name   string
	cancel context.CancelFunc
	done   sync.WaitGroup
	err    error // set before done.Done
}

func goTask(log *slog.Logger, name string, run func(ctx context.Context) error) *task {
	ctx, cancel := context.WithCancel(context.Background())
	t := &task{name: name, cancel: cancel}
	t.done.Add(1)
	go t.run(ctx, log, run)
	return t
}

// run is the task's goroutine. Its frame stays under every instance's
// stack while the instance waits, so it is kept small (64 bytes; it was 216
// with the error log's variadic arguments inlined, now in failed). The GC
// halves a parked goroutine's stack only while less than a quarter of it is
// in use, counting an 800-byte nosplit reserve (runtime shrinkstack): every
// byte under router.Instance.Run's select decides whether 250 instances
// keep 8 KiB of stack each or 4 KiB (issue 12; BenchmarkInstanceStack).
func (t *task) run(ctx context.Context, log *slog.Logger, run func(context.Context) error) {
	defer t.done.Done()
	if err := run(ctx); err != nil {
		t.failed(log, err)
	}
}

//go:noinline
func (t *task) failed(log *slog.Logger, err error) {
	t.err = err
	log.Error("task stopped", "task", t.name, "err", err)
}

// stop cancels the task and waits for it; it returns the task's error.
func (t *task) stop() error {
	t.cancel()
	t.done.Wait()
	return t.err
}

// untilCancelled maps the error of a function that returns when ctx is
// done to the task rule: nil once ctx is cancelled.
func untilCancelled(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
