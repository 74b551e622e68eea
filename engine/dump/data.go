package dump

import (
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/router"
)

// Masked is what a dump shows for a secret (auth_pass): keepalived 2.4.0
// and later mask it the same way; 2.2.7 printed the password itself.
const Masked = "********"

// Data is keepalived's "data" object of one instance in keepalived.json
// (vrrp_json_data_dump() in keepalived/vrrp/vrrp_json.c), field for field
// and in its order. Lists keepalived leaves out when empty are omitempty.
type Data struct {
	IName                string   `json:"iname"`
	DontTrackPrimary     int      `json:"dont_track_primary"`
	SkipCheckAdvAddr     int      `json:"skip_check_adv_addr"`
	StrictMode           int      `json:"strict_mode"`
	VMACIfname           string   `json:"vmac_ifname"`
	IfpIfname            string   `json:"ifp_ifname"`
	MasterPriority       int      `json:"master_priority"`
	LastTransition       Epoch    `json:"last_transition"`
	GarpDelay            float64  `json:"garp_delay"`
	GarpRefresh          int      `json:"garp_refresh"`
	GarpRep              int      `json:"garp_rep"`
	GarpRefreshRep       int      `json:"garp_refresh_rep"`
	GarpLowerPrioDelay   int      `json:"garp_lower_prio_delay"`
	GarpLowerPrioRep     int      `json:"garp_lower_prio_rep"`
	LowerPrioNoAdvert    int      `json:"lower_prio_no_advert"`
	HigherPrioSendAdvert int      `json:"higher_prio_send_advert"`
	VRID                 int      `json:"vrid"`
	BasePriority         int      `json:"base_priority"`
	EffectivePriority    int      `json:"effective_priority"`
	VIPSet               bool     `json:"vipset"`
	PromoteSecondaries   bool     `json:"promote_secondaries"`
	AdverInt             float64  `json:"adver_int"`
	MasterAdverInt       float64  `json:"master_adver_int"`
	Accept               int      `json:"accept"`
	NoPreempt            bool     `json:"nopreempt"`
	PreemptDelay         int      `json:"preempt_delay"`
	State                int      `json:"state"`
	WantState            int      `json:"wantstate"`
	Version              int      `json:"version"`
	SMTPAlert            bool     `json:"smtp_alert"`
	NotifyDeleted        bool     `json:"notify_deleted"`
	ScriptBackup         string   `json:"script_backup,omitempty"`
	ScriptMaster         string   `json:"script_master,omitempty"`
	ScriptFault          string   `json:"script_fault,omitempty"`
	ScriptStop           string   `json:"script_stop,omitempty"`
	ScriptDeleted        string   `json:"script_deleted,omitempty"`
	Script               string   `json:"script,omitempty"`
	ScriptMasterRxLower  string   `json:"script_master_rx_lower_pri,omitempty"`
	VIPs                 []string `json:"vips,omitempty"`
	EVIPs                []string `json:"evips,omitempty"`
	VRoutes              []string `json:"vroutes,omitempty"`
	VRules               []string `json:"vrules,omitempty"`
	TrackIfp             []string `json:"track_ifp,omitempty"`
	TrackScript          []string `json:"track_script,omitempty"`
	TrackProcess         []string `json:"track_process,omitempty"`
	AuthType             int      `json:"auth_type"`
	AuthData             string   `json:"auth_data,omitempty"`
}

// Epoch is a time as keepalived's JSON writes it: seconds since 1970 with
// six decimals ("%f"), 0 for none.
type Epoch float64

// MarshalJSON writes e with six decimals.
func (e Epoch) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(e), 'f', 6, 64), nil
}

func epoch(t time.Time) Epoch {
	if t.IsZero() {
		return 0
	}
	return Epoch(float64(t.UnixMicro()) / 1e6)
}

// StateCode is keepalived's number for a state (vrrp.h: 0 INIT, 1 BACKUP,
// 2 MASTER, 3 FAULT, 98 STOP).
func StateCode(s vrrp.State) int {
	switch s {
	case vrrp.StateBackup:
		return 1
	case vrrp.StateMaster:
		return 2
	case vrrp.StateFault:
		return 3
	case vrrp.StateStop:
		return 98
	}
	return 0
}

