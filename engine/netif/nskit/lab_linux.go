package nskit

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Prefix starts the name of every namespace nskit creates, so Sweep can find
// the ones a crashed run left behind.
const Prefix = "kw-"

// nsDir is where iproute2 (and vishvananda/netns) keep named namespaces.
const nsDir = "/var/run/netns"

// Options describe a lab.
type Options struct {
	// Name is a short label for the namespaces' names (letters, digits, at
	// most 10 characters), such as the test's name. Empty means "lab".
	Name string
	// Nodes is the number of nodes on the bridge (1 to 200).
	Nodes int
}

// Lab is a set of network namespaces: one "switch" namespace holding a
// bridge, and nodes each joined to it by a veth pair. The host's own
// namespace is never touched. Close removes everything.
type Lab struct {
	// ID is random and part of every name, so parallel labs and labs left by
	// a crashed run never collide.
	ID string
	// Switch is the name of the namespace holding the bridge.
	Switch string
	// Bridge is the bridge's name inside Switch.
	Bridge string
	Nodes  []*Node

	swNS netns.NsHandle
	sw   *netlink.Handle

	mu       sync.Mutex
	procs    []*Proc
	closed   bool
	segments int // bridges beside the first (AddSegment)
}

// Node is one namespace on the lab's bridge.
type Node struct {
	Index int    // 1-based
	NS    string // namespace name (for `ip netns exec`)
	Link  string // the node's interface, inside NS
	Port  string // the bridge port (peer of Link), inside the switch namespace
	MAC   net.HardwareAddr
	// IPv4 is 192.0.2.Index/24 and IPv6 is 2001:db8::Index/64 (documentation
	// ranges, RFC 5737 and RFC 3849); DAD is off, so both are usable at once.
	IPv4, IPv6 netip.Prefix
	// LinkLocal is the link's fe80:: address (the IPv6 VRRP source).
	LinkLocal netip.Addr

	lab *Lab
	ns  netns.NsHandle
	h   *netlink.Handle
}

var nameRE = regexp.MustCompile(`^[a-z0-9]{1,10}$`)

// New builds a lab. On error, whatever was created is removed again.
func New(o Options) (*Lab, error) {
	if o.Name == "" {
		o.Name = "lab"
	}
	o.Name = strings.ToLower(o.Name)
	if !nameRE.MatchString(o.Name) {
		return nil, fmt.Errorf("nskit: name %q: want 1-10 letters or digits", o.Name)
	}
	if o.Nodes < 1 || o.Nodes > 200 {
		return nil, fmt.Errorf("nskit: %d nodes: want 1 to 200", o.Nodes)
	}
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(rnd[:])
	// The creator's pid is in the name so that Sweep can tell a live lab
	// from one whose process died.
	base := fmt.Sprintf("%s%s-%s-p%d", Prefix, o.Name, id, os.Getpid())
	l := &Lab{ID: id, Switch: base + "-sw", Bridge: "kw" + id + "br"}
	if err := l.build(base, o.Nodes); err != nil {
		_ = l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) build(base string, nodes int) error {
	var err error
	if l.swNS, err = newNamed(l.Switch); err != nil {
		return err
	}
	if l.sw, err = netlink.NewHandleAt(l.swNS); err != nil {
		return fmt.Errorf("nskit: netlink in %s: %w", l.Switch, err)
	}
	// The switch forwards frames only: no IPv6 on it, so captures on the
	// nodes hold only what the nodes send.
	if err := doIn(l.swNS, func() error {
		return writeSysctls(map[string]string{
			"net/ipv6/conf/all/disable_ipv6":     "1",
			"net/ipv6/conf/default/disable_ipv6": "1",
		})
	}); err != nil {
		return err
	}
	off := false
	var zero uint32
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: l.Bridge}, MulticastSnooping: &off, AgeingTime: &zero}
	// Ageing time 0 makes the bridge flood every frame, like a hub: a node
	// whose link is cut and restored is reachable again at once.
	if err := l.sw.LinkAdd(br); err != nil {
		return fmt.Errorf("nskit: bridge %s: %w", l.Bridge, err)
	}
	if err := l.sw.LinkSetUp(br); err != nil {
		return fmt.Errorf("nskit: bridge %s up: %w", l.Bridge, err)
	}
	for i := 1; i <= nodes; i++ {
		n, err := l.addNode(base, i, br)
		if n != nil {
			l.Nodes = append(l.Nodes, n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) addNode(base string, i int, br *netlink.Bridge) (*Node, error) {
	n := &Node{
		Index: i,
		NS:    fmt.Sprintf("%s-n%d", base, i),
		Link:  fmt.Sprintf("kw%sn%d", l.ID, i),
		Port:  fmt.Sprintf("kw%ss%d", l.ID, i),
		IPv4:  netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 24),
		IPv6:  netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}), 64),
		lab:   l,
	}
	var err error
	if n.ns, err = newNamed(n.NS); err != nil {
		return nil, err
	}
	if n.h, err = netlink.NewHandleAt(n.ns); err != nil {
		return n, fmt.Errorf("nskit: netlink in %s: %w", n.NS, err)
	}
	// DAD off before the link exists, so its link-local and global addresses
	// are usable at once (a VRRP advert cannot leave from a tentative source).
	if err := n.Do(func() error {
		return writeSysctls(map[string]string{
			"net/ipv6/conf/all/accept_dad":               "0",
			"net/ipv6/conf/default/accept_dad":           "0",
			"net/ipv6/conf/default/dad_transmits":        "0",
			"net/ipv6/conf/default/router_solicitations": "0",
		})
	}); err != nil {
		return n, err
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: n.Port, MasterIndex: br.Index},
		PeerName:      n.Link,
		PeerNamespace: netlink.NsFd(int(n.ns)),
	}
	if err := l.sw.LinkAdd(veth); err != nil {
		return n, fmt.Errorf("nskit: veth %s/%s: %w", n.Port, n.Link, err)
	}
	if err := l.sw.LinkSetUp(veth); err != nil {
		return n, fmt.Errorf("nskit: %s up: %w", n.Port, err)
	}
	lo, err := n.h.LinkByName("lo")
	if err != nil {
		return n, fmt.Errorf("nskit: lo in %s: %w", n.NS, err)
	}
	if err := n.h.LinkSetUp(lo); err != nil {
		return n, fmt.Errorf("nskit: lo up in %s: %w", n.NS, err)
	}
	link, err := n.h.LinkByName(n.Link)
	if err != nil {
		return n, fmt.Errorf("nskit: %s in %s: %w", n.Link, n.NS, err)
	}
	n.MAC = link.Attrs().HardwareAddr
	for _, p := range []netip.Prefix{n.IPv4, n.IPv6} {
		a := &netlink.Addr{IPNet: prefixNet(p), Flags: unix.IFA_F_NODAD}
		if err := n.h.AddrAdd(link, a); err != nil {
			return n, fmt.Errorf("nskit: address %s on %s: %w", p, n.Link, err)
		}
	}
	if err := n.h.LinkSetUp(link); err != nil {
		return n, fmt.Errorf("nskit: %s up: %w", n.Link, err)
	}
	n.LinkLocal, err = n.waitLinkLocal(link, 5*time.Second)
	return n, err
}

