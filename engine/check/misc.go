package check

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	runner "github.com/keepwatch/keepwatch/engine/script"
)

// ProbeMisc is MISC_CHECK: misc_path is executed directly (argv split by the
// config parser, no shell; engine/script), with no stdin and its output
// discarded, in its own process group so a timeout kills everything it
// started, and so does its exit. Exit 0 is up and 1 is down; with
// misc_dynamic, 2-255 are up with weight code-2 (keepalived check_misc.c);
// without it, any non-zero code or a signal is down. t.Timeout is
// misc_timeout (default delay_loop).
func ProbeMisc(ctx context.Context, t *Target) Result {
	if t.Misc == nil {
		return fail(ReasonConfig, errors.New("MISC_CHECK without misc_path"))
	}
	argv := t.Misc.Path.Args
	if len(argv) == 0 {
		argv = strings.Fields(t.Misc.Path.Command)
	}
	if len(argv) == 0 {
		return fail(ReasonConfig, errors.New("MISC_CHECK with an empty misc_path"))
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	r := runner.Run(ctx, runner.Spec{Argv: argv, User: t.Misc.Path.User, Group: t.Misc.Path.Group,
		Policy: t.Scripts, Timeout: timeout, Reap: true})
	switch {
	case r.Refused && r.Class() == runner.ReasonInsecure:
		// keepalived disables an unsafe misc_path (check_misc.c
		// check_misc_script_security); keepwatch refuses each run, so the
		// checker stays down until the permissions are fixed.
		return fail(ReasonInsecure, fmt.Errorf("misc_path %q: %w", argv[0], r.Err))
	case r.Refused && (errors.Is(r.Err, runner.ErrNotFound) || errors.Is(r.Err, runner.ErrNotExecutable) || errors.Is(r.Err, runner.ErrWrongType)):
		return fail(ReasonExec, fmt.Errorf("misc_path %q: %w", argv[0], r.Err))
	case r.Refused:
		return fail(ReasonConfig, fmt.Errorf("misc_path %q: %w", argv[0], r.Err))
	case r.TimedOut:
		return fail(ReasonTimeout, fmt.Errorf("misc_path %q: timed out after %v", argv[0], timeout))
	case ctx.Err() != nil:
		return fail(ReasonCanceled, ctx.Err())
	case r.Err != nil && r.ExitCode == -1 && !strings.HasPrefix(r.Err.Error(), "killed by"):
		return fail(ReasonExec, fmt.Errorf("misc_path %q: %w", argv[0], r.Err))
	case r.OK():
		return ok
	case t.Misc.Dynamic && r.ExitCode >= 2 && r.ExitCode <= 255:
		return Result{OK: true, Weight: r.ExitCode - 2, SetWeight: true}
	case r.Err != nil:
		return fail(ReasonExit, fmt.Errorf("misc_path %q: %w", argv[0], r.Err))
	}
	return fail(ReasonExit, fmt.Errorf("misc_path %q: exit status %d", argv[0], r.ExitCode))
}
