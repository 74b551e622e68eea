package ipvs

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FuzzDump feeds arbitrary netlink datagrams to the dump parser: it must
// never panic, whatever the kernel (or a corrupted buffer) sends.
func FuzzDump(f *testing.F) {
	// A well-formed reply: one service message, then DONE.
	s := Service{Key: AddrKey(netip.MustParseAddr("192.0.2.10"), 80, TCP), Scheduler: RoundRobin, Timeout: time.Minute}
	body := append([]byte{cmdGetService, ipvsGenlVersion, 0, 0}, appendServiceID(nil, &s)...)
	msg := binary.NativeEndian.AppendUint32(nil, uint32(unix.NLMSG_HDRLEN+len(body)))
	msg = binary.NativeEndian.AppendUint16(msg, 0x20)
	msg = binary.NativeEndian.AppendUint16(msg, unix.NLM_F_MULTI)
	msg = binary.NativeEndian.AppendUint32(msg, 7)
	msg = binary.NativeEndian.AppendUint32(msg, 0)
	msg = append(msg, body...)
	done := binary.NativeEndian.AppendUint32(nil, unix.NLMSG_HDRLEN+4)
	done = binary.NativeEndian.AppendUint16(done, unix.NLMSG_DONE)
	done = binary.NativeEndian.AppendUint16(done, unix.NLM_F_MULTI)
	done = binary.NativeEndian.AppendUint32(done, 7)
	done = binary.NativeEndian.AppendUint32(done, 0)
	done = append(done, 0, 0, 0, 0)
	f.Add(append(msg, done...))
	f.Add(msg[:20])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = walkDump(b, 7, func(v []byte) error {
			_, _ = parseService(v)
			_, _ = parseDestination(v)
			return nil
		})
	})
}

func TestParseServiceRoundTrip(t *testing.T) {
	for _, s := range table() {
		// What the kernel echoes for a request is what appendRequest sent.
		b := appendRequest(nil, 0x20, 1, &Op{Kind: AddService, Service: s}, true)
		var got Service
		walkAttrs(b[unix.NLMSG_HDRLEN+4:], func(typ uint16, v []byte) {
			if typ == attrService {
				var err error
				if got, err = parseService(v); err != nil {
					t.Fatal(err)
				}
			}
		})
		if got.Key != s.Key || !sameService(&got, &s) || got.PersistenceEngine != s.PersistenceEngine {
			t.Errorf("round trip of %s: got %+v", s.Key, got)
		}
		for _, d := range s.Destinations {
			b := appendRequest(nil, 0x20, 1, &Op{Kind: AddDestination, Service: s, Dest: d}, true)
			walkAttrs(b[unix.NLMSG_HDRLEN+4:], func(typ uint16, v []byte) {
				if typ != attrDest {
					return
				}
				got, err := parseDestination(v)
				if err != nil || got.AddrPort() != d.AddrPort() || !sameDestination(&got, &d) {
					t.Errorf("round trip of %s: got %+v, %v", d.AddrPort(), got, err)
				}
			})
		}
	}
}
