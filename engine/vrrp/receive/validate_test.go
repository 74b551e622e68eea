package receive_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
	"github.com/keepwatch/keepwatch/engine/vrrp/vrrptest"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

var (
	nodeA   = netip.MustParseAddr("192.0.2.1")
	nodeB   = netip.MustParseAddr("192.0.2.2")
	nodeC   = netip.MustParseAddr("192.0.2.3")
	nodeA6  = netip.MustParseAddr("fe80::a")
	vips4   = addrs("192.0.2.100", "192.0.2.101")
	vips6   = addrs("2001:db8::100", "2001:db8::101")
	fixedID = uint16(1)
)

// instanceFor returns the instance that expects what the vectors README
// describes for file.
func instanceFor(file string) receive.Instance {
	in := receive.Instance{VRID: 42, Interval: time.Second, Family: vrrp.IPv4, Version: vrrp.Version3}
	switch file {
	case "v2-ipv4-noauth.pcap":
		in.Version, in.VIPs = vrrp.Version2, addrs("192.0.2.100")
	case "v2-ipv4-pass.pcap":
		in.Version, in.VIPs = vrrp.Version2, vips4
		in.AuthType, in.AuthData = vrrp.AuthPass, vrrp.PassAuthData("s3cret")
	case "v3-ipv4.pcap":
		in.VIPs = addrs("192.0.2.100", "192.0.2.101", "192.0.2.102")
	case "v3-ipv4-unicast.pcap":
		in.VIPs = addrs("192.0.2.100")
		in.Peers, in.CheckUnicastSrc = []receive.Peer{{Addr: nodeA}}, true
	case "v3-ipv6.pcap":
		in.Family, in.VIPs = vrrp.IPv6, vips6
	}
	return in
}

func frameIP(fr *vrrptest.Frame) receive.IP {
	if fr.Family == vrrp.IPv4 {
		return receive.FromIPv4(&fr.IPv4)
	}
	return receive.FromIPv6(&fr.IPv6)
}

// TestCapturesAccepted: every advert keepalived 2.2.7 sent passes the checks
// of an instance configured as the README says, the last one as a
// resignation (priority 0).
func TestCapturesAccepted(t *testing.T) {
	for _, file := range vrrptest.Files {
		frames := vrrptest.Read(t, file)
		in := instanceFor(file)
		for i := range frames {
			fr := &frames[i]
			var adv vrrp.Advertisement
			r := receive.Validate(fr.Msg, frameIP(fr), &in, &adv)
			want := receive.Result{PriorityZero: i == len(frames)-1}
			if r != want {
				t.Errorf("%s frame %d: %+v, want %+v", file, fr.Index, r, want)
			}
			if adv.VRID != 42 || len(adv.Addresses) != len(in.VIPs) {
				t.Errorf("%s frame %d: decoded %+v", file, fr.Index, adv)
			}
		}
	}
}

// pkt is a VRRP message and what the IP layer says about it.
type pkt struct {
	msg []byte
	ip  receive.IP
}

// build returns the packet keepalived would send for s, as received.
func build(t testing.TB, s vrrptest.Spec) pkt {
	t.Helper()
	b := s.Packet(t)
	if s.Src.Is6() {
		dst := s.Dst
		if !dst.IsValid() {
			dst = vrrp.GroupIPv6
		}
		return pkt{msg: b, ip: receive.IP{Src: s.Src, Dst: dst, TTL: 255}}
	}
	var h vrrp.IPv4Header
	if err := h.Parse(b); err != nil {
		t.Fatal(err)
	}
	return pkt{msg: b[h.HeaderLen:], ip: receive.FromIPv4(&h)}
}

func v2pass() vrrptest.Spec {
	return vrrptest.Spec{Version: vrrp.Version2, VRID: 42, Priority: 150, Interval: time.Second,
		AuthPass: "s3cret", VIPs: vips4, Src: nodeA, ID: fixedID}
}

func v3mcast() vrrptest.Spec {
	return vrrptest.Spec{Version: vrrp.Version3, VRID: 42, Priority: 150, Interval: time.Second,
		VIPs: vips4, Src: nodeA, ID: fixedID}
}

func v3ucast() vrrptest.Spec {
	s := v3mcast()
	s.Dst = nodeB
	return s
}

