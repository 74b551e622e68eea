package check

import (
	"context"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/config"
)

// tcpLoop runs a Scheduler's TCP_CHECKs without a goroutine, a channel or
// a timer per probe: one goroutine owns an epoll instance and the
// checkers' schedule, and in each turn it collects the finished connects
// (one epoll_wait for all of them), times out the overdue ones and starts
// the due ones. A probe is then a connect(2) on a socket that stays
// registered with the epoll instance (edge-triggered, so an idle socket
// costs nothing) and a connect(AF_UNSPEC) that resets the connection and
// leaves the socket ready for the next probe: two syscalls where a fresh
// socket per probe costs socket, setsockopt, connect, epoll_ctl,
// getsockopt and close, and the socket's allocation and release in the
// kernel, which perf put at two fifths of the probe's kernel time.
//
// On the wire a probe is what keepalived's check_tcp.c does, one TCP
// connection per check: SYN, SYN-ACK, ACK, then RST where keepalived's
// close sends a FIN (see resetOnClose). connect(AF_UNSPEC) is
// tcp_disconnect, the "ABORT function of RFC 793": it sends the reset for
// an established connection, drops one still in SYN-SENT, releases the
// ephemeral port, and the socket can connect again (new port, new
// sequence number). A checker with bindto, bind_port, bind_if or fwmark
// gets a fresh socket per probe, closed with a reset, as ProbeTCP does:
// its options are its own, and a pooled socket would keep bind_port bound
// between probes.
//
// Only this goroutine starts, finishes and reuses sockets, so an event
// that epoll_wait returns always describes the probe the socket is
// running when the event is handled (the kernel computes an event's mask
// when epoll_wait collects it, and nothing is reused between that and the
// handling): a stale wakeup, such as the one a reset leaves, is either
// dropped by the kernel (mask 0 while the next connect is in SYN-SENT) or
// seen on an idle socket and ignored.
type tcpLoop struct {
	s    *Scheduler
	epfd int
	evfd int // eventfd that wakes the loop to stop
	base time.Time

	due      dueQueue   // idle jobs by due time
	q        tcpQueue   // probing jobs by deadline
	socks    []tcpSock  // by slot, the epoll event's data
	free     []int32    // unused slots
	pool     [2][]int32 // idle reusable sockets: IPv4, IPv6
	inflight int
	evs      []unix.EpollEvent
	held     []*job // due jobs held back at MaxConcurrent
}

// tcpSock is one socket of the loop.
type tcpSock struct {
	fd     int
	j      *job // the probe running on it; nil when idle
	reuse  bool // disconnect and pool it rather than close it
	family int
}

// tcpPoolMax bounds the idle sockets kept per family. At 10,000 probes a
// second against servers that answer in a millisecond, a dozen are in
// use at once; a burst of timeouts may open thousands, which are closed
// as they finish beyond this many.
const tcpPoolMax = 256

// stopData marks the eventfd's epoll events.
const stopData = -1

func newTCPLoop(s *Scheduler) (*tcpLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: stopData}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return &tcpLoop{s: s, epfd: epfd, evfd: evfd, base: time.Now(), evs: make([]unix.EpollEvent, 256)}, nil
}

// add queues j's first probe at due.
func (l *tcpLoop) add(j *job, due time.Time) {
	l.due.push(due.Sub(l.base), j)
}

// stop wakes the loop so it sees its context cancelled.
func (l *tcpLoop) stop() {
	one := [8]byte{1}
	unix.Write(l.evfd, one[:])
}

// run is the loop, until ctx is cancelled; it then closes every socket
// (probes cut short by shutdown say nothing about their servers, as in
// Scheduler.probe) and the epoll instance.
func (l *tcpLoop) run(ctx context.Context) {
	defer l.close()
	for ctx.Err() == nil {
		l.once(ctx)
	}
}

