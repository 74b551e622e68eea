package router

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Scheduler keeps the deadlines of the instances that share one VRRP socket
// behind one timer. Give the same Scheduler (Deps.Sched) to every instance
// on a socket; an instance without one gets its own.
//
// Why: with a time.Timer per instance, a BACKUP re-armed its timer on every
// advert it heard (time.Timer.Reset, 5000 a second for 250 instances at
// 0.05 s) and every MASTER advert was a timer wake-up and a goroutine
// switch of its own, then one send system call. Here a deadline is a plain
// number: a BACKUP's refresh only moves it later, which never touches the
// timer (the timer fires at the earliest deadline it was set for, finds it
// moved, and sleeps until the new earliest: a handful of wake-ups a second
// instead of thousands of re-arms). When it fires, the adverts of every
// MASTER due within a short window (coalesce) are stepped right here and
// sent with one sendmmsg(2) (netif.Batch). Anything else that is due (a
// BACKUP's takeover, a sync group in transition, FAULT) goes to the
// instance's worker (Instance.signal), as its own timer did before.
type Scheduler struct {
	epoch time.Time

	mu      sync.Mutex
	insts   []*Instance
	timer   *time.Timer
	armedAt time.Duration // what timer is set for (since epoch); never if stopped

	// runMu serialises fire (time.AfterFunc may start one while another
	// still runs) and guards what follows.
	runMu sync.Mutex
	due   []*Instance
	conn  Conn // the socket batch sends on
	nb    *netif.Batch
	sent  []sentAdvert
	// flushes and flushed count the batches sent and their adverts, for
	// this package's tests (how much one wake-up coalesced).
	flushes, flushed int
}

// sentAdvert is one advert in the batch: its KindAdvertSent event, emitted
// once the kernel took the packet, and who sent it, for the log otherwise.
type sentAdvert struct {
	me  *member
	dst netip.Addr
	ev  event.Event
}

// never is a deadline that is not set.
const never = time.Duration(math.MaxInt64)

// NewScheduler returns a Scheduler with no instances.
func NewScheduler() *Scheduler {
	s := &Scheduler{epoch: time.Now(), armedAt: never}
	s.timer = time.AfterFunc(time.Hour, s.fire)
	s.timer.Stop()
	return s
}

// coalesce is how early a MASTER's advert may leave so that one wake-up
// sends every advert due within it: a tenth of the interval, at most 5 ms.
// It is safe: an advert is never late for it, so the gap between two
// adverts is at most interval + coalesce (1.1 × interval), and a BACKUP
// takes over only after Master_Down_Interval, 3 × Master_Adver_Interval +
// Skew_Time (RFC 9568 §6.1, §6.4.2; RFC 3768 §6.1). The machine's grid is
// kept (fsm periodic): the next advert is due one interval after this
// one's due time, not after when it left.
func coalesce(interval time.Duration) time.Duration {
	return min(interval/10, 5*time.Millisecond)
}

func (s *Scheduler) now() time.Duration { return time.Since(s.epoch) }

// add registers i; its deadline is not set.
func (s *Scheduler) add(i *Instance) {
	s.mu.Lock()
	i.wakeAt, i.window = never, 0
	i.slot = len(s.insts)
	s.insts = append(s.insts, i)
	s.mu.Unlock()
	// Not under mu: the lock order is runMu, an instance's mu, then mu.
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.nb == nil {
		if c, ok := i.ms[0].conn.(interface{ NewBatch() *netif.Batch }); ok {
			s.conn, s.nb = i.ms[0].conn, c.NewBatch()
		}
	}
}

// remove forgets i.
func (s *Scheduler) remove(i *Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := len(s.insts) - 1
	s.insts[i.slot] = s.insts[last]
	s.insts[i.slot].slot = i.slot
	s.insts[last] = nil
	s.insts = s.insts[:last]
	i.slot = -1
}

// set makes at (instance i's clock) i's wake-up; never stops it. window > 0
// lets the wake-up come that much early (a MASTER's advert, coalesce).
// Called with i.mu held. Moving a deadline later leaves the timer alone.
func (s *Scheduler) set(i *Instance, at, window time.Duration) {
	if at != never {
		at += i.offset
	}
	s.mu.Lock()
	i.wakeAt, i.window = at, window
	if at < s.armedAt {
		s.armedAt = at
		s.timer.Reset(max(at-s.now(), 0))
	}
	s.mu.Unlock()
}

// fire runs on the timer: it takes every instance due (a MASTER within its
// window), re-arms for the earliest remaining, and then runs them.
func (s *Scheduler) fire() {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	s.mu.Lock()
	now := s.now()
	next := never
	for _, i := range s.insts {
		if i.wakeAt == never {
			continue
		}
		if i.wakeAt <= now+i.window {
			s.due = append(s.due, i)
			i.wakeAt = never
			continue
		}
		next = min(next, i.wakeAt)
	}
	s.armedAt = next
	if next != never {
		s.timer.Reset(max(next-now, 0))
	}
	s.mu.Unlock()
	for k, i := range s.due {
		if !i.tickInline(s) {
			i.signal(wakeTick)
		}
		s.due[k] = nil
	}
	s.due = s.due[:0]
	s.flush()
}

// batch queues an advert if the member sends on the batch's socket; false
// to send it directly. runMu held (the member's instance is stepping in
// fire).
func (s *Scheduler) batch(me *member, dst netip.Addr, pkt []byte, src netip.Addr, hop int, ev *event.Event) (bool, error) {
	if s.nb == nil || me.conn != s.conn {
		return false, nil
	}
	me.stamp(ev)
	var err error
	if me.cfg.FSM.Family == vrrp.IPv4 {
		err = s.nb.AddIPv4(pkt)
	} else {
		err = s.nb.AddIPv6(pkt, src, dst, hop)
	}
	if err != nil {
		return true, err
	}
	s.sent = append(s.sent, sentAdvert{me: me, dst: dst, ev: *ev})
	return true, nil
}

// flush sends the batch and reports each advert as sendAdvert does.
func (s *Scheduler) flush() {
	if s.nb == nil || s.nb.Len() == 0 {
		return
	}
	n, _ := s.nb.Flush()
	s.flushes++
	s.flushed += n
	for k := range s.sent {
		a := &s.sent[k]
		if err := s.nb.Err(k); err != nil {
			a.me.log.Warn("sending advert", "dst", a.dst, "err", err)
		} else {
			a.me.inst.deps.Sink.Emit(a.ev)
		}
		*a = sentAdvert{}
	}
	s.sent = s.sent[:0]
}
