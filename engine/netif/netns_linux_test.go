package netif_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestHostUseNamespace: a Host bound to a named namespace (net_namespace)
// makes every platform call there — interface list, primary address, VRRP
// socket, announcer, addresses — from a goroutine whose own thread stays in
// the test's namespace; it refuses to move again.
func TestHostUseNamespace(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "usens", 2)
	x := l.Node(1)
	h, err := netif.OpenHost()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.UseNamespace(x.NS); err != nil {
		t.Fatal(err)
	}
	if h.Namespace() != x.NS {
		t.Errorf("Namespace() = %q, want %q", h.Namespace(), x.NS)
	}
	links, err := h.Links()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ln := range links {
		names = append(names, ln.Name)
	}
	if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+x.Link+" ") {
		t.Errorf("Links() = %v, want %s of namespace %s", names, x.Link, x.NS)
	}
	if a, err := h.PrimaryAddress(x.Link, false); err != nil || a != x.IPv4.Addr() {
		t.Errorf("PrimaryAddress(%s) = %v, %v, want %v", x.Link, a, err, x.IPv4.Addr())
	}
	s, err := h.Listen(x.Link, false, netif.Config{})
	if err != nil {
		t.Fatalf("Listen in the namespace: %v", err)
	}
	s.Close()
	if err := h.Announce(x.Link, netip.MustParseAddr("192.0.2.201")); err != nil {
		t.Errorf("Announce in the namespace: %v", err)
	}
	vip := netif.Address{Prefix: netip.MustParsePrefix("192.0.2.201/32"), Dev: x.Link}
	if err := h.AddAddress(vip); err != nil {
		t.Fatal(err)
	}
	link, err := x.Handle().LinkByName(x.Link)
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := x.Handle().AddrList(link, netlink.FAMILY_V4)
	found := false
	for _, a := range addrs {
		found = found || a.IP.Equal(vip.Prefix.Addr().AsSlice())
	}
	if !found {
		t.Errorf("AddAddress: %s not on %s in %s (%v)", vip.Prefix, x.Link, x.NS, addrs)
	}
	// The calling goroutine's thread is back where it was.
	if _, err := netlink.LinkByName(x.Link); err == nil {
		t.Errorf("%s visible from the test's namespace after the Host's calls", x.Link)
	}
	if err := h.UseNamespace(l.Node(2).NS); err == nil {
		t.Error("UseNamespace to a second namespace succeeded, want refused")
	}
	if err := h.UseNamespace(x.NS); err != nil {
		t.Errorf("UseNamespace to the same namespace again: %v", err)
	}
}
