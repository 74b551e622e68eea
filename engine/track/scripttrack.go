package track

import (
	"context"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/script"
)

// Script runs a vrrp_script every Interval and reports when its state
// changes: up after Rise consecutive successes, down after Fall consecutive
// failures (a timeout is a failure), as keepalived's vrrp_script does.
type Script struct {
	Name     string
	Spec     script.Spec // Spec.Timeout defaults to Interval
	Interval time.Duration
	Rise     int
	Fall     int
	// InitFail starts the script in the failed state instead of unknown.
	InitFail bool
	Sink     event.Sink
	// OnChange is called from Run's goroutine when the state changes.
	OnChange func(State)
}

// Run blocks until ctx is cancelled, running the script on its interval.
func (s *Script) Run(ctx context.Context) {
	rise, fall := max(s.Rise, 1), max(s.Fall, 1)
	spec := s.Spec
	if spec.Timeout == 0 {
		spec.Timeout = s.Interval
	}
	sink := s.Sink
	if sink == nil {
		sink = event.Discard
	}
	known, up := s.InitFail, false
	if s.InitFail && s.OnChange != nil {
		s.OnChange(State{Known: true, Up: false})
	}
	okRun, failRun := 0, 0
	disabled := false
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		r := script.Run(ctx, spec)
		if ctx.Err() != nil {
			return
		}
		id := event.NewID()
		sink.Emit(event.Event{Kind: event.KindScriptRun, ID: id, Time: time.Now(), Name: s.Name, OK: r.OK(),
			ExitCode: r.ExitCode, Duration: r.Duration, Reason: event.Reason(r.Class()), Err: r.Err})
		switch {
		case r.Refused:
			// Not run: script security, a missing script or user. The
			// check is repeated each interval, so fixing the permissions
			// brings the script back without a reload.
			if !disabled {
				disabled, known, okRun, failRun = true, false, 0, 0
				s.change(State{Known: true, Disabled: true, Err: r.Err.Error(), Cause: id})
			}
		case r.OK():
			disabled = false
			okRun, failRun = okRun+1, 0
			if (!known || !up) && okRun >= rise {
				known, up = true, true
				s.change(State{Known: true, Up: true, Cause: id})
			}
		default:
			disabled = false
			failRun, okRun = failRun+1, 0
			if (!known || up) && failRun >= fall {
				known, up = true, false
				s.change(State{Known: true, Up: false, Cause: id})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Script) change(st State) {
	if s.OnChange != nil {
		s.OnChange(st)
	}
}
