package script

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
	"time"
)

// Spec is one command to run.
type Spec struct {
	// Argv is the command and its arguments; Argv[0] is executed directly,
	// never through a shell (a shell script runs because of its #! line).
	Argv []string
	// User and Group to run as ("" = this process's). keepalived's
	// script_user default is applied by the caller.
	User, Group string
	// Env is added to the environment of this process.
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
	Err      error // nil when the command ran and exited (whatever its code)
}

// OK reports whether the command ran and exited 0.
func (r Result) OK() bool { return r.Err == nil && !r.TimedOut && r.ExitCode == 0 }

// Class is a low-cardinality error class for metrics and events.
func (r Result) Class() string {
	switch {
	case r.TimedOut:
		return "timeout"
	case r.Err != nil:
		return "exec"
	case r.ExitCode != 0:
		return "exit_code"
	}
	return ""
}

// Run executes s and waits for it, or for the timeout, or for ctx. The
// command runs in its own process group so that a timeout also ends the
// children it started (keepalived kills the group the same way).
func Run(ctx context.Context, s Spec) Result {
	start := time.Now()
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return Result{ExitCode: -1, Err: errors.New("empty command")}
	}
	cmd := exec.Command(s.Argv[0], s.Argv[1:]...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.User != "" {
		cred, err := Credential(s.User, s.Group)
		if err != nil {
			return Result{ExitCode: -1, Err: err}
		}
		cmd.SysProcAttr.Credential = cred
	}
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

// Credential resolves a user and optional group to the credential a child
// runs with; the group defaults to the user's primary group.
func Credential(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("script user %q: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("script user %q: uid %q: %w", name, u.Uid, err)
	}
	gidStr := u.Gid
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("script group %q: %w", group, err)
		}
		gidStr = g.Gid
	}
	gid, err := strconv.ParseUint(gidStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("script group %q: gid %q: %w", group, gidStr, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// ErrInsecure is returned by CheckSecure for a script that a non-root user
// could change.
var ErrInsecure = errors.New("unsafe permissions")

// CheckSecure applies enable_script_security (keepalived.conf(5) SCRIPTS): a
// script run as root must not be writable by anyone but root, and neither
// may any directory on its path.
func CheckSecure(path string) error {
	for p := path; ; {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && st.Uid != 0 {
			return fmt.Errorf("%w: %s is owned by uid %d", ErrInsecure, p, st.Uid)
		}
		// Group or world write, except on sticky directories such as /tmp.
		if fi.Mode().Perm()&0o022 != 0 && !(fi.IsDir() && fi.Mode()&os.ModeSticky != 0) {
			return fmt.Errorf("%w: %s is writable by group or others", ErrInsecure, p)
		}
		parent := parentDir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
}

func parentDir(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}