// once is one turn of the loop: wait until a probe ends or the next is
// due, handle what ended, time out and start what is due.
func (l *tcpLoop) once(ctx context.Context) {
	timeout := -1
	if len(l.held) > 0 {
		// At MaxConcurrent: look again when a probe may have ended.
		timeout = 1
	} else if next, any := l.next(); any {
		// epoll_wait counts in milliseconds: round up, so the loop never
		// wakes before the job is due and spins.
		d := next - time.Since(l.base)
		timeout = 0
		if d > 0 {
			timeout = int((d + time.Millisecond - 1) / time.Millisecond)
		}
	}
	n, err := unix.EpollWait(l.epfd, l.evs, timeout)
	if err != nil && err != unix.EINTR {
		// Cannot happen with a valid epoll fd and buffer; do not spin.
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < n; i++ {
		ev := &l.evs[i]
		if ev.Fd != stopData {
			l.event(ctx, ev.Fd, ev.Events)
		}
	}
	if ctx.Err() != nil {
		return
	}
	l.turn(ctx)
}

// event handles epoll's report mask on the socket in slot.
func (l *tcpLoop) event(ctx context.Context, slot int32, mask uint32) {
	sk := &l.socks[slot]
	if sk.j == nil {
		return // a reset's wakeup on a socket between probes
	}
	var err error
	if mask&(unix.EPOLLERR|unix.EPOLLHUP) != 0 || mask&unix.EPOLLOUT == 0 {
		// Failed, or an odd mask: the socket says which, as keepalived's
		// tcp_socket_state reads SO_ERROR after the write event.
		done, cerr := connected(sk.fd)
		if !done {
			return // still connecting; the edge of its end wakes us again
		}
		err = cerr
	}
	// EPOLLOUT alone: the handshake completed (tcp_poll reports no
	// EPOLLOUT in SYN-SENT), so no getsockopt is needed.
	l.finish(ctx, slot, err)
}

// turn times out the probes past their deadline and starts the due ones.
func (l *tcpLoop) turn(ctx context.Context) {
	now := time.Since(l.base)
	for len(l.q) > 0 && l.q[0].tkey <= now {
		// connect_timeout has passed. The socket has the last word: a
		// connect that completed as the deadline passed still counts.
		j := l.q[0]
		err := error(os.ErrDeadlineExceeded)
		if done, cerr := connected(l.socks[j.tslot].fd); done {
			err = cerr
		}
		l.finish(ctx, j.tslot, err)
	}
	for len(l.due) > 0 && l.due[0].key <= now {
		j := l.due.pop()
		if l.inflight >= l.s.opts.MaxConcurrent {
			l.held = append(l.held, j)
			continue
		}
		l.start(ctx, j, now)
	}
	for _, j := range l.held {
		l.due.push(j.tkey, j)
	}
	clear(l.held)
	l.held = l.held[:0]
}

// next is the earliest of the next due probe and the next deadline.
func (l *tcpLoop) next() (time.Duration, bool) {
	switch {
	case len(l.q) > 0 && len(l.due) > 0:
		return min(l.q[0].tkey, l.due[0].key), true
	case len(l.q) > 0:
		return l.q[0].tkey, true
	case len(l.due) > 0:
		return l.due[0].key, true
	}
	return 0, false
}

// start starts a probe of j, or finishes it at once when connect(2) does.
func (l *tcpLoop) start(ctx context.Context, j *job, now time.Duration) {
	if l.s.opts.Lateness != nil {
		l.s.opts.Lateness(now - j.tkey)
	}
	j.tstart = now
	if _, off := l.s.suspended.Load(j.srv.Service); off {
		l.due.push(now+max(j.c.DelayLoop, time.Second), j)
		return
	}
	slot, err := l.socket(j)
	if err != nil {
		l.done(ctx, j, err)
		return
	}
	sk := &l.socks[slot]
	sk.j = j
	j.tslot = slot
	l.inflight++
	switch err := unix.Connect(sk.fd, j.sa); err {
	case unix.EINPROGRESS, unix.EINTR:
		timeout := j.c.Timeout
		if timeout <= 0 {
			timeout = config.DefaultConnectTimeout
		}
		j.tkey = now + timeout
		l.q.push(j)
	case nil:
		l.finish(ctx, slot, nil)
	default:
		l.finish(ctx, slot, os.NewSyscallError("connect", err))
	}
}

// finish ends the probe running in slot with err, releases the socket and
// applies the result.
func (l *tcpLoop) finish(ctx context.Context, slot int32, err error) {
	sk := &l.socks[slot]
	j := sk.j
	sk.j = nil
	j.tslot = -1
	l.inflight--
	if j.tindex >= 0 {
		l.q.remove(j.tindex)
	}
	if sk.reuse && disconnect(sk.fd) == nil && len(l.pool[famIndex(sk.family)]) < tcpPoolMax {
		l.pool[famIndex(sk.family)] = append(l.pool[famIndex(sk.family)], slot)
	} else {
		l.release(slot)
	}
	l.done(ctx, j, err)
}

// done applies a probe's result and queues j's next probe.
func (l *tcpLoop) done(ctx context.Context, j *job, err error) {
	if ctx.Err() != nil {
		return
	}
	r := ok
	if err != nil {
		r = failErr(ctx, err, ReasonConnect)
	}
	now := time.Since(l.base)
	next := l.s.apply(j, r, now-j.tstart, true)
	l.due.push(now+next, j)
}

// socket returns the slot of a socket ready to connect j: an idle pooled
// one, or a new one registered with the epoll instance.
func (l *tcpLoop) socket(j *job) (int32, error) {
	t := &j.c.Target
	if j.sa == nil {
		sa, fam, err := sockaddr(t.Addr)
		if err != nil {
			return 0, err
		}
		j.sa, j.family = sa, fam
	}
	// The FIN close resetOnClose can turn off for the benchmark needs a
	// close(2), so it takes the fresh-socket path too.
	plain := !t.Bind.Addr().IsValid() && t.Bind.Port() == 0 && t.BindIf == "" && t.FWMark == 0 && resetOnClose
	if p := &l.pool[famIndex(j.family)]; plain && len(*p) > 0 {
		slot := (*p)[len(*p)-1]
		*p = (*p)[:len(*p)-1]
		return slot, nil
	}
	fd, err := unix.Socket(j.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, os.NewSyscallError("socket", err)
	}
	if !plain {
		if err := prepare(fd, j.family, t); err != nil {
			unix.Close(fd)
			return 0, err
		}
	}
	var slot int32
	if n := len(l.free); n > 0 {
		slot = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		slot = int32(len(l.socks))
		l.socks = append(l.socks, tcpSock{})
	}
	l.socks[slot] = tcpSock{fd: fd, reuse: plain, family: j.family}
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLET, Fd: slot}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.release(slot)
		return 0, os.NewSyscallError("epoll_ctl", err)
	}
	return slot, nil
}

