package notify_test

import (
	"context"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/notify"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// The agent hands the Notifier the event stream (alongside metrics and
// tracing), reports sync group changes itself, and cancels Run last at
// shutdown, after the STOP transitions.
func Example() {
	cfg := &config.Config{}
	var metrics event.Sink = event.Discard // the agent's other sinks
	n := notify.New(cfg, notify.Options{Sink: metrics})
	engine := event.Multi{metrics, n}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()

	engine.Emit(event.Event{Kind: event.KindTransition, Instance: "VI_1", From: vrrp.StateBackup, To: vrrp.StateMaster, Priority: 100})
	n.GroupChanged(notify.GroupTransition{Group: "G1", From: vrrp.StateBackup, To: vrrp.StateMaster})

	engine.Emit(event.Event{Kind: event.KindTransition, Instance: "VI_1", From: vrrp.StateMaster, To: vrrp.StateStop, Priority: 100})
	cancel()
	<-done
	// Output:
}
