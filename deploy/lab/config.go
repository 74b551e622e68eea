package lab

import (
	"bytes"
	"embed"
	"fmt"
	"net/netip"
	"strconv"
	"text/template"
	"time"
)

// configs holds the bundled config templates (keepalived.conf syntax, Go
// text/template), rendered once per node.
//
//go:embed configs/*.conf
var configs embed.FS

// DefaultTemplate is the bundled template the lab runs unless told otherwise.
const DefaultTemplate = "lab.conf"

// The lab's virtual addresses: documentation ranges (RFC 5737, RFC 3849).
var (
	VIP4 = netip.MustParsePrefix("192.0.2.100/24")
	VIP6 = netip.MustParsePrefix("2001:db8::100/64")
)

// Params are the knobs of the bundled template. The zero value is the lab's
// default: VRRPv3 at advert_int 0.1 s, one instance per family
// (VI_4: VRID 51, VIP4; VI_6: VRID 52, VIP6), multicast, preempting.
type Params struct {
	Version  int           // VRRP version: 3 (default) or 2
	Interval time.Duration // advert_int; 100 ms by default
	// Family is 4 or 6 for one instance of that family; 0 runs both.
	Family int
	// VRID is the first instance's VRID (default 51); the next ones count up.
	VRID    int
	Unicast bool // unicast_src_ip and one unicast_peer per other node
	// Pass sets authentication { auth_type PASS } (VRRPv2 only).
	Pass         string
	NoPreempt    bool
	PreemptDelay time.Duration
	// SyncGroup puts VI_4 and VI_6 in one vrrp_sync_group (Family 0).
	SyncGroup bool
	// TrackScript is a vrrp_script command tracked by the IPv4 instance,
	// adding ScriptWeight to its priority while it fails; ScriptInterval
	// defaults to 1 s (keepalived 2.2.7 takes whole seconds, at least 1).
	TrackScript    string
	ScriptWeight   int
	ScriptInterval time.Duration
	// FaultFile tracks DIR/fault (track_file, weight 0) from the IPv4
	// instance: a non-zero number in it puts the instance in FAULT.
	FaultFile bool
	// Instances > 0 replaces the instances by that many (VI_1…), for the
	// footprint benchmarks; up to MaxInstances. A VRID is unique per
	// interface and family only (RFC 9568 §5.2.3), so past 250 they spread
	// over two segments and both families, 250 to each (InstanceLayout).
	Instances int
	// TrackInterface, if set, is tracked by every instance
	// (track_interface, no weight): the instance is FAULT while that
	// interface is down or missing. The chaos soak deletes and recreates it.
	TrackInterface string
	// Extra are more virtual addresses, each added to the instance of its
	// family (VI_4, VI_6) after VIP4 or VIP6: the soak's VIP-list edits.
	Extra []netip.Prefix
}

func (p Params) withDefaults() Params {
	if p.Version == 0 {
		p.Version = 3
	}
	if p.Interval == 0 {
		p.Interval = 100 * time.Millisecond
	}
	if p.VRID == 0 {
		p.VRID = 51
	}
	if p.ScriptInterval == 0 {
		p.ScriptInterval = time.Second
	}
	return p
}

// InstanceInfo is one vrrp_instance as a template renders it.
type InstanceInfo struct {
	Name string
	// Second, when true, puts the instance on the node's second interface
	// (TemplateData.Link2) rather than its lab link.
	Second bool
	VRID   int
	Family int
	VIP    netip.Prefix
	Extra  []netip.Prefix // more virtual addresses (Params.Extra)
	Src    netip.Addr     // unicast_src_ip
	Peers  []netip.Addr   // unicast peers
}

// TemplateData is what a template sees for one node.
type TemplateData struct {
	Index int
	Link  string
	// Link2 is the node's interface on the lab's second segment, present
	// when Params.Instances is over 250 (Node.Link2).
	Link2      string
	IPv4, IPv6 netip.Addr
	LinkLocal  netip.Addr
	Priority   int
	Keepalived bool   // the node runs keepalived, not keepwatch
	Dir        string // the node's working directory
	P          Params
	Instances  []InstanceInfo
}

