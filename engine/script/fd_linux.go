package script

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// closeOnExec marks every descriptor above stderr close-on-exec, so a
// script inherits none of this process's sockets, files or FIFOs
// (keepalived closes them in the child). Go opens its own descriptors
// close-on-exec, but a descriptor inherited from whoever started keepwatch
// (a service manager, a shell) or opened by C code is not; setting the flag
// again on the others is harmless. close_range(2) does it in one call
// (Linux 5.11); older kernels get a walk of /proc/self/fd.
func closeOnExec() {
	if unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, n := range names {
		if fd, err := strconv.Atoi(n); err == nil && fd > 2 {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
}
