package check

import (
	"context"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// connPoll waits for the non-blocking connects of TCP_CHECK: one epoll
// instance shared by every check, itself registered in the runtime's
// poller as a single file. A check registers its socket once (EPOLLOUT,
// one-shot) and closing the socket removes it, so a connect that is still
// in progress after connect(2) costs one epoll_ctl; the runtime's poller
// would cost an fcntl, two epoll_ctl calls and an os.File per check, and
// a goroutine parked per socket. One goroutine drains the ready sockets
// and wakes their checks.
type connPoll struct {
	epfd int
	mu   sync.Mutex
	next uint64
	wait map[uint64]chan struct{} // by registration key, not fd: fds are reused
}

var (
	sharedPoll     *connPoll
	sharedPollErr  error
	sharedPollOnce sync.Once
)

// theConnPoll returns the process's connPoll, starting it on first use.
func theConnPoll() (*connPoll, error) {
	sharedPollOnce.Do(func() { sharedPoll, sharedPollErr = newConnPoll() })
	return sharedPoll, sharedPollErr
}

func newConnPoll() (*connPoll, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// An epoll fd is readable while it has events ready, so the runtime's
	// poller can watch it like a socket (it must be non-blocking for that).
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(epfd), "tcp-check-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &connPoll{epfd: epfd, wait: map[uint64]chan struct{}{}}
	go p.run(f, rc)
	return p, nil
}

// run drains the epoll instance for the life of the process. The runtime
// watches the epoll fd edge-triggered, so each wakeup reads until nothing
// is left; RawConn.Read re-arms before it calls the function, so an event
// that lands while draining wakes it again at once.
func (p *connPoll) run(f *os.File, rc syscall.RawConn) {
	defer f.Close()
	evs := make([]unix.EpollEvent, 256)
	rc.Read(func(uintptr) bool {
		for {
			n, err := unix.EpollWait(p.epfd, evs, 0)
			if err == unix.EINTR {
				continue
			}
			if n <= 0 {
				return false
			}
			p.mu.Lock()
			for _, ev := range evs[:n] {
				k := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
				if ch := p.wait[k]; ch != nil {
					delete(p.wait, k)
					ch <- struct{}{}
				}
			}
			p.mu.Unlock()
			if n < len(evs) {
				return false
			}
		}
	})
}

// await waits until the connect in progress on fd has finished, dl has
// passed (os.ErrDeadlineExceeded) or ctx is done, and returns the
// connect's error. The caller closes fd, which removes it from the epoll
// instance.
func (p *connPoll) await(ctx context.Context, fd int, dl time.Time) error {
	ch := make(chan struct{}, 1)
	timer := time.NewTimer(time.Until(dl))
	defer timer.Stop()
	op := unix.EPOLL_CTL_ADD
	for {
		p.mu.Lock()
		p.next++
		k := p.next
		p.wait[k] = ch
		p.mu.Unlock()
		ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT, Fd: int32(uint32(k)), Pad: int32(uint32(k >> 32))}
		if err := unix.EpollCtl(p.epfd, op, fd, &ev); err != nil {
			p.forget(k)
			return os.NewSyscallError("epoll_ctl", err)
		}
		var werr error
		select {
		case <-ch:
		case <-timer.C:
			werr = os.ErrDeadlineExceeded
		case <-ctx.Done():
			werr = ctx.Err()
		}
		p.forget(k)
		// The socket itself has the last word, as keepalived's
		// tcp_socket_state reads SO_ERROR after the write event: a connect
		// that completed as the deadline passed still counts.
		if done, err := connected(fd); done {
			return err
		}
		if werr != nil {
			return werr
		}
		// Woken while still connecting (not expected of EPOLLOUT): re-arm
		// the one-shot registration with a fresh key and wait again.
		op = unix.EPOLL_CTL_MOD
		select {
		case <-ch:
		default:
		}
	}
}

// forget removes the waiter k, if an event has not already taken it.
func (p *connPoll) forget(k uint64) {
	p.mu.Lock()
	delete(p.wait, k)
	p.mu.Unlock()
}
