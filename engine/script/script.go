package script

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Spec is one command to run.
type Spec struct {
	// Argv is the command and its arguments; Argv[0] is executed directly,
	// never through a shell (a shell script runs because of its #! line).
	Argv []string
	// User and Group are the script's own `user [group]`; "" leaves the
	// choice to Policy (script_user, keepalived_script, this process).
	User, Group string
	// Policy is global_defs' script_user and enable_script_security.
	Policy Policy
	// Env is added to the environment the script gets (Environ).
	Env []string
	// Timeout kills the process group when exceeded; 0 means no limit.
	Timeout time.Duration
	// Reap kills whatever the command left in its process group once it
	// has exited, as keepalived does for checkers (MISC_CHECK). Notify
	// scripts may start daemons on purpose, so it is off by default.
	Reap bool
}

// Result is the outcome of one run.
type Result struct {
	ExitCode int // -1 when the command could not run or was killed
	Duration time.Duration
	TimedOut bool
	// Refused is set when the script was not started: its user cannot be
	// resolved or Check refused it (Err says why).
	Refused bool
	Err     error // nil when the command ran and exited (whatever its code)
}

// OK reports whether the command ran and exited 0.
func (r Result) OK() bool { return r.Err == nil && !r.TimedOut && r.ExitCode == 0 }

// ReasonInsecure is the Class of a run refused by script security.
const ReasonInsecure = "insecure"

// Class is a low-cardinality error class for metrics and events.
func (r Result) Class() string {
	switch {
	case r.TimedOut:
		return "timeout"
	case r.Refused && errors.Is(r.Err, ErrInsecure):
		return ReasonInsecure
	case r.Err != nil:
		return "exec"
	case r.ExitCode != 0:
		return "exit_code"
	}
	return ""
}

// Prepare resolves who s runs as and applies Check, as keepalived does when
// it loads a script and keepwatch again before each run. It returns the
// path to execute. Without enable_script_security an unsafe script is
// allowed (keepalived only warns), but one that is missing or not
// executable is not.
func Prepare(s Spec) (Identity, string, error) {
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return Identity{}, "", fmt.Errorf("%w: empty command", ErrNotFound)
	}
	id, err := s.Policy.Resolve(s.User, s.Group)
	if err != nil {
		return id, "", err
	}
	path, err := Check(s.Argv[0], id)
	if err != nil && errors.Is(err, ErrInsecure) && !s.Policy.Security {
		return id, s.Argv[0], nil
	}
	return id, path, err
}

// Run executes s and waits for it, or for the timeout, or for ctx. It is
// the one way keepwatch starts a script (vrrp_script, MISC_CHECK, notify
// and FIFO scripts), and starts it as keepalived does (lib/notify.c
// system_call_script, set_script_env): after Prepare, as the resolved user
// and group with that group as its only group (setgroups(1, &gid): none of
// this process's supplementary groups), in its own process group so that a
// timeout also ends the children it started, with stdin, stdout and stderr
// on /dev/null, no other inherited descriptor, and keepalived's
// environment (this process's) less keepwatch's own settings (Environ).
func Run(ctx context.Context, s Spec) Result {
	start := time.Now()
	id, path, err := Prepare(s)
	if err != nil {
		return Result{ExitCode: -1, Refused: true, Err: err}
	}
	cmd := exec.Command(path, s.Argv[1:]...)
	cmd.Env = append(Environ(os.Environ()), s.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: credential(id)}
	closeOnExec()
	if err := cmd.Start(); err != nil {
		return Result{ExitCode: -1, Duration: time.Since(start), Err: err}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timeout <-chan time.Time
	if s.Timeout > 0 {
		t := time.NewTimer(s.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case err := <-done:
		if s.Reap {
			killGroup(cmd)
		}
		return exited(err, time.Since(start))
	case <-timeout:
		killGroup(cmd)
		<-done
		return Result{ExitCode: -1, Duration: time.Since(start), TimedOut: true}
	case <-ctx.Done():
		killGroup(cmd)
		<-done
		return Result{ExitCode: -1, Duration: time.Since(start), Err: ctx.Err()}
	}
}

// credential is what the child switches to. As root, always (keepalived
// calls setgroups(1, &gid) even for a root script, dropping root's other
// groups); as another user only when id differs, since it could not
// switch anyway.
func credential(id Identity) *syscall.Credential {
	if os.Geteuid() != 0 && id.UID == uint32(os.Geteuid()) && id.GID == uint32(os.Getegid()) {
		return nil
	}
	return &syscall.Credential{Uid: id.UID, Gid: id.GID, Groups: []uint32{id.GID}}
}

func exited(err error, d time.Duration) Result {
	if err == nil {
		return Result{Duration: d}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return Result{ExitCode: -1, Duration: d, Err: fmt.Errorf("killed by %v", ws.Signal())}
		}
		return Result{ExitCode: ee.ExitCode(), Duration: d}
	}
	return Result{ExitCode: -1, Duration: d, Err: err}
}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Credential resolves a user and optional group (the group defaults to
// the user's primary group), for files keepwatch creates for another user
// such as notify FIFOs.
func Credential(name, group string) (*syscall.Credential, error) {
	id, err := lookup(name, group)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: id.UID, Gid: id.GID}, nil
}
