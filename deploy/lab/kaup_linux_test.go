package lab

import (
	"net/netip"
	"slices"
	"testing"
)

// A keepalived node is up only once each vrrp_instance of its rendered
// config has logged a state: the names read from the bundled template's
// output are the instances the lab knows, and a log naming only some of
// them (or the parent's start lines alone) is not up.
func TestKeepalivedUpWaitsForEveryInstance(t *testing.T) {
	tmpl, err := ParseTemplate(DefaultTemplate, "")
	if err != nil {
		t.Fatal(err)
	}
	v4 := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	v6 := []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")}
	for _, p := range []Params{{Family: 6, Unicast: true}, {Version: 2, Pass: "secret12", Family: 4}, {Instances: 3}, {}} {
		p = p.withDefaults()
		in := instances(p, 2, v4, v6)
		b, err := tmpl.Render(TemplateData{Index: 2, Link: "kwtest", IPv4: v4[1], IPv6: v6[1],
			Priority: 100, Keepalived: true, P: p, Instances: in})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, x := range in {
			want = append(want, x.Name)
		}
		got := kaInstances(string(b))
		if len(want) == 0 || !slices.Equal(got, want) {
			t.Fatalf("%+v: instances in the config %q, want %q", p, got, want)
		}
		l := newLogBuffer(2, nil, "")
		l.started(Keepalived)
		_, _ = l.Write([]byte("Wed Dec  2 09:59:12 2026: Starting VRRP child process, pid=1\n"))
		for i, name := range want {
			if l.kaLogged(want) {
				t.Fatalf("%+v: up with %d of %d instances logged", p, i, len(want))
			}
			_, _ = l.Write([]byte("Wed Dec  2 09:59:12 2026: (" + name + ") Entering BACKUP STATE (init)\n"))
		}
		if !l.kaLogged(want) {
			t.Fatalf("%+v: not up with every instance logged: %q", p, l.tail(0))
		}
		// A restart forgets the previous run's states.
		l.started(Keepalived)
		if l.kaLogged(want) {
			t.Fatalf("%+v: up right after a restart", p)
		}
	}
}
