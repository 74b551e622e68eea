package router

import (
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/keepwatch/keepwatch/engine/netif"
)

// TestConfigNotWritten: a member keeps the Config it was given, which the
// agent also reads as its plan (Member.Config): sending and receiving AH
// adverts, which move the sequence counter, leave it as it was.
func TestConfigNotWritten(t *testing.T) {
	conn := &lastConn{}
	me := ahMember(t, conn)
	shared := me.cfg
	want := *shared
	me.inst.mu.Lock()
	defer me.inst.mu.Unlock()
	me.ahSeq = 6
	me.sendAdvert(100) // carries 7
	pkt := append([]byte(nil), me.out...)
	p := &netif.Packet{Src: inlineSelf, Dst: netif.GroupIPv4, TTL: 255, IPHeader: pkt[:20], AH: pkt[20:44], VRRP: pkt[44:]}
	me.ahSeq = 3 // the last one received
	me.receive(p.VRRP, ipOf(p), time.Duration(0))
	if me.ahSeq != 7 {
		t.Fatalf("sequence counter %d after an AH advert carrying 7", me.ahSeq)
	}
	if me.cfg != shared {
		t.Fatal("the member no longer points at the Config it was given")
	}
	if !reflect.DeepEqual(*shared, want) {
		t.Errorf("the shared Config changed: AHSeq %d, OldUnicastChecksum %v", shared.Receive.AHSeq, shared.Receive.OldUnicastChecksum)
	}
}

// TestMemberSize: a member fits the 512-byte size class (issue 12): one
// field more and every instance holds 576 bytes for it, or 1 KiB as with
// the Config copy it used to keep.
func TestMemberSize(t *testing.T) {
	if n := unsafe.Sizeof(member{}); n > 512 {
		t.Errorf("a member is %d bytes, over the 512-byte size class", n)
	}
}
