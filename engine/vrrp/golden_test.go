package vrrp_test

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/vrrptest"
)

// capture is what the vectors README says each file holds: keepalived 2.2.7
// on node A (192.0.2.1, or its link-local address for IPv6), VRID 42,
// priority 150, advert_int 1, then one priority-0 advert on SIGTERM.
type capture struct {
	version  vrrp.Version
	family   vrrp.Family
	dst      netip.Addr
	auth     vrrp.AuthType
	pass     string
	vips     []netip.Addr
	interval uint16 // wire units
	unicast  bool
}

var captures = map[string]capture{
	"v2-ipv4-noauth.pcap": {
		version: vrrp.Version2, family: vrrp.IPv4, dst: vrrp.GroupIPv4,
		vips: addrs("192.0.2.100"), interval: 1,
	},
	"v2-ipv4-pass.pcap": {
		version: vrrp.Version2, family: vrrp.IPv4, dst: vrrp.GroupIPv4,
		auth: vrrp.AuthPass, pass: "s3cret",
		vips: addrs("192.0.2.100", "192.0.2.101"), interval: 1,
	},
	"v3-ipv4.pcap": {
		version: vrrp.Version3, family: vrrp.IPv4, dst: vrrp.GroupIPv4,
		vips: addrs("192.0.2.100", "192.0.2.101", "192.0.2.102"), interval: 100,
	},
	"v3-ipv4-unicast.pcap": {
		version: vrrp.Version3, family: vrrp.IPv4, dst: netip.MustParseAddr("192.0.2.2"),
		vips: addrs("192.0.2.100"), interval: 100, unicast: true,
	},
	"v3-ipv6.pcap": {
		version: vrrp.Version3, family: vrrp.IPv6, dst: vrrp.GroupIPv6,
		vips: addrs("2001:db8::100", "2001:db8::101"), interval: 100,
	},
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "").Replace(s))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestGoldenCaptures decodes every VRRP frame keepalived 2.2.7 sent, checks
// it against the vectors README, verifies its checksum, and re-encodes it.
func TestGoldenCaptures(t *testing.T) {
	nodeA := netip.MustParseAddr("192.0.2.1")
	for _, file := range vrrptest.Files {
		want, ok := captures[file]
		if !ok {
			t.Fatalf("no expectations for %s", file)
		}
		frames := vrrptest.Read(t, file)
		if n := len(frames); n < 4 || n > 5 {
			t.Fatalf("%s: %d VRRP frames, want 3 or 4 at priority 150 and one at 0", file, n)
		}
		for _, fr := range frames {
			t.Run(file+"/"+string(rune('0'+fr.Index)), func(t *testing.T) {
				last := fr.Index == len(frames)
				wantPrio := uint8(150)
				if last {
					wantPrio = 0
				}

				// The IP layer keepalived sent with (reference §2.1).
				var src, dst netip.Addr
				if want.family == vrrp.IPv4 {
					h := fr.IPv4
					if h.TTL != 255 || h.TOS != 0xc0 || h.Protocol != 112 || h.FragOff != 0 {
						t.Errorf("IPv4 header: TTL %d TOS %#x proto %d frag %#x, want 255 0xc0 112 0",
							h.TTL, h.TOS, h.Protocol, h.FragOff)
					}
					if int(h.TotalLen) != len(fr.Header)+len(fr.Msg) {
						t.Errorf("tot_len %d, captured %d", h.TotalLen, len(fr.Header)+len(fr.Msg))
					}
					if h.ID != uint16(fr.Index) {
						t.Errorf("IP ID %d, want %d (counts from 1)", h.ID, fr.Index)
					}
					// Our header builder makes the same bytes.
					nh := vrrp.NewIPv4Header(h.Src, h.Dst, h.ID, vrrp.TTL, len(fr.Msg))
					got, err := nh.AppendBinary(nil)
					if err != nil || !bytes.Equal(got, fr.Header) {
						t.Errorf("built IPv4 header:\n got %x (%v)\nwant %x", got, err, fr.Header)
					}
					src, dst = h.Src, h.Dst
					if src != nodeA {
						t.Errorf("src %v, want %v", src, nodeA)
					}
				} else {
					h := fr.IPv6
					if h.HopLimit != 255 || h.TrafficClass != 0xc0 || h.NextHeader != 112 {
						t.Errorf("IPv6 header: hop limit %d tclass %#x next %d, want 255 0xc0 112",
							h.HopLimit, h.TrafficClass, h.NextHeader)
					}
					if !h.Src.IsLinkLocalUnicast() {
						t.Errorf("src %v is not link-local", h.Src)
					}
					src, dst = h.Src, h.Dst
				}
				if dst != want.dst {
					t.Errorf("dst %v, want %v", dst, want.dst)
				}

				var a vrrp.Advertisement
				if err := a.UnmarshalBinary(fr.Msg); err != nil {
					t.Fatalf("UnmarshalBinary: %v", err)
				}
				wantAdv := vrrp.Advertisement{
					Version: want.version, Type: vrrp.TypeAdvertisement,
					VRID: 42, Priority: wantPrio,
					AuthType: want.auth, AuthData: vrrp.PassAuthData(want.pass),
					AdvertInt: want.interval,
					Checksum:  uint16(fr.Msg[6])<<8 | uint16(fr.Msg[7]),
					Family:    want.family, Addresses: want.vips,
				}
				if diff := cmp.Diff(wantAdv, a, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
					t.Errorf("decoded advert (-want +got):\n%s", diff)
				}
				if got := a.Interval(); got != time.Second {
					t.Errorf("Interval() = %v, want 1s", got)
				}

				// Checksum: v2 over the message; v3 with the pseudo-header
				// and the real destination, unicast peer included.
				if !vrrp.VerifyChecksum(fr.Msg, src, dst, vrrp.ChecksumPseudoHeader) {
					t.Errorf("checksum %#04x does not verify", a.Checksum)
				}
				if got := vrrp.Checksum(fr.Msg, src, dst, vrrp.ChecksumPseudoHeader); got != a.Checksum {
					t.Errorf("Checksum() = %#04x, want %#04x", got, a.Checksum)
				}
				if want.version == vrrp.Version3 && want.family == vrrp.IPv4 {
					if vrrp.VerifyChecksum(fr.Msg, src, dst, vrrp.ChecksumAsV2) {
						t.Error("v3 checksum also verifies without the pseudo-header: the test proves nothing")
					}
					if want.unicast && vrrp.VerifyChecksum(fr.Msg, src, vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader) {
						t.Error("unicast checksum verifies with the group as destination")
					}
				}

				// Re-encode: byte-identical, both as read and recomputed.
				got, err := a.MarshalBinary()
				if err != nil || !bytes.Equal(got, fr.Msg) {
					t.Errorf("MarshalBinary:\n got %x (%v)\nwant %x", got, err, fr.Msg)
				}
				a.Checksum = 0
				got, err = a.AppendWithChecksum(nil, src, dst, vrrp.ChecksumPseudoHeader)
				if err != nil || !bytes.Equal(got, fr.Msg) {
					t.Errorf("AppendWithChecksum:\n got %x (%v)\nwant %x", got, err, fr.Msg)
				}

				// And vrrptest's "what keepalived would send" agrees.
				spec := vrrptest.Spec{
					Version: want.version, VRID: 42, Priority: wantPrio, Interval: time.Second,
					AuthPass: want.pass, VIPs: want.vips, Src: src, Dst: dst, ID: uint16(fr.Index),
				}
				wantPkt := append(bytes.Clone(fr.Header), fr.Msg...)
				if want.family == vrrp.IPv6 {
					wantPkt = fr.Msg
				}
				if got := spec.Packet(t); !bytes.Equal(got, wantPkt) {
					t.Errorf("vrrptest.Spec.Packet:\n got %x\nwant %x", got, wantPkt)
				}
			})
		}
	}
}

