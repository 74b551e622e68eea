package notify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/script"
)

// fifo is one open notify FIFO.
type fifo struct {
	path    string
	fd      int  // raw: an os.File would switch it back to blocking on Fd()
	created bool // we made it, so we remove it on close (keepalived does)
}

// openFIFO creates path as a FIFO if it is missing, starts its reader
// script (if any) with the path as the last argument, then opens it the
// way keepalived's notify.c fifo_open does: read-write and non-blocking,
// so the open succeeds without a reader and a write never waits (a full
// pipe fails the write with EAGAIN instead). O_NOFOLLOW refuses a symlink
// planted at the path.
func openFIFO(fc *config.FIFO) (*fifo, error) {
	ff := &fifo{path: fc.Path}
	err := unix.Mkfifo(fc.Path, 0o644) // S_IRUSR|S_IWUSR|S_IRGRP|S_IROTH, as keepalived
	switch {
	case err == nil:
		ff.created = true
		if fc.User != "" || fc.Group != "" {
			if err := chownFIFO(fc); err != nil {
				_ = os.Remove(fc.Path)
				return nil, err
			}
		}
	case errors.Is(err, unix.EEXIST):
	default:
		return nil, fmt.Errorf("notify fifo %q: %w", fc.Path, err)
	}
	fd, err := unix.Open(fc.Path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if err != nil {
		if ff.created {
			_ = os.Remove(fc.Path)
		}
		return nil, fmt.Errorf("notify fifo %q: %w", fc.Path, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("notify fifo %q: not a FIFO", fc.Path)
	}
	ff.fd = fd
	return ff, nil
}

func chownFIFO(fc *config.FIFO) error {
	name := fc.User
	if name == "" {
		name = "root"
	}
	cred, err := script.Credential(name, fc.Group)
	if err != nil {
		return fmt.Errorf("notify fifo %q: %w", fc.Path, err)
	}
	uid := int(cred.Uid)
	if fc.User == "" {
		uid = -1
	}
	if err := os.Chown(fc.Path, uid, int(cred.Gid)); err != nil {
		return fmt.Errorf("notify fifo %q: %w", fc.Path, err)
	}
	return nil
}

// write writes one whole line. A line up to PIPE_BUF (4096) bytes is written
// atomically or not at all, so a reader never sees half a line.
func (ff *fifo) write(line []byte) error {
	// A raw write on the non-blocking fd returns EAGAIN at once when the
	// pipe is full, which is the point.
	n, err := unix.Write(ff.fd, line)
	if err != nil {
		return err
	}
	if n != len(line) {
		return fmt.Errorf("short write %d of %d", n, len(line))
	}
	return nil
}

// close removes the FIFO first if we created it (so a reader script that
// reopens in a loop cannot reopen it, as keepalived notes), then closes.
func (ff *fifo) close() {
	if ff.created {
		_ = os.Remove(ff.path)
	}
	_ = unix.Close(ff.fd)
}

// fifoSet is the open FIFOs, indexed fifoAll/fifoVRRP/fifoLVS, and their
// reader scripts.
type fifoSet struct {
	f       [3]*fifo
	cancel  context.CancelFunc
	scripts sync.WaitGroup
}

func (s *fifoSet) close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.scripts.Wait()
	for _, ff := range s.f {
		if ff != nil {
			ff.close()
		}
	}
}
