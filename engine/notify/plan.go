package notify

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/keepwatch/keepwatch/engine/check"
	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/script"
)

// plan is a config compiled for the notifier: what to run and send for each
// instance, sync group, virtual and real server. It is immutable once
// built, so Update can swap it while the workers read the old one.
type plan struct {
	instances map[string]*target
	groups    map[string]*target
	// deleted are instances earlier configs had and this one has not: a
	// reload deleted them (Notifier.Update).
	deleted  map[string]*target
	services map[string]*service // by check.ServiceName

	scripts script.Policy // script_user, enable_script_security

	mail          *mailConfig // nil: no mail can be sent
	noEmailFaults bool
	anyPrio       bool // some instance has notify_priority_changes
	rsInit        bool // rs_init_notifies
	// noCheckerEmails: no mail for a checker change that leaves its real
	// server's state as it was (no_checker_emails).
	noCheckerEmails bool

	fifos [3]*config.FIFO // notify_fifo, vrrp_notify_fifo, lvs_notify_fifo
}

// target is an instance's or sync group's notify settings.
type target struct {
	notify config.Notify
	mail   bool // smtp_alert after keepalived's precedence
	// prio: the instance's notify_priority_changes, else its sync
	// group's, else the global vrrp_notify_priority_changes. keepalived
	// 2.2.7, tried: a group's notify_priority_changes makes its member
	// write `INSTANCE "VI_1" BACKUP_PRIORITY 105`.
	prio bool
}

// targets hands out one *target per value to the instances of one
// compile: most instances have no notify script, no mail and no priority
// notifications, and share one target rather than hold 80 bytes each for
// the agent's life (issue 12). A target is not written once made.
type targets map[target]*target

func (ts targets) of(t target) *target {
	p := ts[t]
	if p == nil {
		p = &t
		ts[t] = p
	}
	return p
}

type service struct {
	vs      *config.VirtualServer
	display string // FMT_VS
	mail    bool
	servers map[string]*server // by check's Target ("ip:port")
}

type server struct {
	rs      *config.RealServer
	display string // FMT_RS
	mail    bool
}

// mailConfig is what sending needs from global_defs.
type mailConfig struct {
	server   string // host:port
	from     string
	to       []string
	helo     string
	routerID string
	timeout  time.Duration // smtp_connect_timeout: bounds the connect and every reply
}

const (
	fifoAll  = 0
	fifoVRRP = 1
	fifoLVS  = 2
)

// localName is keepalived's get_local_name(): the host name, which is the
// default router_id, HELO name and sender domain.
func localName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return ""
	}
	return h
}

// smtpAlert resolves one smtp_alert switch: the object's own setting, else
// the specific global (smtp_alert_vrrp / smtp_alert_checker), else the
// global smtp_alert, else def (false for VRRP and virtual servers, true for
// real servers, for backwards compatibility: keepalived vrrp.c,
// check_data.c).
func smtpAlert(own, specific, global *bool, def bool) bool {
	for _, b := range []*bool{own, specific, global} {
		if b != nil {
			return *b
		}
	}
	return def
}

func compile(c *config.Config) *plan {
	g := &c.Global
	p := &plan{
		instances:       make(map[string]*target, len(c.Instances)),
		groups:          make(map[string]*target, len(c.SyncGroups)),
		services:        make(map[string]*service, len(c.VirtualServers)),
		scripts:         script.Policy{User: g.ScriptUser, Group: g.ScriptGroup, Security: g.EnableScriptSecurity},
		noEmailFaults:   g.NoEmailFaults,
		rsInit:          g.RSInitNotifies,
		noCheckerEmails: g.NoCheckerEmails,
		fifos:           [3]*config.FIFO{g.NotifyFIFO, g.VRRPNotifyFIFO, g.LVSNotifyFIFO},
	}
	// The same FIFO as notify_fifo and a specific one would get every
	// line twice; keepalived ignores the specific one (global_data.c).
	for i := fifoVRRP; i <= fifoLVS; i++ {
		if p.fifos[i] != nil && p.fifos[fifoAll] != nil && p.fifos[i].Path == p.fifos[fifoAll].Path {
			p.fifos[i] = nil
		}
	}
	same := targets{}
	groupPrio := map[string]*bool{}
	for i := range c.SyncGroups {
		for _, m := range c.SyncGroups[i].Members {
			groupPrio[m] = c.SyncGroups[i].Notify.PriorityChanges
		}
	}
	for i := range c.Instances {
		in := &c.Instances[i]
		prio := g.NotifyPriorityChanges
		for _, b := range []*bool{groupPrio[in.Name], in.Notify.PriorityChanges} {
			if b != nil {
				prio = *b
			}
		}
		p.anyPrio = p.anyPrio || prio
		p.instances[in.Name] = same.of(target{notify: in.Notify, prio: prio,
			mail: smtpAlert(in.Notify.SMTPAlert, g.SMTPAlertVRRP, g.SMTPAlert, false)})
	}
	for i := range c.SyncGroups {
		sg := &c.SyncGroups[i]
		p.groups[sg.Name] = &target{notify: sg.Notify,
			mail: smtpAlert(sg.Notify.SMTPAlert, g.SMTPAlertVRRP, g.SMTPAlert, false)}
	}
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		s := &service{vs: vs, display: formatVS(vs), servers: make(map[string]*server, len(vs.RealServers)),
			mail: smtpAlert(vs.SMTPAlert, g.SMTPAlertChecker, g.SMTPAlert, false)}
		for k := range vs.RealServers {
			rs := &vs.RealServers[k]
			port := rs.Port
			if port == 0 {
				port = vs.Port
			}
			key := netip.AddrPortFrom(rs.Addr, uint16(port)).String()
			s.servers[key] = &server{rs: rs, display: formatRS(vs, rs),
				mail: smtpAlert(rs.SMTPAlert, g.SMTPAlertChecker, g.SMTPAlert, true)}
		}
		p.services[check.ServiceName(vs)] = s
	}
	// keepalived sends mail only with a recipient and a server
	// (core/smtp.c smtp_alert).
	if len(g.NotificationEmail) > 0 && g.SMTPServer != "" {
		local := localName()
		m := &mailConfig{to: g.NotificationEmail, from: g.NotificationEmailFrom,
			helo: g.SMTPHeloName, routerID: g.RouterID, timeout: g.SMTPConnectTimeout}
		if m.timeout <= 0 {
			m.timeout = config.DefaultSMTPTimeout
		}
		port := g.SMTPPort
		if port == 0 {
			port = config.DefaultSMTPPort
		}
		m.server = net.JoinHostPort(g.SMTPServer, strconv.Itoa(port))
		// Defaults from keepalived's global_data.c: all from the local
		// host name (not router_id), "localhost" for HELO without one.
		if m.routerID == "" {
			m.routerID = local
		}
		if m.from == "" && local != "" {
			m.from = "keepalived@" + local
		}
		if m.helo == "" {
			m.helo = local
		}
		if m.helo == "" {
			m.helo = "localhost"
		}
		p.mail = m
	}
	return p
}
