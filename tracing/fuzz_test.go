package tracing

import (
	"net/netip"
	"regexp"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

var attrKey = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// FuzzAttributes: any event yields a low-cardinality span name and
// lowercase dotted keys with valid UTF-8 values (OTLP's protobuf encoding
// rejects invalid UTF-8, failing the whole batch).
func FuzzAttributes(f *testing.F) {
	for _, e := range chain() {
		f.Add(uint8(e.Kind), e.Instance, e.Interface, e.Name, e.Service, e.Target, string(e.Reason), uint8(e.From), uint8(e.To), e.Addr.String(), e.OK)
	}
	f.Add(uint8(event.KindProbe), "VI\xff", "eth\xfe", "http\xc3", "x\xff", "198.51.100.1:99999", "\xff", uint8(9), uint8(200), "2001:db8::1", false)
	names := map[string]bool{}
	for k := event.Kind(0); k < 32; k++ {
		e := event.Event{Kind: k}
		n, _ := spanName(&e)
		names[n] = true
	}
	f.Fuzz(func(t *testing.T, kind uint8, inst, iface, name, service, target, reason string, from, to uint8, addr string, ok bool) {
		a, _ := netip.ParseAddr(addr)
		e := event.Event{Kind: event.Kind(kind % 32), ID: 3, Cause: 2, Instance: inst, Interface: iface, Family: vrrp.IPv6,
			Name: name, Service: service, Target: target, Reason: event.Reason(reason), From: vrrp.State(from),
			To: vrrp.State(to), Addr: a, OK: ok, Duration: time.Millisecond}
		n, _ := spanName(&e)
		if !names[n] {
			t.Errorf("span name %q depends on more than the kind", n)
		}
		for _, kv := range attributes(&e) {
			if !attrKey.MatchString(string(kv.Key)) && kv.Key != RouterIDKey {
				t.Errorf("attribute key %q is not lowercase dotted", kv.Key)
			}
			if s := kv.Value.String(); !utf8.ValidString(s) {
				t.Errorf("attribute %s = %q: invalid UTF-8", kv.Key, s)
			}
		}
	})
}
