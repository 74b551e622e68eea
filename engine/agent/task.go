package agent

import (
	"context"
	"log/slog"

	"github.com/keepwatch/keepwatch/engine/vrrp/router"
)

// task is something the agent started and stops: a goroutine (a socket's
// read loop, a tracker, the load balancer, the link watch) or a VRRP
// instance (instanceTask). A goroutine's one rule, as in corerad's Task:
// run returns nil when its context is cancelled; any other return is the
// task failing, and is logged. Each task has its own context, not the
// caller's, because the agent stops its tasks in an order
// (Agent.shutdown), not all at once.
type task struct {
	name   string
	cancel func()
	done   <-chan struct{}
	err    error // set before done is closed
}

func goTask(log *slog.Logger, name string, run func(ctx context.Context) error) *task {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t := &task{name: name, cancel: cancel, done: done}
	go t.run(ctx, log, run, done)
	return t
}

// instanceTask is a VRRP instance as a task, with no goroutine: a running
// instance that waits holds no stack, and its steps run on a worker
// started when there is work (router.Instance.Start). A goroutine per
// instance blocked in Run was 2 KiB of stack (4 KiB while it did the
// instance's work itself), its g, and the task's context and channels
// (issue 12; TestInstanceStack). It never fails.
func instanceTask(name string, inst *router.Instance) *task {
	inst.Start()
	return &task{name: name, cancel: inst.Stop, done: inst.Done()}
}

// run is the task's goroutine; it closes done when run returns.
func (t *task) run(ctx context.Context, log *slog.Logger, run func(context.Context) error, done chan<- struct{}) {
	defer close(done)
	if err := run(ctx); err != nil {
		t.failed(log, err)
	}
}

// failed records and logs a task's error.
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