func v3ipv6() vrrptest.Spec {
	return vrrptest.Spec{Version: vrrp.Version3, VRID: 42, Priority: 100, Interval: 100 * time.Millisecond,
		VIPs: vips6, Src: nodeA6}
}

func inV2() receive.Instance {
	return receive.Instance{Family: vrrp.IPv4, Version: vrrp.Version2, VRID: 42, AuthType: vrrp.AuthPass,
		AuthData: vrrp.PassAuthData("s3cret"), Interval: time.Second, VIPs: vips4}
}

func inV3() receive.Instance {
	return receive.Instance{Family: vrrp.IPv4, Version: vrrp.Version3, VRID: 42, Interval: time.Second, VIPs: vips4}
}

func inV3Unicast() receive.Instance {
	in := inV3()
	in.Peers = []receive.Peer{{Addr: nodeA}}
	return in
}

func inV6() receive.Instance {
	return receive.Instance{Family: vrrp.IPv6, Version: vrrp.Version3, VRID: 42,
		Interval: 100 * time.Millisecond, VIPs: vips6}
}

func withHMAC(p *pkt) {
	p.msg = append(p.msg, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0,
		0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
	if p.ip.TotalLen != 0 {
		p.ip.TotalLen += vrrp.HMACLen
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		spec   vrrptest.Spec
		mutate func(*pkt)
		in     func() receive.Instance
		inMod  func(*receive.Instance)
		want   receive.Result
	}{
		{name: "v2 pass ok", spec: v2pass(), in: inV2},
		{name: "v3 multicast ok", spec: v3mcast(), in: inV3},
		{name: "v3 unicast ok", spec: v3ucast(), in: inV3Unicast},
		{name: "v3 ipv6 ok", spec: v3ipv6(), in: inV6},
		{name: "priority zero", spec: func() vrrptest.Spec { s := v3mcast(); s.Priority = 0; return s }(),
			in: inV3, want: receive.Result{PriorityZero: true}},

		// Guard and row 2: length.
		{name: "vrid differs", spec: v3mcast(), in: inV3, inMod: func(in *receive.Instance) { in.VRID = 7 },
			want: receive.Result{Drop: event.DropVRIDUnknown}},
		{name: "shorter than a header", spec: v3mcast(), in: inV3, mutate: func(p *pkt) { p.msg = p.msg[:7] },
			want: receive.Result{Drop: event.DropLength}},
		{name: "count byte too high", spec: v3mcast(), in: inV3, mutate: func(p *pkt) { p.msg[3] = 3 },
			want: receive.Result{Drop: event.DropLength}},
		{name: "count byte too low", spec: v3mcast(), in: inV3, mutate: func(p *pkt) { p.msg[3] = 1 },
			want: receive.Result{Drop: event.DropLength}},
		{name: "v2 without auth data", spec: v2pass(), in: inV2,
			mutate: func(p *pkt) { p.msg = p.msg[:len(p.msg)-8]; p.ip.TotalLen -= 8 },
			want:   receive.Result{Drop: event.DropLength}},
		{name: "ipv6 count byte wrong", spec: v3ipv6(), in: inV6, mutate: func(p *pkt) { p.msg[3] = 3 },
			want: receive.Result{Drop: event.DropLength}},
		{name: "hmac trailer tolerated", spec: v3mcast(), in: inV3, mutate: withHMAC,
			want: receive.Result{HMAC: true}},
		{name: "hmac trailer on v2 pass tolerated", spec: v2pass(), in: inV2, mutate: withHMAC,
			want: receive.Result{HMAC: true}},
		{name: "hmac trailer rejected like keepalived 2.3", spec: v3mcast(), in: inV3, mutate: withHMAC,
			inMod: func(in *receive.Instance) { in.RejectHMAC = true },
			want:  receive.Result{Drop: event.DropLength}},
		{name: "ethernet padding tolerated", spec: func() vrrptest.Spec { s := v3ucast(); s.VIPs = vips4[:1]; return s }(),
			in: inV3Unicast, inMod: func(in *receive.Instance) { in.VIPs = vips4[:1] },
			mutate: func(p *pkt) { p.msg = append(p.msg, make([]byte, 14)...) }},
		{name: "excess beyond any padding", spec: v2pass(), in: inV2, // 44 + 4 > 46
			mutate: func(p *pkt) { p.msg = append(p.msg, make([]byte, 4)...) },
			want:   receive.Result{Drop: event.DropLength}},
		{name: "trailing bytes counted in tot_len are not padding", spec: v3mcast(), in: inV3,
			mutate: func(p *pkt) { p.msg = append(p.msg, 0, 0); p.ip.TotalLen += 2 },
			want:   receive.Result{Drop: event.DropLength}},

		// Row 3: TTL, multicast only.
		{name: "multicast ttl 254", spec: v3mcast(), in: inV3, mutate: func(p *pkt) { p.ip.TTL = 254 },
			want: receive.Result{Drop: event.DropTTL}},
		{name: "ipv6 hop limit 1", spec: v3ipv6(), in: inV6, mutate: func(p *pkt) { p.ip.TTL = 1 },
			want: receive.Result{Drop: event.DropTTL}},
		{name: "multicast ttl unknown", spec: v3mcast(), in: inV3, mutate: func(p *pkt) { p.ip.TTL = receive.TTLUnknown }},
		{name: "unicast ttl not checked", spec: v3ucast(), in: inV3Unicast, mutate: func(p *pkt) { p.ip.TTL = 3 }},
		{name: "ttl before checksum", spec: v3mcast(), in: inV3,
			mutate: func(p *pkt) { p.ip.TTL = 1; p.msg[7] ^= 0xff },
			want:   receive.Result{Drop: event.DropTTL}},

		// Row 4: version.
		{name: "v2 advert to a v3 instance", spec: v2pass(), in: inV3,
			want: receive.Result{Drop: event.DropVersion}},
		{name: "v3 advert to a v2 instance", spec: v3mcast(), in: inV2,
			want: receive.Result{Drop: event.DropVersion}},
		{name: "version before auth", spec: v2pass(), in: inV3,
			mutate: func(p *pkt) { p.msg[len(p.msg)-1] = 'x' },
			want:   receive.Result{Drop: event.DropVersion}},

		// Rows 6-10: v2 authentication and interval.
		{name: "auth type 3 invalid", spec: v2pass(), in: inV2, mutate: func(p *pkt) { p.msg[4] = 3 },
			want: receive.Result{Drop: event.DropAuthType, AuthType: 3}},
		{name: "auth none to a pass instance", spec: func() vrrptest.Spec { s := v2pass(); s.AuthPass = ""; return s }(),
			in: inV2, want: receive.Result{Drop: event.DropAuthType}},
		{name: "pass to a none instance", spec: v2pass(), in: inV2,
			inMod: func(in *receive.Instance) { in.AuthType, in.AuthData = vrrp.AuthNone, [8]byte{} },
			want:  receive.Result{Drop: event.DropAuthType, AuthType: vrrp.AuthPass}},
		{name: "wrong password", spec: func() vrrptest.Spec { s := v2pass(); s.AuthPass = "s3creT"; return s }(),
			in: inV2, want: receive.Result{Drop: event.DropAuth}},
		{name: "password compared on all 8 bytes", spec: func() vrrptest.Spec { s := v2pass(); s.AuthPass = "s3cret\x00x"; return s }(),
			in: inV2, want: receive.Result{Drop: event.DropAuth}},
		{name: "ah instance, no AH header", spec: v2pass(), in: inV2,
			mutate: func(p *pkt) { p.msg[4] = byte(vrrp.AuthAH) },
			inMod:  func(in *receive.Instance) { in.AuthType = vrrp.AuthAH },
			want:   receive.Result{Drop: event.DropAuthType}},
		{name: "v2 interval mismatch dropped", spec: v2pass(), in: inV2,
			inMod: func(in *receive.Instance) { in.Interval = 2 * time.Second },
			want:  receive.Result{Drop: event.DropInterval}},
		{name: "auth before interval", spec: func() vrrptest.Spec { s := v2pass(); s.AuthPass = "nope"; s.Interval = 3 * time.Second; return s }(),
			in: inV2, want: receive.Result{Drop: event.DropAuth}},

		// Row 11: type.
		{name: "type 2", spec: v3mcast(), in: inV3, mutate: func(p *pkt) { p.msg[0] = 0x32 },
			want: receive.Result{Drop: event.DropType}},
		{name: "interval before type", spec: v2pass(), in: inV2, mutate: func(p *pkt) { p.msg[0] = 0x22 },
			inMod: func(in *receive.Instance) { in.Interval = 5 * time.Second },
			want:  receive.Result{Drop: event.DropInterval}},
		{name: "type before checksum", spec: v3mcast(), in: inV3,
			mutate: func(p *pkt) { p.msg[0] = 0x30; p.msg[6] ^= 1 },
			want:   receive.Result{Drop: event.DropType}},

		// Row 12: tot_len.
		{name: "tot_len mismatch", spec: v3mcast(), in: inV3, mutate: func(p *pkt) { p.ip.TotalLen++ },
			want: receive.Result{Drop: event.DropLength}},

		// Row 13: v3 interval only noted.
		{name: "v3 interval mismatch accepted", spec: v3mcast(), in: inV3,
			inMod: func(in *receive.Instance) { in.Interval = 2 * time.Second },
			want:  receive.Result{IntervalMismatch: true}},
		{name: "v3 interval compared in centiseconds", spec: v3mcast(), in: inV3,
			inMod: func(in *receive.Instance) { in.Interval = time.Second + 4*time.Millisecond }},

		// Row 14: checksum.
		{name: "v2 bad checksum", spec: v2pass(), in: inV2, mutate: func(p *pkt) { p.msg[7] ^= 1 },
			want: receive.Result{Drop: event.DropChecksum}},
		{name: "v3 bad checksum", spec: v3mcast(), in: inV3, mutate: func(p *pkt) { p.msg[6] ^= 0x80 },
			want: receive.Result{Drop: event.DropChecksum}},
		{name: "ipv6 bad checksum", spec: v3ipv6(), in: inV6, mutate: func(p *pkt) { p.msg[7] ^= 1 },
			want: receive.Result{Drop: event.DropChecksum}},
		{name: "v3 checksum without pseudo-header, default mode", in: inV3,
			spec: func() vrrptest.Spec { s := v3mcast(); s.Checksum = vrrp.ChecksumAsV2; return s }(),
			want: receive.Result{Drop: event.DropChecksum}},
		{name: "v3_checksum_as_v2 takes as_v2", in: inV3,
			spec:  func() vrrptest.Spec { s := v3mcast(); s.Checksum = vrrp.ChecksumAsV2; return s }(),
			inMod: func(in *receive.Instance) { in.Checksum = vrrp.ChecksumAsV2 }},
		{name: "v3_checksum_as_v2 takes the pseudo-header too", spec: v3mcast(), in: inV3,
			inMod: func(in *receive.Instance) { in.Checksum = vrrp.ChecksumAsV2 }},
		{name: "v3_checksum_as_v2 still drops garbage", spec: v3mcast(), in: inV3,
			mutate: func(p *pkt) { p.msg[6] ^= 0x80 },
			inMod:  func(in *receive.Instance) { in.Checksum = vrrp.ChecksumAsV2 },
			want:   receive.Result{Drop: event.DropChecksum}},
		{name: "old unicast checksum auto-detected", in: inV3Unicast,
			spec: v3ucast(), mutate: func(p *pkt) {
				vrrp.PutChecksum(p.msg, p.ip.Src, vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader)
			},
			want: receive.Result{OldUnicastChecksum: true}},
		{name: "old unicast checksum never", in: inV3Unicast,
			spec: v3ucast(), mutate: func(p *pkt) {
				vrrp.PutChecksum(p.msg, p.ip.Src, vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader)
			},
			inMod: func(in *receive.Instance) { in.OldUnicastChecksum = receive.UnicastChecksumNever },
			want:  receive.Result{Drop: event.DropChecksum}},
		{name: "old unicast checksum configured", in: inV3Unicast,
			spec: v3ucast(), mutate: func(p *pkt) {
				vrrp.PutChecksum(p.msg, p.ip.Src, vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader)
			},
			inMod: func(in *receive.Instance) { in.OldUnicastChecksum = receive.UnicastChecksumOld }},
		{name: "old unicast mode rejects the new checksum", spec: v3ucast(), in: inV3Unicast,
			inMod: func(in *receive.Instance) { in.OldUnicastChecksum = receive.UnicastChecksumOld },
			want:  receive.Result{Drop: event.DropChecksum}},
		{name: "multicast never falls back to the group", spec: v3mcast(), in: inV3,
			mutate: func(p *pkt) { vrrp.PutChecksum(p.msg, p.ip.Src, nodeC, vrrp.ChecksumPseudoHeader) },
			want:   receive.Result{Drop: event.DropChecksum}},
		{name: "checksum ignores the hmac trailer", spec: v2pass(), in: inV2,
			mutate: func(p *pkt) { withHMAC(p); p.msg[len(p.msg)-1] ^= 0xff },
			want:   receive.Result{HMAC: true}},

		// Row 15: multicast / unicast destination.
		{name: "unicast advert to a multicast instance", spec: v3ucast(), in: inV3,
			want: receive.Result{Drop: event.DropDestination}},
		{name: "multicast advert to a unicast instance", spec: v3mcast(), in: inV3Unicast,
			want: receive.Result{Drop: event.DropDestination}},
		{name: "ipv6 unicast advert to a multicast instance", in: inV6,
			spec: func() vrrptest.Spec { s := v3ipv6(); s.Dst = netip.MustParseAddr("fe80::b"); return s }(),
			want: receive.Result{Drop: event.DropDestination}},

		// Row 17: address list, accepted (2.3.3+).
		{name: "one vip fewer", spec: v3mcast(), in: inV3,
			inMod: func(in *receive.Instance) { in.VIPs = vips4[:1] },
			want:  receive.Result{AddressMismatch: true}},
		{name: "different vip", spec: v3mcast(), in: inV3,
			inMod: func(in *receive.Instance) { in.VIPs = addrs("192.0.2.100", "192.0.2.199") },
			want:  receive.Result{AddressMismatch: true}},
		{name: "vip order does not matter", spec: v3mcast(), in: inV3,
			inMod: func(in *receive.Instance) { in.VIPs = addrs("192.0.2.101", "192.0.2.100") }},
		{name: "ipv6 vip list differs", spec: v3ipv6(), in: inV6,
			inMod: func(in *receive.Instance) { in.VIPs = vips6[1:] },
			want:  receive.Result{AddressMismatch: true}},
		{name: "address mismatch and priority zero together", in: inV3,
			spec:  func() vrrptest.Spec { s := v3mcast(); s.Priority = 0; return s }(),
			inMod: func(in *receive.Instance) { in.VIPs = nil },
			want:  receive.Result{AddressMismatch: true, PriorityZero: true}},

		// Row 18: unicast source.
		{name: "unicast source not a peer", spec: v3ucast(), in: inV3Unicast,
			inMod: func(in *receive.Instance) { in.Peers = []receive.Peer{{Addr: nodeC}}; in.CheckUnicastSrc = true },
			want:  receive.Result{Drop: event.DropUnicastSrc}},
		{name: "unicast source not checked without check_unicast_src", spec: v3ucast(), in: inV3Unicast,
			inMod: func(in *receive.Instance) { in.Peers = []receive.Peer{{Addr: nodeC}} }},
		{name: "peer ttl in range", spec: v3ucast(), in: inV3Unicast, mutate: func(p *pkt) { p.ip.TTL = 250 },
			inMod: func(in *receive.Instance) {
				in.Peers = []receive.Peer{{Addr: nodeC}, {Addr: nodeA, MinTTL: 250, MaxTTL: 255}}
				in.CheckUnicastSrc = true
			}},
		{name: "peer ttl out of range", spec: v3ucast(), in: inV3Unicast, mutate: func(p *pkt) { p.ip.TTL = 64 },
			inMod: func(in *receive.Instance) {
				in.Peers = []receive.Peer{{Addr: nodeA, MinTTL: 250, MaxTTL: 255}}
				in.CheckUnicastSrc = true
			},
			want: receive.Result{Drop: event.DropTTL}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := build(t, tc.spec)
			if tc.mutate != nil {
				tc.mutate(&p)
			}
			in := tc.in()
			if tc.inMod != nil {
				tc.inMod(&in)
			}
			var adv vrrp.Advertisement
			got := receive.Validate(p.msg, p.ip, &in, &adv)
			if got != tc.want {
				t.Errorf("Validate = %+v, want %+v", got, tc.want)
			}
			if got.Accepted() != (tc.want.Drop == "") {
				t.Errorf("Accepted() = %v", got.Accepted())
			}
			if got.Accepted() && (adv.VRID != tc.spec.VRID || adv.Priority != tc.spec.Priority) {
				t.Errorf("accepted advert decoded as %+v", adv)
			}
		})
	}
}