// instances lists the vrrp_instances p describes for a node, given every
// node's IPv4 and IPv6 addresses (for unicast peers).
func instances(p Params, self int, v4, v6 []netip.Addr) []InstanceInfo {
	peers := func(all []netip.Addr) []netip.Addr {
		var out []netip.Addr
		for k, a := range all {
			if k+1 != self {
				out = append(out, a)
			}
		}
		return out
	}
	if p.Instances > 0 {
		out := make([]InstanceInfo, 0, p.Instances)
		for k := 1; k <= min(p.Instances, MaxInstances); k++ {
			in := InstanceLayout(k)
			switch {
			case in.Family == 6:
				// On the second segment too: Link2 has no global IPv6
				// address, so unicast IPv6 is laid out on the first only.
				in.Src, in.Peers = v6[self-1], peers(v6)
			case in.Second:
				var vl []netip.Addr
				for i := range v4 {
					vl = append(vl, Link2Addr(i+1).Addr())
				}
				in.Src, in.Peers = vl[self-1], peers(vl)
			default:
				in.Src, in.Peers = v4[self-1], peers(v4)
			}
			out = append(out, in)
		}
		return out
	}
	extra := func(v6 bool) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range p.Extra {
			if x.Addr().Is6() == v6 {
				out = append(out, x)
			}
		}
		return out
	}
	var out []InstanceInfo
	vrid := p.VRID
	if p.Family != 6 {
		out = append(out, InstanceInfo{Name: "VI_4", VRID: vrid, Family: 4, VIP: VIP4, Extra: extra(false), Src: v4[self-1], Peers: peers(v4)})
		vrid++
	}
	if p.Family != 4 {
		out = append(out, InstanceInfo{Name: "VI_6", VRID: vrid, Family: 6, VIP: VIP6, Extra: extra(true), Src: v6[self-1], Peers: peers(v6)})
	}
	return out
}

// MaxInstances is the most instances Params.Instances lays out: 250 per
// interface and family, on two interfaces.
const MaxInstances = 1000

// Link2Addr is node i's IPv4 address on its second interface (Node.Link2):
// 203.0.113.(250+i)/24, beside the VIPs 203.0.113.1-250 of the instances
// there.
func Link2Addr(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(250 + i)}), 24)
}

// InstanceLayout is instance k (1-based, up to MaxInstances) of
// Params.Instances: 1-250 IPv4 on the lab link (VRID k, VIP
// 198.51.100.k/24), 251-500 IPv4 on the second segment (Node.Link2) (VIP 203.0.113.k-250/24),
// 501-750 IPv6 on the lab link (VIP 2001:db8::1:N/64), 751-1000 IPv6 on
// the second segment (VIP 2001:db8:2::N/64), N being the VRID.
func InstanceLayout(k int) InstanceInfo {
	vrid := (k-1)%250 + 1
	in := InstanceInfo{Name: "VI_" + strconv.Itoa(k), VRID: vrid, Family: 4}
	switch (k - 1) / 250 {
	case 0:
		in.VIP = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(vrid)}), 24)
	case 1:
		in.Second = true
		in.VIP = netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(vrid)}), 24)
	case 2:
		in.Family = 6
		in.VIP = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: 1, 15: byte(vrid)}), 64)
	default:
		in.Family, in.Second = 6, true
		in.VIP = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 2, 15: byte(vrid)}), 64)
	}
	return in
}

// secs prints a duration as keepalived's decimal seconds.
func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// Template is a parsed config template.
type Template struct{ t *template.Template }

// ParseTemplate parses a template: the name of a bundled one (such as
// "lab.conf"), or, when text is not empty, text itself.
func ParseTemplate(name, text string) (*Template, error) {
	if text == "" {
		b, err := configs.ReadFile("configs/" + name)
		if err != nil {
			return nil, fmt.Errorf("lab: template %q: %w", name, err)
		}
		text = string(b)
	}
	t, err := template.New(name).Funcs(template.FuncMap{"secs": secs}).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("lab: template %q: %w", name, err)
	}
	return &Template{t: t}, nil
}

// Render renders the template for one node.
func (t *Template) Render(d TemplateData) ([]byte, error) {
	var b bytes.Buffer
	if err := t.t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("lab: rendering %s for node %d: %w", t.t.Name(), d.Index, err)
	}
	return b.Bytes(), nil
}