// waitLinkLocal waits for the kernel to give the link its fe80:: address,
// which it does when the link comes up.
func (n *Node) waitLinkLocal(link netlink.Link, timeout time.Duration) (netip.Addr, error) {
	deadline := time.Now().Add(timeout)
	for {
		addrs, err := n.h.AddrList(link, netlink.FAMILY_V6)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("nskit: addresses of %s: %w", n.Link, err)
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if ok && ip.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				return ip, nil
			}
		}
		if time.Now().After(deadline) {
			return netip.Addr{}, fmt.Errorf("nskit: %s in %s: no link-local address after %s", n.Link, n.NS, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Node returns the node with the given 1-based index.
func (l *Lab) Node(i int) *Node { return l.Nodes[i-1] }

// AddSegment adds another bridge to the switch namespace and joins every
// node to it by a second veth pair, up and without addresses but its
// link-local one; it returns each node's new interface name, in node
// order. A second segment is a second broadcast domain, so the same VRRP
// VRID can run on both (RFC 9568 §5.2.3: a VRID is unique per LAN), which
// a VLAN or macvlan on the first link could not give here (the host kernel
// has no 8021q, and a macvlan shares its lower link's multicast).
func (l *Lab) AddSegment() ([]string, error) {
	l.mu.Lock()
	l.segments++
	seg := l.segments + 1
	l.mu.Unlock()
	off := false
	var zero uint32
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("kw%sb%d", l.ID, seg)}, MulticastSnooping: &off, AgeingTime: &zero}
	if err := l.sw.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("nskit: bridge %s: %w", br.Name, err)
	}
	if err := l.sw.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("nskit: bridge %s up: %w", br.Name, err)
	}
	var names []string
	for _, n := range l.Nodes {
		name := fmt.Sprintf("kw%sn%dl%d", l.ID, n.Index, seg)
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: fmt.Sprintf("kw%ss%dl%d", l.ID, n.Index, seg), MasterIndex: br.Index},
			PeerName:      name,
			PeerNamespace: netlink.NsFd(int(n.ns)),
		}
		if err := l.sw.LinkAdd(veth); err != nil {
			return nil, fmt.Errorf("nskit: veth to %s: %w", name, err)
		}
		if err := l.sw.LinkSetUp(veth); err != nil {
			return nil, fmt.Errorf("nskit: %s up: %w", veth.Name, err)
		}
		link, err := n.h.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("nskit: %s in %s: %w", name, n.NS, err)
		}
		if err := n.h.LinkSetUp(link); err != nil {
			return nil, fmt.Errorf("nskit: %s up: %w", name, err)
		}
		if _, err := n.waitLinkLocal(link, 5*time.Second); err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