// TestValidateTruncations: every prefix of a valid packet is dropped for its
// length and never panics.
func TestValidateTruncations(t *testing.T) {
	for _, s := range []vrrptest.Spec{v2pass(), v3mcast(), v3ipv6()} {
		p := build(t, s)
		in := inV2()
		switch {
		case s.Src.Is6():
			in = inV6()
		case s.Version == vrrp.Version3:
			in = inV3()
		}
		for n := range len(p.msg) {
			var adv vrrp.Advertisement
			if r := receive.Validate(p.msg[:n], p.ip, &in, &adv); r.Drop != event.DropLength {
				t.Errorf("%v %d of %d bytes: %+v", s.Version, n, len(p.msg), r)
			}
		}
	}
}

func ExampleValidate() {
	// A keepalived v3 advert for VRID 42 from 192.0.2.1 to the group.
	msg := []byte{0x31, 0x2a, 0x96, 0x03, 0x00, 0x64, 0x4e, 0xa4,
		192, 0, 2, 100, 192, 0, 2, 101, 192, 0, 2, 102}
	ip := receive.IP{Src: nodeA, Dst: vrrp.GroupIPv4, TTL: 255, HeaderLen: 20, TotalLen: 20 + len(msg)}
	in := receive.Instance{Family: vrrp.IPv4, Version: vrrp.Version3, VRID: 42,
		Interval: time.Second, VIPs: addrs("192.0.2.100", "192.0.2.101")}
	var adv vrrp.Advertisement
	r := receive.Validate(msg, ip, &in, &adv)
	fmt.Println(r.Accepted(), r.AddressMismatch, adv.Priority, adv.Interval())
	// Output: true true 150 1s
}

