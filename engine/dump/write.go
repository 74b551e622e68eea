package dump

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// The files keepalived writes on its dump signals, in its temporary
// directory (make_tmp_filename() in lib/utils.c).
const (
	DataFile  = "keepalived.data"  // SIGUSR1
	StatsFile = "keepalived.stats" // SIGUSR2 (and STATS_CLEAR)
	JSONFile  = "keepalived.json"  // SIGRTMIN+2
)

// Entry is one instance in keepalived.json: {"data": …, "stats": …}.
type Entry struct {
	Data  Data  `json:"data"`
	Stats Stats `json:"stats"`
}

// TmpDir is where keepalived puts its dumps: $TMPDIR when it is an
// absolute path, else /tmp.
func TmpDir() string {
	if d := os.Getenv("TMPDIR"); filepath.IsAbs(d) {
		return d
	}
	return "/tmp"
}

// WriteJSON writes keepalived.json's json_version 1 document (2.2.7's): an
// array of {data, stats} on one line. keepalived's JSON writer
// (lib/json_writer.c) escapes "/" as "\/"; so does this, for byte-equal
// strings. A "/" can only occur inside a JSON string, so the replacement is
// safe.
func WriteJSON(w io.Writer, es []Entry) error {
	if es == nil {
		es = []Entry{}
	}
	b, err := json.Marshal(es)
	if err != nil {
		return err
	}
	b = bytes.ReplaceAll(b, []byte("/"), []byte(`\/`))
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteStats writes keepalived.stats as vrrp_print_stats() does
// (keepalived/vrrp/vrrp_print.c).
func WriteStats(w io.Writer, es []Entry) error {
	bw := bufio.NewWriter(w)
	for _, e := range es {
		s := e.Stats
		fmt.Fprintf(bw, "VRRP Instance: %s\n", e.Data.IName)
		fmt.Fprintf(bw, "  Advertisements:\n    Received: %d\n    Sent: %d\n", s.AdvertRcvd, s.AdvertSent)
		fmt.Fprintf(bw, "  Became master: %d\n  Released master: %d\n", s.BecomeMaster, s.ReleaseMaster)
		fmt.Fprintf(bw, "  Packet Errors:\n    Length: %d\n    TTL: %d\n    Invalid Type: %d\n    Advertisement Interval: %d\n    Address List: %d\n",
			s.PacketLenErr, s.IPTTLErr, s.InvalidTypeRcvd, s.AdvertIntervalErr, s.AddrListErr)
		fmt.Fprintf(bw, "  Authentication Errors:\n    Invalid Type: %d\n    Type Mismatch: %d\n    Failure: %d\n",
			s.InvalidAuthType, s.AuthTypeMismatch, s.AuthFailure)
		fmt.Fprintf(bw, "  Priority Zero:\n    Received: %d\n    Sent: %d\n", s.PriZeroRcvd, s.PriZeroSent)
	}
	return bw.Flush()
}

var stateNames = map[int]string{0: "INIT", 1: "BACKUP", 2: "MASTER", 3: "FAULT", 97: "DELETED", 98: "STOP"}

func onOff(b bool, on, off string) string {
	if b {
		return on
	}
	return off
}

// WriteData writes keepalived.data: the sections and "Key = value" lines
// of keepalived's dump_global_data() and dump_vrrp() for what keepwatch
// models (keepalived/core/global_data.c, keepalived/vrrp/vrrp_data.c).
// keepalived's maintainers call this format unstable (#1928); the lines
// here are those a reader greps for, in keepalived's words.
func WriteData(w io.Writer, c *config.Config, es []Entry) error {
	bw := bufio.NewWriter(w)
	g := &c.Global
	p := func(format string, a ...any) { fmt.Fprintf(bw, format+"\n", a...) }
	p("------< Global definitions >------")
	p(" Router ID = %s", g.RouterID)
	if g.SMTPServer != "" {
		p(" Smtp server = %s", g.SMTPServer)
		port, timeout := g.SMTPPort, g.SMTPConnectTimeout
		if port == 0 {
			port = 25
		}
		if timeout == 0 {
			timeout = 30 * time.Second
		}
		p(" Smtp server port = %d", port)
		p(" Smtp server connection timeout = %d", int(timeout/time.Second))
	}
	if g.NotificationEmailFrom != "" {
		p(" Email notification from = %s", g.NotificationEmailFrom)
	}
	if len(g.NotificationEmail) > 0 {
		p(" Email notification to:")
		for _, e := range g.NotificationEmail {
			p("   %s", e)
		}
	}
	mc4, mc6 := config.DefaultMulticastGroup4, config.DefaultMulticastGroup6
	if g.MulticastGroup4.IsValid() {
		mc4 = g.MulticastGroup4
	}
	if g.MulticastGroup6.IsValid() {
		mc6 = g.MulticastGroup6
	}
	p(" Dynamic interfaces = %t", g.DynamicInterfaces)
	p(" LVS flush = %t", g.LVSFlush)
	p(" VRRP notify priority changes = %t", g.NotifyPriorityChanges)
	p(" VRRP IPv4 mcast group = %s", mc4)
	p(" VRRP IPv6 mcast group = %s", mc6)
	version := g.VRRPVersion
	if version == 0 {
		version = config.DefaultVRRPVersion
	}
	p(" Num adverts before down = %d", downAdverts(g.DownTimerAdverts, 0))
	p(" VRRP default protocol version = %d", version)
	p(" VRRP check unicast_src = %t", g.CheckUnicastSrc)
	p(" VRRP skip check advert addresses = %t", g.SkipCheckAdvAddr)
	p(" VRRP strict mode = %t", g.Strict)
	if len(es) > 0 {
		p("------< VRRP Topology >------")
	}
	for _, e := range es {
		d := e.Data
		p(" VRRP Instance = %s", d.IName)
		p("   VRRP Version = %d", d.Version)
		p("   State = %s", stateNames[d.State])
		p("   Wantstate = %s", stateNames[d.WantState])
		if d.LastTransition != 0 {
			sec := float64(d.LastTransition)
			t := time.UnixMicro(int64(sec * 1e6))
			p("   Last transition = %.6f (%s)", sec, t.Format("Mon Jan _2 15:04:05.000000 2006"))
		}
		p("   Interface = %s", d.IfpIfname)
		if d.VMACIfname != "" {
			p("   Use VMAC, i/f %s", d.VMACIfname)
		}
		in := instance(c, d.IName)
		if in != nil {
			if in.Unicast() {
				p("   Unicast Peer(s) :")
				for _, u := range in.UnicastPeers {
					p("     %s", u.Addr)
				}
			} else {
				p("   Multicast address %s", in.MulticastGroup(g))
			}
			p("   Down timer adverts = %d", downAdverts(g.DownTimerAdverts, in.DownTimerAdverts))
		}
		p("   Gratuitous ARP delay = %s", trimFloat(d.GarpDelay))
		p("   Gratuitous ARP repeat = %d", d.GarpRep)
		p("   Gratuitous ARP refresh = %d", d.GarpRefresh)
		p("   Gratuitous ARP refresh repeat = %d", d.GarpRefreshRep)
		p("   Gratuitous ARP lower priority delay = %d", d.GarpLowerPrioDelay)
		p("   Gratuitous ARP lower priority repeat = %d", d.GarpLowerPrioRep)
		p("   Send advert after receive lower priority advert = %t", d.LowerPrioNoAdvert == 0)
		p("   Send advert after receive higher priority advert = %t", d.HigherPrioSendAdvert != 0)
		p("   Virtual Router ID = %d", d.VRID)
		p("   Priority = %d", d.BasePriority)
		p("   Effective priority = %d", d.EffectivePriority)
		p("   Total priority = %d", d.EffectivePriority)
		p("   Advert interval = %s sec", trimFloat(d.AdverInt))
		p("   Accept = %s", onOff(d.Accept != 0, "enabled", "disabled"))
		p("   Preempt = %s", onOff(!d.NoPreempt, "enabled", "disabled"))
		if d.PreemptDelay != 0 {
			p("   Preempt delay = %d secs", d.PreemptDelay)
		}
		p("   Promote_secondaries = %s", onOff(d.PromoteSecondaries, "enabled", "disabled"))
		switch d.AuthType {
		case 1:
			p("   Authentication type = SIMPLE_PASSWORD")
			p("   Password = %s", Masked)
		case 2:
			p("   Authentication type = IPSEC_AH")
			p("   Password = %s", Masked)
		}
		if len(d.VIPs) > 0 {
			p("   Virtual IP (%d):", len(d.VIPs))
			for _, v := range d.VIPs {
				p("     %s", v)
			}
		}
		if len(d.EVIPs) > 0 {
			p("   Virtual IP Excluded :")
			for _, v := range d.EVIPs {
				p("     %s", v)
			}
		}
		if len(d.VRoutes) > 0 {
			p("   Virtual Routes :")
			for _, v := range d.VRoutes {
				p("     %s", v)
			}
		}
		if len(d.VRules) > 0 {
			p("   Virtual Rules :")
			for _, v := range d.VRules {
				p("     %s", v)
			}
		}
		if len(d.TrackIfp) > 0 {
			p("   Tracked interfaces :")
			for _, v := range d.TrackIfp {
				p("     %s", v)
			}
		}
		if len(d.TrackScript) > 0 {
			p("   Tracked scripts :")
			if in != nil {
				for _, t := range in.TrackScripts {
					p("     %s weight %d", t.Name, scriptWeight(c, t))
				}
			}
		}
		for _, s := range []struct{ name, cmd string }{{"Backup", d.ScriptBackup}, {"Master", d.ScriptMaster},
			{"Fault", d.ScriptFault}, {"Stop", d.ScriptStop}, {"Deleted", d.ScriptDeleted}, {"Generic", d.Script}} {
			if s.cmd != "" {
				p("   %s state transition script = %s", s.name, s.cmd)
			}
		}
		p("   Using smtp notification = %s", onOff(d.SMTPAlert, "yes", "no"))
		p("   Notify deleted = %s", onOff(d.NotifyDeleted, "Deleted", "Fault"))
		if in != nil {
			p("   Notify priority changes = %t", boolOr(in.Notify.PriorityChanges, g.NotifyPriorityChanges))
		}
	}
	return bw.Flush()
}

func instance(c *config.Config, name string) *config.Instance {
	for i := range c.Instances {
		if c.Instances[i].Name == name {
			return &c.Instances[i]
		}
	}
	return nil
}

// downAdverts is the adverts a backup misses before it takes over
// (vrrp_down_timer_adverts / down_timer_adverts, default 3).
func downAdverts(global, own int) int {
	switch {
	case own != 0:
		return own
	case global != 0:
		return global
	}
	return 3
}

func scriptWeight(c *config.Config, t config.TrackRef) int {
	if t.Weight != nil {
		return *t.Weight
	}
	for _, s := range c.Scripts {
		if s.Name == t.Name {
			return s.Weight
		}
	}
	return 0
}

// trimFloat prints 1 as "1" and 0.5 as "0.5", as keepalived's %g-like
// output does for whole and fractional seconds.
func trimFloat(f float64) string {
	s := fmt.Sprintf("%f", f)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// WriteFile writes a dump file into dir through a temporary file renamed
// into place, so a reader never sees half a dump; mode 0600 as keepalived's.
func WriteFile(dir, name string, write func(io.Writer) error) (string, error) {
	path := filepath.Join(dir, name)
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return path, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return path, err
	}
	if err := write(f); err != nil {
		f.Close()
		return path, err
	}
	if err := f.Close(); err != nil {
		return path, err
	}
	return path, os.Rename(tmp, path)
}