// auth type numbers on the wire and in the dump (RFC 3768 §5.3.6).
func authType(a *config.Auth) int {
	if a == nil {
		return 0
	}
	switch strings.ToUpper(a.Type) {
	case "PASS":
		return 1
	case "AH":
		return 2
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

// NewData builds an instance's data object from its config and its running
// state. c is the whole config (globals, vrrp_script commands).
func NewData(c *config.Config, in *config.Instance, s router.Snapshot) Data {
	g := &c.Global
	strict := boolOr(in.Strict, g.Strict)
	garp := in.GarpSchedule(g)
	d := Data{
		IName:                in.Name,
		DontTrackPrimary:     b2i(in.DontTrackPrimary),
		SkipCheckAdvAddr:     b2i(boolOr(in.SkipCheckAdvAddr, g.SkipCheckAdvAddr)),
		StrictMode:           b2i(strict),
		IfpIfname:            in.Interface,
		MasterPriority:       s.MasterPriority,
		LastTransition:       epoch(s.LastTransition),
		GarpDelay:            garp.MasterDelay.Seconds(),
		GarpRefresh:          int(garp.MasterRefresh / time.Second),
		GarpRep:              garp.MasterRepeat,
		GarpRefreshRep:       garp.RefreshRepeat,
		GarpLowerPrioDelay:   int(garp.LowerPrioDelay / time.Second),
		GarpLowerPrioRep:     garp.LowerPrioRepeat,
		LowerPrioNoAdvert:    b2i(boolOr(in.LowerPrioNoAdvert, g.LowerPrioNoAdvert)),
		HigherPrioSendAdvert: b2i(boolOr(in.HigherPrioSendAdvert, g.HigherPrioSendAdvert)),
		VRID:                 in.VRID,
		BasePriority:         in.Priority,
		EffectivePriority:    s.Priority,
		VIPSet:               s.VIPsHeld,
		PromoteSecondaries:   in.PromoteSecondaries,
		AdverInt:             in.AdvertInterval.Seconds(),
		MasterAdverInt:       in.AdvertInterval.Seconds(),
		Accept:               b2i(boolOr(in.Accept, !strict)),
		NoPreempt:            in.NoPreempt,
		PreemptDelay:         int(in.PreemptDelay / time.Second),
		State:                StateCode(s.State),
		WantState:            StateCode(s.State),
		Version:              in.EffectiveVersion(g),
		SMTPAlert:            boolOr(in.Notify.SMTPAlert, boolOr(g.SMTPAlertVRRP, boolOr(g.SMTPAlert, false))),
		NotifyDeleted:        in.Notify.Deleted != nil,
		AuthType:             authType(in.Auth),
	}
	// keepalived gives an instance the global lower-priority GARP values
	// (themselves defaulting to the global master ones), not its own
	// garp_master_delay/repeat: vrrp.c's vrrp_complete_instance().
	global := (&config.Instance{}).GarpSchedule(g)
	if in.GarpLowerPrioDelay == nil {
		d.GarpLowerPrioDelay = int(global.LowerPrioDelay / time.Second)
	}
	if in.GarpLowerPrioRepeat == nil {
		d.GarpLowerPrioRep = global.LowerPrioRepeat
	}
	if s.AdvertInterval > 0 {
		d.AdverInt = s.AdvertInterval.Seconds()
	}
	if in.VMAC != nil {
		d.VMACIfname = in.VMAC.Name
		if d.VMACIfname == "" {
			d.VMACIfname = "vrrp." + strconv.Itoa(in.VRID)
		}
		d.IfpIfname = d.VMACIfname // keepalived's instance interface is the VMAC

	}
	if d.AuthType != 0 {
		d.AuthData = Masked
	}
	script := func(sc *config.Script) string {
		if sc == nil {
			return ""
		}
		return quoteCommand(sc)
	}
	n := &in.Notify
	d.ScriptBackup, d.ScriptMaster, d.ScriptFault = script(n.Backup), script(n.Master), script(n.Fault)
	d.ScriptStop, d.ScriptDeleted, d.Script = script(n.Stop), script(n.Deleted), script(n.Any)
	d.ScriptMasterRxLower = script(n.MasterRxLowerPri)
	// With a VMAC the addresses go on it; keepalived names it with its
	// link, "vrrp.51@eth0".
	vipDev := in.Interface
	if d.VMACIfname != "" {
		vipDev = d.VMACIfname + "@" + in.Interface
	}
	for _, a := range in.VIPs {
		d.VIPs = append(d.VIPs, FormatAddress(a, vipDev, s.VIPsHeld))
	}
	for _, a := range in.ExcludedVIPs {
		d.EVIPs = append(d.EVIPs, FormatAddress(a, vipDev, s.VIPsHeld))
	}
	for _, r := range in.Routes {
		d.VRoutes = append(d.VRoutes, dataRoute(r))
	}
	for _, r := range in.Rules {
		d.VRules = append(d.VRules, dataRule(r))
	}
	// keepalived drops a track_interface naming the instance's own
	// interface ("Ignoring track_interface d0 since own interface").
	for _, t := range in.TrackInterfaces {
		if t.Name != in.Interface {
			d.TrackIfp = append(d.TrackIfp, t.Name)
		}
	}
	for _, t := range in.TrackScripts {
		cmd := t.Name
		for i := range c.Scripts {
			if c.Scripts[i].Name == t.Name {
				cmd = quoteCommand(&c.Scripts[i])
			}
		}
		d.TrackScript = append(d.TrackScript, cmd)
	}
	for _, t := range in.TrackProcesses {
		name := t.Name
		for _, p := range c.TrackProcesses {
			if p.Name == t.Name {
				name = p.Process
			}
		}
		d.TrackProcess = append(d.TrackProcess, name)
	}
	return d
}

// quoteCommand prints a script as keepalived's cmd_str() does: each word in
// single quotes, separated by spaces, the program by the real path
// keepalived resolved it to when it checked the script (PATH, symbolic
// links: "/bin/true" shows as '/usr/bin/true' on a merged-/usr system).
func quoteCommand(s *config.Script) string {
	args := s.Args
	if len(args) == 0 {
		args = strings.Fields(s.Command)
	}
	q := make([]string, len(args))
	for i, a := range args {
		if i == 0 {
			a = realProgram(a)
		}
		q[i] = "'" + a + "'"
	}
	return strings.Join(q, " ")
}

func realProgram(p string) string {
	full, err := exec.LookPath(p)
	if err != nil {
		return p
	}
	if r, err := filepath.EvalSymlinks(full); err == nil {
		return r
	}
	return full
}

// FormatAddress prints a virtual address as keepalived's format_ipaddress()
// does (vrrp_ipaddress.c): the prefix length only when it is not a host
// route, "set" when the address is installed.
func FormatAddress(a config.Address, ifname string, set bool) string {
	var b strings.Builder
	p := a.Prefix
	if p.Bits() == p.Addr().BitLen() || p.Bits() < 0 {
		b.WriteString(p.Addr().String())
	} else {
		b.WriteString(p.String())
	}
	if a.Broadcast != "" && p.Addr().Is4() {
		if brd := broadcast(a.Broadcast, p); brd.IsValid() {
			b.WriteString(" brd " + brd.String())
		}
	}
	dev := a.Dev
	if dev == "" {
		dev = ifname
	}
	b.WriteString(" dev " + dev)
	if a.UseVMAC {
		b.WriteString(" use_vmac")
	}
	scope := a.Scope
	if scope == "" {
		scope = "global"
	}
	if p.Addr().Is6() {
		scope = "global" // keepalived ignores a scope on IPv6 addresses
	}
	b.WriteString(" scope " + scope)
	if a.Label != "" && p.Addr().Is4() {
		b.WriteString(" label " + a.Label)
	}
	if a.Peer.IsValid() {
		b.WriteString(" peer " + a.Peer.String())
	}
	for _, f := range []struct {
		on   bool
		word string
	}{{a.Home, " home"}, {a.NoDAD, " -nodad"}, {a.MngTmpAddr, " mngtmpaddr"}, {a.NoPrefixRoute, " noprefixroute"}, {a.AutoJoin, " autojoin"}, {a.NoTrack, " no_track"}} {
		if f.on {
			b.WriteString(f.word)
		}
	}
	if p.Addr().Is6() {
		switch {
		case a.PreferredLft != nil && *a.PreferredLft == 0, a.PreferredLft == nil && p.Bits() == 128:
			b.WriteString(" deprecated")
		case a.PreferredLft == nil || *a.PreferredLft < 0:
			b.WriteString(" preferred_lft forever")
		default:
			b.WriteString(" preferred_lft " + strconv.FormatInt(*a.PreferredLft, 10))
		}
	}
	if set {
		b.WriteString(" set")
	}
	return b.String()
}

// broadcast resolves brd: an address, "+" (all host bits set) or "-" (none).
func broadcast(brd string, p netip.Prefix) netip.Addr {
	switch brd {
	case "+", "-":
		if p.Bits() > 30 {
			return netip.Addr{}
		}
		a := p.Addr().As4()
		host := uint32(0xffffffff) >> p.Bits()
		v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		if brd == "+" {
			v |= host
		} else {
			v &^= host
		}
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	a, _ := netip.ParseAddr(brd)
	return a
}