// FuzzValidate: untrusted bytes never panic, and what is accepted
// re-encodes to the bytes received.
func FuzzValidate(f *testing.F) {
	for _, fr := range vrrptest.ReadAll(f) {
		f.Add(fr.Msg, uint8(255), fr.Family == vrrp.IPv6, fr.Msg[0]>>4 == 3, fr.IPv4.Dst.IsMulticast() || fr.Family == vrrp.IPv6)
	}
	for _, s := range []vrrptest.Spec{v2pass(), v3mcast(), v3ipv6()} {
		p := build(f, s)
		f.Add(p.msg, uint8(255), s.Src.Is6(), s.Version == vrrp.Version3, true)
		withHMAC(&p)
		f.Add(p.msg, uint8(255), s.Src.Is6(), s.Version == vrrp.Version3, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, ttl uint8, v6, v3, multicast bool) {
		in := inV2()
		ip := receive.IP{Src: nodeA, Dst: vrrp.GroupIPv4, TTL: int(ttl), HeaderLen: 20, TotalLen: 20 + len(b)}
		if v3 {
			in = inV3()
		}
		if v6 {
			in = inV6()
			ip = receive.IP{Src: netip.MustParseAddr("fe80::c0cb:53ff:fe0f:c6ed"), Dst: vrrp.GroupIPv6, TTL: int(ttl)}
		}
		if !multicast {
			in.Peers = []receive.Peer{{Addr: ip.Src, MinTTL: 1, MaxTTL: 200}}
			in.CheckUnicastSrc = true
			if v6 {
				ip.Dst = netip.MustParseAddr("fe80::b")
			} else {
				ip.Dst = nodeB
			}
		}
		var adv vrrp.Advertisement
		r := receive.Validate(b, ip, &in, &adv)
		if !r.Accepted() {
			return
		}
		out, err := adv.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("accepted %x but re-encodes to %x (%v)", b, out, err)
		}
	})
}
