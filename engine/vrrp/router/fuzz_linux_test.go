package router

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/netiftest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/fsm"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
)

// rawAdvert is a valid advert from inlinePeer as an IPv4 raw socket
// receives it: the IP header, then the VRRP message.
func rawAdvert(tb testing.TB, v vrrp.Version, prio int, interval time.Duration) []byte {
	tb.Helper()
	a := vrrp.Advertisement{Version: v, Type: vrrp.TypeAdvertisement, VRID: 42, Priority: uint8(prio),
		Family: vrrp.IPv4, Addresses: []netip.Addr{inlineVIP.Addr()}}
	if v == vrrp.Version2 {
		a.AuthType, a.AuthData = vrrp.AuthPass, vrrp.PassAuthData("secret")
	}
	if err := a.SetInterval(interval); err != nil {
		tb.Fatal(err)
	}
	msg, err := a.AppendWithChecksum(nil, inlinePeer, netif.GroupIPv4, vrrp.ChecksumPseudoHeader)
	if err != nil {
		tb.Fatal(err)
	}
	ih := vrrp.NewIPv4Header(inlinePeer, netif.GroupIPv4, 1, 255, len(msg))
	h, err := ih.AppendBinary(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return append(h, msg...)
}

// FuzzReceivePath drives one instance through the whole receive path the
// socket's read loop runs, from a raw IPv4 packet (netif.ParseIPv4) through
// validation (receive.Validate) into the state machine and the actions it
// performs (router's receive and step), on a fake network, interleaved
// with timer, priority and fault inputs. The packet is arbitrary; an op can
// set its priority byte and repair its checksum, so mutations also reach
// past the checksum check. After every op: no panic, the state is a valid
// one, priority in range, no deadline in the past, VIPs installed exactly
// while MASTER, the snapshot agrees with the machine, and every advert sent
// decodes with our VRID and a priority the machine could send.
func FuzzReceivePath(f *testing.F) {
	for _, v := range []vrrp.Version{vrrp.Version2, vrrp.Version3} {
		for _, prio := range []int{0, 50, 100, 200, 255} {
			f.Add(uint8(v), uint8(100), []byte{0, 200, 10, 1, 0, 100, 0, 0, 10, 1, 0, 0}, rawAdvert(f, v, prio, time.Second))
		}
	}
	f.Add(uint8(3), uint8(150), []byte{1, 0, 0, 0x80, 255, 1, 2, 10, 0, 3, 0, 0, 4, 0, 0, 1, 0, 0}, rawAdvert(f, 3, 100, time.Second))
	f.Add(uint8(0x13), uint8(255), []byte{0x80, 0, 0, 1, 0, 0}, rawAdvert(f, 3, 0, 10*time.Millisecond))
	f.Add(uint8(2), uint8(1), []byte{0}, []byte{0x45, 0, 0, 20})
	f.Fuzz(func(t *testing.T, flags, prio uint8, ops, pkt []byte) {
		if len(ops) > 3*64 {
			ops = ops[:3*64]
		}
		version := vrrp.Version3
		if flags&1 == 0 {
			version = vrrp.Version2
		}
		interval := time.Second
		fc := fsm.DefaultConfig()
		fc.Name, fc.VRID, fc.Interface, fc.Family = "VI_1", 42, "eth0", vrrp.IPv4
		fc.Version, fc.Priority, fc.AdvertInterval = int(version), max(int(prio), 1), interval
		fc.Addr = inlineSelf
		fc.NoPreempt = flags&2 != 0
		fc.PreemptDelay = time.Duration(flags>>5) * 100 * time.Millisecond
		if flags&16 != 0 {
			fc.InitialState = vrrp.StateMaster
		}
		rc := receive.Instance{Family: vrrp.IPv4, Version: version, VRID: 42, Interval: interval,
			VIPs: []netip.Addr{inlineVIP.Addr()}, CheckUnicastSrc: flags&4 != 0}
		if version == vrrp.Version2 {
			rc.AuthType, rc.AuthData = vrrp.AuthPass, vrrp.PassAuthData("secret")
		}
		if flags&8 != 0 {
			rc.Peers = []receive.Peer{{Addr: inlinePeer, MinTTL: 1, MaxTTL: 255}}
		}
		nw := &netiftest.Network{}
		cfg := Config{FSM: fc, Receive: rc, Src: inlineSelf, Dsts: []netip.Addr{netif.GroupIPv4}, TTL: 255,
			AuthType: rc.AuthType, AuthData: rc.AuthData,
			VIPs: []netif.Address{{Prefix: inlineVIP, Dev: "eth0"}}}
		inst, err := New(cfg, Deps{Conn: nw, Addrs: nw})
		if err != nil {
			t.Fatal(err)
		}
		me := inst.ms[0]
		// Driven synchronously, as Run and HandleVRRP would, on a clock
		// the test advances.
		inst.mu.Lock()
		defer inst.mu.Unlock()
		inst.origin = time.Now()
		var now time.Duration
		inst.step(now, 0, fsm.Input{Kind: fsm.InputStart})
		inst.running = true
		check := func(what string) {
			t.Helper()
			st := me.m.State()
			if st != vrrp.StateInit && st != vrrp.StateBackup && st != vrrp.StateMaster && st != vrrp.StateFault {
				t.Fatalf("%s: state %v", what, st)
			}
			if p := me.m.Priority(); p < 1 || p > 255 {
				t.Fatalf("%s: priority %d", what, p)
			}
			if at, ok := me.m.NextDeadline(); ok && at < now {
				t.Fatalf("%s: deadline %v before now %v", what, at, now)
			}
			if me.held != (st == vrrp.StateMaster) {
				t.Fatalf("%s: %v holding VIPs %v", what, st, me.held)
			}
			if has := len(nw.Addresses()) == 1; has != me.held {
				t.Fatalf("%s: VIP installed %v, held %v", what, has, me.held)
			}
			if s := inst.Snapshot(); s.State != st || s.Priority != me.m.Priority() || s.VIPsHeld != me.held {
				t.Fatalf("%s: snapshot %+v, machine %v priority %d", what, s, st, me.m.Priority())
			}
		}
		check("start")
		var p netif.Packet
		buf := make([]byte, len(pkt))
		// advance moves the clock to, firing each timer on the way at its
		// deadline, as Run's timer does; a step that leaves its deadline
		// where it was would spin Run, so it is a failure too.
		advance := func(to time.Duration) {
			t.Helper()
			for n := 0; ; n++ {
				at, ok := inst.nextDeadline()
				if !ok || at > to {
					break
				}
				if n > 10000 {
					t.Fatalf("the timer does not advance: deadline %v", at)
				}
				now = max(now, at)
				inst.step(now, -1, fsm.Input{Kind: fsm.InputTick})
				check("timer")
			}
			now = to
		}
		for op := ops; len(op) >= 3; op = op[3:] {
			advance(now + time.Duration(op[2])*10*time.Millisecond)
			switch op[0] & 7 {
			case 0, 1, 2: // the packet arrives
				copy(buf, pkt)
				if !netif.ParseIPv4(&p, buf) {
					break
				}
				if op[0]&0x80 != 0 && len(p.VRRP) >= 8 {
					// Set the priority and repair the checksum: the
					// fuzzer then explores what lies past it.
					p.VRRP[3] = op[1]
					p.VRRP[6], p.VRRP[7] = 0, 0
					vrrp.PutChecksum(p.VRRP, p.Src, p.Dst, vrrp.ChecksumPseudoHeader)
				}
				me.receive(p.VRRP, ipOf(&p), now)
			case 3: // time passes to the next deadline
				if at, ok := inst.nextDeadline(); ok {
					advance(max(at, now))
				}
			case 4:
				inst.step(now, 0, fsm.Input{Kind: fsm.InputPriority, Priority: int(op[1])})
			case 5:
				inst.step(now, 0, fsm.Input{Kind: fsm.InputFault})
			case 6:
				inst.step(now, 0, fsm.Input{Kind: fsm.InputFaultCleared})
			default:
				inst.step(now, -1, fsm.Input{Kind: fsm.InputTick})
			}
			check("op")
		}
		inst.running = false
		inst.step(now, 0, fsm.Input{Kind: fsm.InputShutdown})
		if me.held {
			me.removeVIPs()
		}
		if len(nw.Addresses()) != 0 {
			t.Fatalf("VIPs left after shutdown: %v", nw.Addresses())
		}
		for _, s := range nw.Sent() {
			var h vrrp.IPv4Header
			if err := h.Parse(s.Packet); err != nil {
				t.Fatalf("sent %x: %v", s.Packet, err)
			}
			var a vrrp.Advertisement
			if err := a.Decode(s.Packet[20:], vrrp.IPv4); err != nil {
				t.Fatalf("sent %x: %v", s.Packet, err)
			}
			if a.VRID != 42 || a.Version != version || !bytes.Equal(s.Packet[12:16], inlineSelf.AsSlice()) {
				t.Fatalf("sent %+v from %v", a, s.Packet[12:16])
			}
			if !vrrp.VerifyChecksum(s.Packet[20:], inlineSelf, netif.GroupIPv4, vrrp.ChecksumPseudoHeader) {
				t.Fatalf("sent %x with a bad checksum", s.Packet)
			}
		}
	})
}
