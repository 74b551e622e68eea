//go:build !race

package router

import (
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif"
)

// TestAHZeroAllocs: sending an AH advert and checking a received one (here
// our own, refused as a replay after the first) allocate nothing.
func TestAHZeroAllocs(t *testing.T) {
	conn := &lastConn{}
	me := ahMember(t, conn)
	me.inst.mu.Lock()
	defer me.inst.mu.Unlock()
	if n := testing.AllocsPerRun(100, func() { me.sendAdvert(100) }); n != 0 {
		t.Errorf("send: %v allocs/op, want 0", n)
	}
	pkt := append([]byte(nil), me.out...)
	p := &netif.Packet{Src: inlineSelf, Dst: netif.GroupIPv4, TTL: 255, IPHeader: pkt[:20], AH: pkt[20:44], VRRP: pkt[44:]}
	me.ahSeq = 0
	if n := testing.AllocsPerRun(100, func() { me.receive(p.VRRP, ipOf(p), time.Duration(0)) }); n != 0 {
		t.Errorf("receive: %v allocs/op, want 0", n)
	}
}