// Close stops every process started in the lab (by pid), then removes the
// nodes' and the switch's namespaces, which removes their veths and the
// bridge. It is safe to call twice.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs := l.procs
	l.procs = nil
	l.mu.Unlock()

	var errs []error
	for _, p := range procs {
		if err := p.Stop(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, err)
		}
	}
	for _, n := range l.Nodes {
		errs = append(errs, n.close())
	}
	if l.sw != nil {
		l.sw.Close()
	}
	if l.swNS.IsOpen() {
		errs = append(errs, l.swNS.Close())
	}
	if l.Switch != "" {
		errs = append(errs, deleteNamed(l.Switch))
	}
	return errors.Join(errs...)
}

func (n *Node) close() error {
	if n.h != nil {
		n.h.Close()
	}
	var err error
	if n.ns.IsOpen() {
		err = n.ns.Close()
	}
	return errors.Join(err, deleteNamed(n.NS))
}

// Handle is a netlink handle inside the node's namespace; the lab owns it.
func (n *Node) Handle() *netlink.Handle { return n.h }

// NsHandle is the node's namespace; the lab owns it.
func (n *Node) NsHandle() netns.NsHandle { return n.ns }

// Do runs fn on an OS thread switched into the node's namespace. Sockets
// and netlink handles fn opens stay in that namespace after Do returns.
// Goroutines fn starts run in the caller's namespace, not the node's.
func (n *Node) Do(fn func() error) error { return doIn(n.ns, fn) }

// Cut takes the node's link down from the switch side, so the node sees
// carrier loss (oper state down), as when a cable is pulled.
func (n *Node) Cut() error { return n.setPort(false) }

// Restore brings the node's link back after Cut.
func (n *Node) Restore() error { return n.setPort(true) }

func (n *Node) setPort(up bool) error {
	port, err := n.lab.sw.LinkByName(n.Port)
	if err != nil {
		return fmt.Errorf("nskit: port %s: %w", n.Port, err)
	}
	if up {
		err = n.lab.sw.LinkSetUp(port)
	} else {
		err = n.lab.sw.LinkSetDown(port)
	}
	if err != nil {
		return fmt.Errorf("nskit: port %s up=%t: %w", n.Port, up, err)
	}
	return nil
}

// newNamed creates a named namespace (bound under /var/run/netns, so `ip
// netns exec` finds it) without moving the calling thread into it for good.
func newNamed(name string) (netns.NsHandle, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return netns.None(), fmt.Errorf("nskit: current namespace: %w", err)
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if rerr := netns.Set(orig); rerr != nil {
		// The thread is stuck in the wrong namespace: leave it locked so
		// the runtime discards it when this goroutine exits.
		return netns.None(), errors.Join(err, fmt.Errorf("nskit: restore namespace: %w", rerr))
	}
	runtime.UnlockOSThread()
	if err != nil {
		return netns.None(), fmt.Errorf("nskit: namespace %s: %w", name, err)
	}
	return h, nil
}

func deleteNamed(name string) error {
	err := netns.DeleteNamed(name)
	if err != nil && errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nskit: delete namespace %s: %w", name, err)
	}
	return nil
}

func doIn(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("nskit: current namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("nskit: enter namespace: %w", err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime discards it with this goroutine.
		return errors.Join(ferr, fmt.Errorf("nskit: restore namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// writeSysctls writes /proc/sys entries; under /proc/sys/net they belong to
// the calling thread's namespace.
func writeSysctls(kv map[string]string) error {
	for k, v := range kv {
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			return fmt.Errorf("nskit: sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Sweep removes the namespaces of labs whose creating process is gone (a
// crashed test run or lab), and returns their names. Labs of live processes
// are left alone.
func Sweep() ([]string, error) {
	entries, err := os.ReadDir(nsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		pid, ok := creatorPID(e.Name())
		if !ok || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := deleteNamed(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

var sweepRE = regexp.MustCompile(`^kw-[a-z0-9]{1,10}-[0-9a-f]{6}-p([0-9]+)-(sw|n[0-9]+)$`)

func creatorPID(name string) (int, bool) {
	m := sweepRE.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	pid, err := strconv.Atoi(m[1])
	return pid, err == nil
}

func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
