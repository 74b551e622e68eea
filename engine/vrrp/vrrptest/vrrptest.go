package vrrptest

import (
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Spec is a VRRP instance's sending side, as in keepalived.conf.
type Spec struct {
	Version  vrrp.Version
	VRID     uint8
	Priority uint8
	Interval time.Duration
	// AuthPass is v2's auth_pass; empty means auth_type none.
	AuthPass string
	VIPs     []netip.Addr
	// Src and Dst are the IP addresses; a zero Dst means the group.
	Src, Dst netip.Addr
	Checksum vrrp.ChecksumMode
	// ID is the IPv4 identification (keepalived counts from 1).
	ID uint16
	// TTL is 255 when zero.
	TTL uint8
}

func (s *Spec) family() vrrp.Family {
	if s.Src.Is4() {
		return vrrp.IPv4
	}
	return vrrp.IPv6
}

func (s *Spec) dst() netip.Addr {
	switch {
	case s.Dst.IsValid():
		return s.Dst
	case s.family() == vrrp.IPv4:
		return vrrp.GroupIPv4
	}
	return vrrp.GroupIPv6
}

// Advert returns the advert s describes, checksum not computed.
func (s *Spec) Advert(tb testing.TB) *vrrp.Advertisement {
	tb.Helper()
	a := &vrrp.Advertisement{
		Version:   s.Version,
		Type:      vrrp.TypeAdvertisement,
		VRID:      s.VRID,
		Priority:  s.Priority,
		Family:    s.family(),
		Addresses: s.VIPs,
	}
	if s.AuthPass != "" {
		a.AuthType = vrrp.AuthPass
		a.AuthData = vrrp.PassAuthData(s.AuthPass)
	}
	if err := a.SetInterval(s.Interval); err != nil {
		tb.Fatalf("vrrptest: %v", err)
	}
	return a
}

// Message returns the VRRP message s sends, checksum included.
func (s *Spec) Message(tb testing.TB) []byte {
	tb.Helper()
	b, err := s.Advert(tb).AppendWithChecksum(nil, s.Src, s.dst(), s.Checksum)
	if err != nil {
		tb.Fatalf("vrrptest: encoding advert: %v", err)
	}
	return b
}

// Packet returns what s puts on the wire above the link layer: for IPv4 the
// IP header keepalived builds (TOS 0xc0, TTL, ID, no DF) and the message;
// for IPv6 the message alone (the kernel builds that header).
func (s *Spec) Packet(tb testing.TB) []byte {
	tb.Helper()
	msg := s.Message(tb)
	if s.family() == vrrp.IPv6 {
		return msg
	}
	ttl := s.TTL
	if ttl == 0 {
		ttl = vrrp.TTL
	}
	h := vrrp.NewIPv4Header(s.Src, s.dst(), s.ID, ttl, len(msg))
	b, err := h.AppendBinary(make([]byte, 0, vrrp.IPv4HeaderLen+len(msg)))
	if err != nil {
		tb.Fatalf("vrrptest: IPv4 header: %v", err)
	}
	return append(b, msg...)
}

// Frame is one VRRP packet from a capture.
type Frame struct {
	File   string // base name
	Index  int    // 1-based position among the file's VRRP packets
	Family vrrp.Family
	// Header is the IP header as captured: IPv4 (with options) or the fixed
	// IPv6 header. Msg is the VRRP message, trimmed to the IP length.
	Header []byte
	Msg    []byte
	// AH is the 24-byte IPsec AH header between the IPv4 header and Msg
	// (IP protocol 51, keepalived's auth_type AH); nil otherwise.
	AH   []byte
	IPv4 vrrp.IPv4Header // when Family is IPv4
	IPv6 vrrp.IPv6Header // when Family is IPv6
}

// Dir returns the directory of keepalived's captures: $KEEPWATCH_VECTORS when
// set, or this package's testdata, which deploy/vectors/capture.sh (`make
// vectors`) fills from the Debian keepalived running in network namespaces.
func Dir(tb testing.TB) string {
	tb.Helper()
	if d := os.Getenv("KEEPWATCH_VECTORS"); d != "" {
		return d
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("vrrptest: cannot locate the package's source")
	}
	d := filepath.Join(filepath.Dir(file), "testdata")
	if _, err := os.Stat(filepath.Join(d, Files[0])); err != nil {
		tb.Fatalf("vrrptest: captures missing (make vectors): %v", err)
	}
	return d
}

// Files are the capture files, in the order of the vectors README.
var Files = []string{
	"v2-ipv4-noauth.pcap",
	"v2-ipv4-pass.pcap",
	"v3-ipv4.pcap",
	"v3-ipv4-unicast.pcap",
	"v3-ipv6.pcap",
}

// AHFiles are the captures of auth_type AH adverts (IP protocol 51), kept
// apart from Files: their messages are authenticated by the AH header
// around them, so what checks Files' messages alone does not apply.
var AHFiles = []string{"v2-ipv4-ah.pcap"}

// Read returns the VRRP packets (IP protocol 112, or 51 carrying 112) of one
// of Files or AHFiles.
func Read(tb testing.TB, file string) []Frame {
	tb.Helper()
	return ReadFile(tb, filepath.Join(Dir(tb), file))
}

// ReadFile returns the VRRP packets (IP protocol 112, or 51 carrying 112) of
// a pcap file, such as one a test captured; it fails the test if there is
// none.
func ReadFile(tb testing.TB, path string) []Frame {
	tb.Helper()
	file := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		tb.Fatalf("vrrptest: %v", err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		tb.Fatalf("vrrptest: %s: %v", path, err)
	}
	var frames []Frame
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break // io.EOF, or a truncated tail: what was read is what we have
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		fr := Frame{File: file, Index: len(frames) + 1}
		switch {
		case p.Layer(layers.LayerTypeIPv4) != nil:
			ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			fr.Family, fr.Header, fr.Msg = vrrp.IPv4, ip.Contents, ip.Payload
			if ip.Protocol == vrrp.ProtocolAH && len(fr.Msg) >= vrrp.AHLen && fr.Msg[0] == vrrp.ProtocolVRRP {
				fr.AH, fr.Msg = fr.Msg[:vrrp.AHLen], fr.Msg[vrrp.AHLen:]
			} else if ip.Protocol != vrrp.ProtocolVRRP {
				continue
			}
			if err := fr.IPv4.Parse(fr.Header); err != nil {
				tb.Fatalf("vrrptest: %s frame %d: %v", file, fr.Index, err)
			}
		case p.Layer(layers.LayerTypeIPv6) != nil:
			ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			if ip.NextHeader != vrrp.ProtocolVRRP {
				continue
			}
			fr.Family, fr.Header, fr.Msg = vrrp.IPv6, ip.Contents, ip.Payload
			if err := fr.IPv6.Parse(fr.Header); err != nil {
				tb.Fatalf("vrrptest: %s frame %d: %v", file, fr.Index, err)
			}
		default:
			continue
		}
		frames = append(frames, fr)
	}
	if len(frames) == 0 {
		tb.Fatalf("vrrptest: %s holds no VRRP packet", path)
	}
	return frames
}

// ReadAll returns the VRRP packets of every capture, file by file.
func ReadAll(tb testing.TB) []Frame {
	tb.Helper()
	var all []Frame
	for _, f := range Files {
		all = append(all, Read(tb, f)...)
	}
	return all
}
