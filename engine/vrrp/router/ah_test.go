package router

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/fsm"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
)

// lastConn keeps the last packet sent, in a buffer it reuses.
type lastConn struct {
	pkts [][]byte
	keep bool
}

func (c *lastConn) WriteIPv4(pkt []byte) error {
	if c.keep {
		c.pkts = append(c.pkts, bytes.Clone(pkt))
	}
	return nil
}
func (c *lastConn) WriteIPv6([]byte, netip.Addr, netip.Addr, int) error { return nil }
func (c *lastConn) Handle(uint8, netif.Handler)                         {}

func ahMember(t *testing.T, conn Conn, peers ...netip.Addr) *member {
	t.Helper()
	fc := fsm.DefaultConfig()
	fc.Name, fc.VRID, fc.Interface, fc.Family = "VI_1", 42, "eth0", vrrp.IPv4
	fc.Version, fc.Priority, fc.AdvertInterval = 2, 100, time.Second
	fc.Addr = inlineSelf
	key := vrrp.PassAuthData("s3cret")
	cfg := Config{
		FSM: fc,
		Receive: receive.Instance{Family: vrrp.IPv4, Version: vrrp.Version2, VRID: 42, Interval: time.Second,
			VIPs: []netip.Addr{inlineVIP.Addr()}, AuthType: vrrp.AuthAH, AuthData: key},
		Src: inlineSelf, Dsts: []netip.Addr{netif.GroupIPv4}, TTL: 255,
		AuthType: vrrp.AuthAH, AuthData: key,
		VIPs: []netif.Address{{Prefix: inlineVIP, Dev: "eth0"}},
	}
	if len(peers) > 0 {
		cfg.Dsts = peers
		for _, p := range peers {
			cfg.Receive.Peers = append(cfg.Receive.Peers, receive.Peer{Addr: p})
		}
	}
	inst, err := New(cfg, Deps{Conn: conn, Addrs: nil, Sink: event.SinkFunc(func(event.Event) {})})
	if err != nil {
		t.Fatal(err)
	}
	return inst.ms[0]
}

// TestSendAH: adverts leave behind an AH header that verifies with the
// password (TTL zeroed in the ICV for a unicast instance, as keepalived
// does), one sequence number per advert for all unicast copies, counting on
// from what was received.
func TestSendAH(t *testing.T) {
	peers := []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("192.0.2.8")}
	conn := &lastConn{keep: true}
	me := ahMember(t, conn, peers...)
	me.ahSeq = 41 // as if the last advert received carried 41
	me.sendAdvert(100)
	me.sendAdvert(100)
	if len(conn.pkts) != 4 {
		t.Fatalf("%d packets, want 2 adverts × 2 peers", len(conn.pkts))
	}
	key := vrrp.PassAuthData("s3cret")
	for k, pkt := range conn.pkts {
		if pkt[9] != vrrp.ProtocolAH {
			t.Fatalf("packet %d: protocol %d", k, pkt[9])
		}
		ah, msg := pkt[20:20+vrrp.AHLen], pkt[20+vrrp.AHLen:]
		if !vrrp.VerifyAH(key, pkt[:20], ah, msg, true) || vrrp.VerifyAH(key, pkt[:20], ah, msg, false) {
			t.Errorf("packet %d: ICV is not the unicast one", k)
		}
		if seq, want := binary.BigEndian.Uint32(ah[8:12]), uint32(42+k/2); seq != want {
			t.Errorf("packet %d: sequence %d, want %d", k, seq, want)
		}
		if dst := netip.AddrFrom4([4]byte(pkt[16:20])); dst != peers[k%2] {
			t.Errorf("packet %d to %v", k, dst)
		}
		if int(binary.BigEndian.Uint16(pkt[2:4])) != len(pkt) {
			t.Errorf("packet %d: tot_len %d for %d bytes", k, binary.BigEndian.Uint16(pkt[2:4]), len(pkt))
		}
	}
}
