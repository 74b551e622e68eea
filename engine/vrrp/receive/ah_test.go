package receive_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
	"github.com/keepwatch/keepwatch/engine/vrrp/vrrptest"
)

func inAH() receive.Instance {
	return receive.Instance{VRID: 42, Interval: time.Second, Family: vrrp.IPv4, Version: vrrp.Version2,
		VIPs: vips4, AuthType: vrrp.AuthAH, AuthData: vrrp.PassAuthData("s3cret")}
}

func ahIP(fr *vrrptest.Frame) receive.IP {
	ip := receive.FromIPv4(&fr.IPv4)
	ip.AH, ip.Header = fr.AH, fr.Header
	return ip
}

// reseal rebuilds a captured AH advert with edit applied to a copy of its
// header, AH and message, and a fresh ICV, as a sender with the right key
// would.
func reseal(t *testing.T, fr *vrrptest.Frame, edit func(hdr, ah, msg []byte)) (receive.IP, []byte) {
	t.Helper()
	pkt := append(append(bytes.Clone(fr.Header), fr.AH...), fr.Msg...)
	hl := len(fr.Header)
	edit(pkt[:hl], pkt[hl:hl+vrrp.AHLen], pkt[hl+vrrp.AHLen:])
	msg := pkt[hl+vrrp.AHLen:]
	vrrp.PutChecksum(msg, fr.IPv4.Src, fr.IPv4.Dst, vrrp.ChecksumAsV2)
	if err := vrrp.SealAH(vrrp.PassAuthData("s3cret"), pkt, hl, false); err != nil {
		t.Fatal(err)
	}
	ip := ahIP(fr)
	ip.Header, ip.AH = pkt[:hl], pkt[hl:hl+vrrp.AHLen]
	return ip, msg
}

// TestAHCapture: keepalived 2.2.7's AH adverts pass, in order, each moving
// the sequence counter on; each replayed one is auth_failure.
func TestAHCapture(t *testing.T) {
	frames := vrrptest.Read(t, "v2-ipv4-ah.pcap")
	in := inAH()
	var adv vrrp.Advertisement
	for i := range frames {
		fr := &frames[i]
		r := receive.Validate(fr.Msg, ahIP(fr), &in, &adv)
		want := receive.Result{PriorityZero: i == len(frames)-1, AHSeq: uint32(fr.Index)}
		if r != want {
			t.Fatalf("frame %d: %+v, want %+v", fr.Index, r, want)
		}
		in.AHSeq = r.AHSeq
		if r := receive.Validate(fr.Msg, ahIP(fr), &in, &adv); r.Drop != event.DropAuth || r.AHSeq != 0 {
			t.Errorf("frame %d replayed: %+v, want auth drop", fr.Index, r)
		}
	}
}

func TestAHDrops(t *testing.T) {
	frames := vrrptest.Read(t, "v2-ipv4-ah.pcap")
	fr := &frames[0]
	pass := vrrptest.Read(t, "v2-ipv4-pass.pcap")[0]
	ok := func(hdr, ah, msg []byte) {}
	for _, tc := range []struct {
		name string
		in   func(*receive.Instance)
		ip   func() (receive.IP, []byte)
		want receive.Result
	}{
		{"resealed as is", nil, func() (receive.IP, []byte) { return reseal(t, fr, ok) },
			receive.Result{AHSeq: 1}},
		{"wrong key", func(in *receive.Instance) { in.AuthData = vrrp.PassAuthData("s3cres") },
			func() (receive.IP, []byte) { return ahIP(fr), fr.Msg }, receive.Result{Drop: event.DropAuth}},
		{"sequence not above the counter", func(in *receive.Instance) { in.AHSeq = 1 },
			func() (receive.IP, []byte) { return ahIP(fr), fr.Msg }, receive.Result{Drop: event.DropAuth}},
		{"TTL zeroed for a unicast instance", func(in *receive.Instance) {
			in.Peers = []receive.Peer{{Addr: nodeA}}
		}, func() (receive.IP, []byte) { return ahIP(fr), fr.Msg }, receive.Result{Drop: event.DropAuth}},
		{"SPI is not the source", nil, func() (receive.IP, []byte) {
			return reseal(t, fr, func(_, ah, _ []byte) { ah[7] = 9 })
		}, receive.Result{Drop: event.DropAuth}},
		{"AH for another protocol", nil, func() (receive.IP, []byte) {
			return reseal(t, fr, func(_, ah, _ []byte) { ah[0] = 6 })
		}, receive.Result{Drop: event.DropType}},
		{"truncated AH", nil, func() (receive.IP, []byte) {
			ip := ahIP(fr)
			ip.AH = ip.AH[:10]
			return ip, fr.Msg
		}, receive.Result{Drop: event.DropLength}},
		{"invalid auth type 7", nil, func() (receive.IP, []byte) {
			return reseal(t, fr, func(_, _, msg []byte) { msg[4] = 7 })
		}, receive.Result{Drop: event.DropAuthType, AuthType: 7}},
		{"AH around an auth type none message", nil, func() (receive.IP, []byte) {
			return reseal(t, fr, func(_, _, msg []byte) { msg[4] = 0 })
		}, receive.Result{Drop: event.DropAuthType, AuthType: vrrp.AuthNone}},
		{"no AH header for an AH instance", nil, func() (receive.IP, []byte) {
			return receive.FromIPv4(&pass.IPv4), pass.Msg
		}, receive.Result{Drop: event.DropAuthType}},
		{"AH header for a PASS instance", func(in *receive.Instance) {
			in.AuthType = vrrp.AuthPass
		}, func() (receive.IP, []byte) { return ahIP(fr), fr.Msg }, receive.Result{Drop: event.DropAuthType}},
		// The counter moves on even when a later check drops the advert,
		// as keepalived's does.
		{"interval mismatch after a good ICV", func(in *receive.Instance) { in.Interval = 2 * time.Second },
			func() (receive.IP, []byte) { return ahIP(fr), fr.Msg }, receive.Result{Drop: event.DropInterval, AHSeq: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := inAH()
			if tc.in != nil {
				tc.in(&in)
			}
			ip, msg := tc.ip()
			var adv vrrp.Advertisement
			if r := receive.Validate(msg, ip, &in, &adv); r != tc.want {
				t.Errorf("%+v, want %+v", r, tc.want)
			}
		})
	}
}

// FuzzValidateAH: any IPv4 header, AH header and message reach an AH
// instance's checks without a panic, and what is accepted carries a
// sequence number above the counter.
func FuzzValidateAH(f *testing.F) {
	for _, name := range vrrptest.AHFiles {
		for _, fr := range vrrptest.Read(f, name) {
			f.Add(fr.Header, fr.AH, fr.Msg, false)
		}
	}
	f.Add(make([]byte, 20), make([]byte, 10), []byte{0x21}, true)
	f.Fuzz(func(t *testing.T, hdr, ah, msg []byte, unicast bool) {
		var h vrrp.IPv4Header
		if h.Parse(hdr) != nil {
			return
		}
		hdr = hdr[:h.HeaderLen]
		in := inAH()
		if unicast {
			in.Peers = []receive.Peer{{Addr: h.Src}}
		}
		in.AHSeq = 1
		ip := receive.FromIPv4(&h)
		ip.AH, ip.Header = ah, hdr
		var adv vrrp.Advertisement
		r := receive.Validate(msg, ip, &in, &adv)
		if !r.Accepted() {
			return
		}
		if r.AHSeq <= in.AHSeq {
			t.Fatalf("accepted with sequence %d, counter %d", r.AHSeq, in.AHSeq)
		}
	})
}