// hexCase is a packet from reference §2.2 (keepalived 2.2.7, tcpdump).
type hexCase struct {
	name string
	spec vrrptest.Spec
	ip   string // IPv4 header; empty when not captured
	msg  string
	// other is the checksum with the other pseudo-header choice the
	// reference quotes (no pseudo-header, or the group as destination).
	other     uint16
	otherDst  netip.Addr
	otherMode vrrp.ChecksumMode
}

var hexCases = []hexCase{
	{
		name: "v2 pass 2 vips",
		spec: vrrptest.Spec{
			Version: vrrp.Version2, VRID: 51, Priority: 150, Interval: time.Second,
			AuthPass: "secret123", VIPs: addrs("192.0.2.100", "192.0.2.101"),
			Src: netip.MustParseAddr("192.0.2.10"), ID: 1,
		},
		ip:  "45 c0 00 2c 00 01 00 00 ff 70 18 84 c0 00 02 0a e0 00 00 12",
		msg: "21 33 96 02 01 01 55 80 | c0 00 02 64 c0 00 02 65 | 73 65 63 72 65 74 31 32",
	},
	{
		name: "v3 multicast 0.5s",
		spec: vrrptest.Spec{
			Version: vrrp.Version3, VRID: 52, Priority: 150, Interval: 500 * time.Millisecond,
			VIPs: addrs("192.0.2.200"), Src: netip.MustParseAddr("192.0.2.10"), ID: 1,
		},
		ip:    "45 c0 00 20 00 01 00 00 ff 70 18 90 c0 00 02 0a e0 00 00 12",
		msg:   "31 34 96 01 00 32 d3 35 c0 00 02 c8",
		other: 0x75cf, otherDst: vrrp.GroupIPv4, otherMode: vrrp.ChecksumAsV2,
	},
	{
		name: "v3 unicast",
		spec: vrrptest.Spec{
			Version: vrrp.Version3, VRID: 60, Priority: 150, Interval: time.Second,
			VIPs: addrs("192.0.2.60"), Src: netip.MustParseAddr("192.0.2.10"),
			Dst: netip.MustParseAddr("192.0.2.20"), ID: 1,
		},
		msg:   "31 3c 96 01 00 64 f1 85 c0 00 02 3c",
		other: 0xd387, otherDst: vrrp.GroupIPv4, otherMode: vrrp.ChecksumPseudoHeader,
	},
}

