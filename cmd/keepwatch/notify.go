package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/keepwatch/keepwatch/engine/agent"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/notify"
)

// notifyWiring runs keepalived's notify scripts, FIFOs and SMTP mail for
// the agent. The notifier reports to the metrics, and the metrics read its
// queue, so it is a metrics.Queue before the notifier exists.
type notifyWiring struct {
	log    *slog.Logger
	n      *notify.Notifier
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	// startRun starts the notifier's Run; config calls it once.
	startRun func()
}

func (w *notifyWiring) start(results event.Sink) {
	w.n = notify.New(&configT{}, notify.Options{Sink: results, Logger: w.log})
	w.done = make(chan struct{})
	var ctx context.Context
	ctx, w.cancel = context.WithCancel(context.Background())
	w.startRun = func() {
		go func() {
			defer close(w.done)
			if err := w.n.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				w.log.Error("notify", "err", err)
			}
		}()
	}
}

// config hands the notifier each config the agent runs. Run opens the
// notify FIFOs of the config it has, so it starts with the first one.
func (w *notifyWiring) config(c *configT) {
	w.n.Update(c)
	w.once.Do(w.startRun)
}

func (w *notifyWiring) group(g agent.GroupChange) {
	w.n.GroupChanged(notify.GroupTransition{Group: g.Group, From: g.From, To: g.To, Cause: g.Cause, Time: g.Time})
}

// stop lets queued notifications finish (the notifier drains on cancel).
func (w *notifyWiring) stop() {
	w.cancel()
	w.once.Do(func() { close(w.done) })
	<-w.done
}

func (w *notifyWiring) QueueName() string { return "notify" }

func (w *notifyWiring) QueueLen() int {
	if w.n == nil {
		return 0
	}
	return w.n.QueueLen()
}

func (w *notifyWiring) QueueDropped() uint64 {
	if w.n == nil {
		return 0
	}
	return w.n.QueueDropped()
}