// release closes the socket in slot (with a reset if it was connected,
// as its SO_LINGER or the pooled socket's disconnect arranged) and frees
// the slot.
func (l *tcpLoop) release(slot int32) {
	unix.Close(l.socks[slot].fd)
	l.socks[slot] = tcpSock{fd: -1}
	l.free = append(l.free, slot)
}

func (l *tcpLoop) close() {
	for i := range l.socks {
		if l.socks[i].fd >= 0 {
			unix.Close(l.socks[i].fd)
		}
	}
	l.socks = nil
	unix.Close(l.epfd)
	unix.Close(l.evfd)
}

func famIndex(family int) int {
	if family == unix.AF_INET6 {
		return 1
	}
	return 0
}

// unspec is the address connect(2) takes to disconnect a socket.
var unspec = unix.RawSockaddr{Family: unix.AF_UNSPEC}

// disconnect resets the connection on fd, if any, and leaves the socket
// unconnected and reusable (connect(2) with AF_UNSPEC: tcp_disconnect).
func disconnect(fd int) error {
	_, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&unspec)), unsafe.Sizeof(unspec))
	if errno != 0 {
		return errno
	}
	return nil
}

// dueQueue is a min-heap of the idle jobs by due time (time since the
// loop's base). Its keys sit in the array, so the sift of 10,000 entries
// reads no job (queue.Less's pointer chase was 6 % of the loop's perf
// samples); a job leaves it only when due, so it needs no index.
type dueQueue []dueEnt

type dueEnt struct {
	key time.Duration
	j   *job
}

func (q *dueQueue) push(key time.Duration, j *job) {
	j.tkey = key
	*q = append(*q, dueEnt{key, j})
	h := *q
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p].key <= h[i].key {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (q *dueQueue) pop() *job {
	h := *q
	j := h[0].j
	last := len(h) - 1
	h[0] = h[last]
	h[last] = dueEnt{}
	h = h[:last]
	*q = h
	for i, n := 0, len(h); ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h[r].key < h[c].key {
			c = r
		}
		if h[i].key <= h[c].key {
			break
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
	return j
}

// tcpQueue is a min-heap of jobs by tkey (time since the loop's base):
// typed, so a push or pop neither allocates nor converts through an
// interface, and a comparison is one integer's.
type tcpQueue []*job

func (q *tcpQueue) push(j *job) {
	j.tindex = len(*q)
	*q = append(*q, j)
	q.up(j.tindex)
}

func (q *tcpQueue) remove(i int) {
	h := *q
	last := len(h) - 1
	j := h[i]
	if i != last {
		h.swap(i, last)
	}
	h[last] = nil
	*q = h[:last]
	if i != last {
		q.down(i)
		q.up(i)
	}
	j.tindex = -1
}

func (q tcpQueue) swap(a, b int) {
	q[a], q[b] = q[b], q[a]
	q[a].tindex, q[b].tindex = a, b
}

func (q tcpQueue) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if q[p].tkey <= q[i].tkey {
			return
		}
		q.swap(i, p)
		i = p
	}
}

func (q tcpQueue) down(i int) {
	n := len(q)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if r := c + 1; r < n && q[r].tkey < q[c].tkey {
			c = r
		}
		if q[i].tkey <= q[c].tkey {
			return
		}
		q.swap(i, c)
		i = c
	}
}
