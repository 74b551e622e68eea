package agent

import (
	"context"
	"log/slog"
)

// task is one goroutine the agent started: an instance, a socket's read
// loop, a tracker, the load balancer, the link watch. Its one rule, as in
// corerad's Task: run returns nil when its context is cancelled; any other
// return is the task failing, and is logged. Each task has its own context,
// not the caller's, because the agent stops its tasks in an order
// (Agent.shutdown), not all at once.
type task struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

func goTask(log *slog.Logger, name string, run func(ctx context.Context) error) *task {
	ctx, cancel := context.WithCancel(context.Background())
	t := &task{name: name, cancel: cancel, done: make(chan struct{})}
	go t.run(ctx, log, run)
	return t
}

// run is the task's goroutine. Its frame stays under every instance's
// stack while the instance waits, so it is kept small: the error log, whose
// variadic arguments made the frame 216 bytes, is in failed, not inlined.
// With it, an instance goroutine parked in its select used 2,072 bytes of
// stack by the runtime's count (frames plus the 800-byte nosplit reserve),
// just over a quarter of 8 KiB, so the GC could never shrink its stack to
// 4 KiB (runtime shrinkstack halves a stack only when less than a quarter is
// in use): 250 instances kept ~1 MiB of stack they did not use (issue 12).
// TestInstanceStackShrinks holds it.
func (t *task) run(ctx context.Context, log *slog.Logger, run func(context.Context) error) {
	defer close(t.done)
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
	<-t.done
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
