package check

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ProbeMisc is MISC_CHECK: misc_path is executed directly (argv split by the
// config parser, no shell), with no stdin and its output discarded, in its
// own process group so a timeout kills everything it started (SIGKILL to
// the group). Exit 0 is up and 1 is down; with misc_dynamic, 2-255 are up
// with weight code-2 (keepalived check_misc.c); without it, any non-zero
// code or a signal is down. t.Timeout is misc_timeout (default delay_loop).
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
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := credential(cmd.SysProcAttr, t.Misc.Path.User, t.Misc.Path.Group); err != nil {
		return fail(ReasonConfig, err)
	}
	if err := cmd.Start(); err != nil {
		return fail(ReasonExec, fmt.Errorf("misc_path %q: %w", argv[0], err))
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
	case <-timer.C:
		killGroup(cmd)
		<-done
		return fail(ReasonTimeout, fmt.Errorf("misc_path %q: timed out after %v", argv[0], timeout))
	case <-ctx.Done():
		killGroup(cmd)
		<-done
		return fail(ReasonCanceled, ctx.Err())
	}
	// The script has exited, but anything it left in its group goes too, as
	// keepalived's does when the child is reaped.
	killGroup(cmd)
	if err == nil {
		return ok
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fail(ReasonExec, err)
	}
	code := ee.ExitCode() // -1 when signalled
	if t.Misc.Dynamic && code >= 2 && code <= 255 {
		return Result{OK: true, Weight: code - 2, SetWeight: true}
	}
	return fail(ReasonExit, fmt.Errorf("misc_path %q: %w", argv[0], err))
}

// killGroup sends SIGKILL to the process group of cmd's process; errors
// (the group is already gone) do not matter.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil && cmd.Process.Pid > 0 {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// credential makes the script run as user (and group, else the user's
// primary group) when one is configured (MISC_CHECK `user`).
func credential(attr *syscall.SysProcAttr, name, group string) error {
	if name == "" {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("misc_check user %q: %w", name, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return fmt.Errorf("misc_check group %q: %w", group, err)
		}
		gid, _ = strconv.ParseUint(g.Gid, 10, 32)
	}
	attr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return nil
}