func TestReferenceHex(t *testing.T) {
	for _, tc := range hexCases {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.msg)
			if got := tc.spec.Message(t); !bytes.Equal(got, want) {
				t.Errorf("encoded:\n got %x\nwant %x", got, want)
			}
			if tc.ip != "" {
				wantPkt := append(unhex(t, tc.ip), want...)
				if got := tc.spec.Packet(t); !bytes.Equal(got, wantPkt) {
					t.Errorf("packet:\n got %x\nwant %x", got, wantPkt)
				}
			}
			var a vrrp.Advertisement
			if err := a.UnmarshalBinary(want); err != nil {
				t.Fatal(err)
			}
			if a.VRID != tc.spec.VRID || a.Priority != tc.spec.Priority || a.Interval() != tc.spec.Interval {
				t.Errorf("decoded vrid %d prio %d interval %v", a.VRID, a.Priority, a.Interval())
			}
			if got, err := a.MarshalBinary(); err != nil || !bytes.Equal(got, want) {
				t.Errorf("re-encoded %x (%v)", got, err)
			}
			if tc.other != 0 {
				if got := vrrp.Checksum(want, tc.spec.Src, tc.otherDst, tc.otherMode); got != tc.other {
					t.Errorf("other checksum = %#04x, want %#04x", got, tc.other)
				}
			}
		})
	}
}
