package vrrp_test

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

var addrCmp = cmp.Comparer(func(x, y netip.Addr) bool { return x == y })

// codecCases decode and re-encode byte-identically. Every one is also a fuzz seed.
var codecCases = []struct {
	name string
	hex  string
	want vrrp.Advertisement
}{
	{
		name: "v2 no auth",
		hex:  "212a9601 0001866e c0000264 00000000 00000000",
		want: vrrp.Advertisement{Version: 2, Type: 1, VRID: 42, Priority: 150, AdvertInt: 1,
			Checksum: 0x866e, Family: vrrp.IPv4, Addresses: addrs("192.0.2.100")},
	},
	{
		name: "v2 unknown type and auth type are kept for the receive checks",
		hex:  "2f2a9600 07ff0000 00000000 00000000",
		want: vrrp.Advertisement{Version: 2, Type: 15, VRID: 42, Priority: 150, AuthType: 7,
			AdvertInt: 255, Family: vrrp.IPv4},
	},
	{
		name: "v3 reserved bits kept",
		hex:  "312a9601 f0640000 c0000264",
		want: vrrp.Advertisement{Version: 3, Type: 1, VRID: 42, Priority: 150, Reserved: 0xf,
			AdvertInt: 100, Family: vrrp.IPv4, Addresses: addrs("192.0.2.100")},
	},
	{
		name: "v3 max interval",
		hex:  "312aff00 0fff0000",
		want: vrrp.Advertisement{Version: 3, Type: 1, VRID: 42, Priority: 255, AdvertInt: 4095,
			Family: vrrp.IPv4},
	},
	{
		name: "v3 ipv6",
		hex: "312a9602 00640305 20010db8000000000000000000000100" +
			"20010db8000000000000000000000101",
		want: vrrp.Advertisement{Version: 3, Type: 1, VRID: 42, Priority: 150, AdvertInt: 100,
			Checksum: 0x0305, Family: vrrp.IPv6, Addresses: addrs("2001:db8::100", "2001:db8::101")},
	},
	{
		name: "v2 over ipv6 has no auth data (keepalived, non-standard)",
		hex:  "212a9601 0001abcd 20010db8000000000000000000000100",
		want: vrrp.Advertisement{Version: 2, Type: 1, VRID: 42, Priority: 150, AdvertInt: 1,
			Checksum: 0xabcd, Family: vrrp.IPv6, Addresses: addrs("2001:db8::100")},
	},
	{
		name: "v3 auth_hmac trailer",
		hex: "312a9601 00641234 c0000264" +
			"01070000 6553f100 00010002 000102030405060708090a0b0c0d0e0f",
		want: vrrp.Advertisement{Version: 3, Type: 1, VRID: 42, Priority: 150, AdvertInt: 100,
			Checksum: 0x1234, Family: vrrp.IPv4, Addresses: addrs("192.0.2.100"),
			HasHMAC: true, HMAC: vrrp.HMACTrailer{ExtType: 1, KeyID: 7, Sec: 0x6553f100, Subsec: 1,
				Counter: 2, MAC: [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}}},
	},
	{
		name: "v2 pass with auth_hmac trailer",
		hex: "212a9601 01011234 c0000264 73336372 65740000" +
			"01000000 00000001 00000000 ffffffffffffffffffffffffffffffff",
		want: vrrp.Advertisement{Version: 2, Type: 1, VRID: 42, Priority: 150, AuthType: vrrp.AuthPass,
			AuthData: vrrp.PassAuthData("s3cret"), AdvertInt: 1, Checksum: 0x1234,
			Family: vrrp.IPv4, Addresses: addrs("192.0.2.100"),
			HasHMAC: true, HMAC: vrrp.HMACTrailer{ExtType: 1, Sec: 1,
				MAC: [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}},
	},
}

func TestCodecCases(t *testing.T) {
	for _, tc := range codecCases {
		t.Run(tc.name, func(t *testing.T) {
			b := unhex(t, tc.hex)
			var a vrrp.Advertisement
			if err := a.UnmarshalBinary(b); err != nil {
				t.Fatalf("UnmarshalBinary: %v", err)
			}
			if diff := cmp.Diff(tc.want, a, addrCmp); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
			got, err := tc.want.MarshalBinary()
			if err != nil || !bytes.Equal(got, b) {
				t.Errorf("MarshalBinary:\n got %x (%v)\nwant %x", got, err, b)
			}
			if a.Len() != len(b) {
				t.Errorf("Len() = %d, want %d", a.Len(), len(b))
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		fam  vrrp.Family // 0: UnmarshalBinary
		want error
	}{
		{"empty", "", 0, io.ErrUnexpectedEOF},
		{"short header", "312a9601 0064", 0, io.ErrUnexpectedEOF},
		{"version 1", "112a9601 00640000 c0000264", 0, vrrp.ErrVersion},
		{"version 4", "412a9601 00640000 c0000264", vrrp.IPv4, vrrp.ErrVersion},
		{"count says 2, one address", "312a9602 00640000 c0000264", vrrp.IPv4, io.ErrUnexpectedEOF},
		{"count says 2, one address, inferred", "312a9602 00640000 c0000264", 0, io.ErrUnexpectedEOF},
		{"count 255, no addresses", "312a96ff 00640000", 0, io.ErrUnexpectedEOF},
		{"v2 missing auth data", "212a9601 0001866e c0000264", vrrp.IPv4, io.ErrUnexpectedEOF},
		{"trailing byte", "312a9601 00640000 c0000264 00", vrrp.IPv4, vrrp.ErrLength},
		{"trailer one byte short", "312a9601 00640000 c0000264" + "00000000000000000000000000000000000000000000000000000000"[:54], vrrp.IPv4, vrrp.ErrLength},
		{"fits neither family", "312a9601 00640000 c0000264 c0000265", 0, vrrp.ErrLength},
		{"ipv4 message as ipv6", "312a9601 00640000 c0000264", vrrp.IPv6, io.ErrUnexpectedEOF},
		{"bad decode family", "312a9601 00640000 c0000264", 5, vrrp.ErrFamily},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a vrrp.Advertisement
			var err error
			if tc.fam == 0 {
				err = a.UnmarshalBinary(unhex(t, tc.hex))
			} else {
				err = a.Decode(unhex(t, tc.hex), tc.fam)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	v4 := addrs("192.0.2.100")
	many := make([]netip.Addr, 256)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
	}
	tests := []struct {
		name string
		a    vrrp.Advertisement
		want error
	}{
		{"version 0", vrrp.Advertisement{Addresses: v4}, vrrp.ErrVersion},
		{"type 16", vrrp.Advertisement{Version: 3, Type: 16}, vrrp.ErrRange},
		{"v2 interval 256", vrrp.Advertisement{Version: 2, AdvertInt: 256}, vrrp.ErrRange},
		{"v3 interval 4096", vrrp.Advertisement{Version: 3, AdvertInt: 4096}, vrrp.ErrRange},
		{"v3 reserved 16", vrrp.Advertisement{Version: 3, Reserved: 16}, vrrp.ErrRange},
		{"256 addresses", vrrp.Advertisement{Version: 3, Addresses: many}, vrrp.ErrRange},
		{"mixed families", vrrp.Advertisement{Version: 3, Addresses: addrs("192.0.2.1", "2001:db8::1")}, vrrp.ErrFamily},
		{"ipv6 in ipv4 advert", vrrp.Advertisement{Version: 3, Family: vrrp.IPv4, Addresses: addrs("2001:db8::1")}, vrrp.ErrFamily},
		{"zone", vrrp.Advertisement{Version: 3, Addresses: addrs("fe80::1%eth0")}, vrrp.ErrFamily},
		{"invalid address", vrrp.Advertisement{Version: 3, Addresses: []netip.Addr{{}}}, vrrp.ErrFamily},
		{"family 5", vrrp.Advertisement{Version: 3, Family: 5}, vrrp.ErrFamily},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.a.AppendBinary([]byte{0xaa})
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if !bytes.Equal(b, []byte{0xaa}) {
				t.Errorf("AppendBinary changed b on error: %x", b)
			}
		})
	}
}

func TestInterval(t *testing.T) {
	tests := []struct {
		v       vrrp.Version
		d       time.Duration
		wire    uint16
		back    time.Duration
		wantErr bool
	}{
		{2, time.Second, 1, time.Second, false},
		{2, 1400 * time.Millisecond, 1, time.Second, false},
		{2, 1500 * time.Millisecond, 2, 2 * time.Second, false},
		{2, 255 * time.Second, 255, 255 * time.Second, false},
		{2, 256 * time.Second, 0, 0, true},
		{3, time.Second, 100, time.Second, false},
		{3, 500 * time.Millisecond, 50, 500 * time.Millisecond, false},
		{3, 10 * time.Millisecond, 1, 10 * time.Millisecond, false},
		{3, 14 * time.Millisecond, 1, 10 * time.Millisecond, false},
		{3, 15 * time.Millisecond, 2, 20 * time.Millisecond, false},
		{3, 40950 * time.Millisecond, 4095, 40950 * time.Millisecond, false},
		{3, 41 * time.Second, 0, 0, true},
		{3, -time.Second, 0, 0, true},
	}
	for _, tc := range tests {
		a := vrrp.Advertisement{Version: tc.v}
		err := a.SetInterval(tc.d)
		if (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, vrrp.ErrRange)) {
			t.Errorf("v%d SetInterval(%v) err = %v, want error %v", tc.v, tc.d, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if a.AdvertInt != tc.wire || a.Interval() != tc.back {
			t.Errorf("v%d SetInterval(%v): wire %d, Interval() %v; want %d, %v",
				tc.v, tc.d, a.AdvertInt, a.Interval(), tc.wire, tc.back)
		}
	}
}

func TestPassAuthData(t *testing.T) {
	if got, want := vrrp.PassAuthData("secret123"), [8]byte{'s', 'e', 'c', 'r', 'e', 't', '1', '2'}; got != want {
		t.Errorf("truncation: %q", got)
	}
	if got, want := vrrp.PassAuthData("s3cret"), [8]byte{'s', '3', 'c', 'r', 'e', 't'}; got != want {
		t.Errorf("padding: %q", got)
	}
}

func TestDecodeReusesAddresses(t *testing.T) {
	a := vrrp.Advertisement{Addresses: make([]netip.Addr, 0, 4)}
	first := unhex(t, "312a9603 00640000 c0000264 c0000265 c0000266")
	if err := a.UnmarshalBinary(first); err != nil {
		t.Fatal(err)
	}
	// A v2 decode after a v3 one with an HMAC trailer leaves nothing behind.
	withHMAC := unhex(t, codecCases[6].hex)
	if err := a.UnmarshalBinary(withHMAC); err != nil || !a.HasHMAC {
		t.Fatal(err, a.HasHMAC)
	}
	if err := a.UnmarshalBinary(unhex(t, codecCases[0].hex)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(codecCases[0].want, a, addrCmp); diff != "" {
		t.Errorf("reused decode (-want +got):\n%s", diff)
	}
}

func TestPeekHeader(t *testing.T) {
	v, id, err := vrrp.PeekHeader(unhex(t, "312a9601 00640000"))
	if err != nil || v != vrrp.Version3 || id != 42 {
		t.Errorf("PeekHeader = %d, %d, %v", v, id, err)
	}
	if _, _, err := vrrp.PeekHeader([]byte{0x31}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short: %v", err)
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{vrrp.TypeAdvertisement.String(), "advertisement"},
		{vrrp.Type(2).String(), "type(2)"},
		{vrrp.AuthNone.String(), "none"},
		{vrrp.AuthPass.String(), "pass"},
		{vrrp.AuthAH.String(), "ah"},
		{vrrp.AuthType(9).String(), "auth(9)"},
		{vrrp.ChecksumPseudoHeader.String(), "pseudo_header"},
		{vrrp.ChecksumAsV2.String(), "as_v2"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
