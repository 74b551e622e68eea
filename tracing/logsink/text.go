package logsink

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TextKey is the attribute holding a record's line in keepalived's words
// ("(VI_1) Entering MASTER STATE"): what the console and syslog print
// instead of the message and fields, so the log reads as keepalived's to
// someone tailing it. JSON keeps it beside the structured fields.
const TextKey = "text"

// text is e's line as keepalived 2.2.7 logs the same occurrence (its
// log_message() calls in keepalived/vrrp/vrrp.c, vrrp_scheduler.c,
// vrrp_track.c and keepalived/check/ipwrapper.c), "" when keepalived logs
// nothing like it; the record then keeps keepwatch's message and fields.
func text(e *event.Event) string {
	in := "(" + e.Instance + ")"
	switch e.Kind {
	case event.KindTransition:
		switch e.To {
		case vrrp.StateMaster:
			return in + " Entering MASTER STATE"
		case vrrp.StateBackup:
			if e.Reason == event.ReasonStartup || e.Reason == event.ReasonReload {
				return in + " Entering BACKUP STATE (init)"
			}
			return in + " Entering BACKUP STATE"
		case vrrp.StateFault:
			return in + " Entering FAULT STATE"
		}
	case event.KindPriorityChanged:
		// keepalived: "(%s) Changing effective priority from %d to %d"; the
		// event has the new priority only.
		return fmt.Sprintf("%s Changing effective priority to %d", in, e.Priority)
	case event.KindVIPAdded, event.KindVIPRemoved:
		verb := "setting"
		if e.Kind == event.KindVIPRemoved {
			verb = "removing"
		}
		s := fmt.Sprintf("%s %s VIP %s", in, verb, e.Addr)
		if e.Err != nil {
			s += " failed: " + e.Err.Error()
		}
		return s
	case event.KindScriptRun:
		switch {
		case e.OK:
			return "VRRP_Script(" + e.Name + ") succeeded"
		case e.Reason == "timeout":
			return "VRRP_Script(" + e.Name + ") timed out"
		}
		return fmt.Sprintf("VRRP_Script(%s) failed (exited with status %d)", e.Name, e.ExitCode)
	case event.KindRealServer:
		rs, vs := kaService(e.Service, e.Target), kaService(e.Service, "")
		if e.OK {
			return "Adding service " + rs + " to VS " + vs
		}
		return "Removing service " + rs + " from VS " + vs
	case event.KindProbe:
		if !e.OK {
			return fmt.Sprintf("%s on service %s failed.", strings.ToUpper(e.Name), kaService(e.Service, e.Target))
		}
	case event.KindQuorum:
		if e.OK {
			return "Gained quorum for VS " + kaService(e.Service, "")
		}
		return "Lost quorum for VS " + kaService(e.Service, "")
	case event.KindIPVSUnavailable:
		if e.Err != nil {
			return "IPVS: Can't initialize ipvs: " + e.Err.Error()
		}
	case event.KindConfigLoaded:
		return "Configuration file " + e.Name
	case event.KindReloadRejected:
		if e.Err != nil {
			return "Reload of " + e.Name + " rejected, keeping the running config: " + e.Err.Error()
		}
	}
	return ""
}

// preText is the line keepalived logs before a transition's own, naming
// its cause, "" for none.
func preText(e *event.Event) string {
	if e.Kind != event.KindTransition || e.To != vrrp.StateMaster {
		return ""
	}
	switch e.Reason {
	case event.ReasonMasterDown:
		return "(" + e.Instance + ") Receive advertisement timeout"
	case event.ReasonPriorityZero:
		return "(" + e.Instance + ") Backup received priority 0 advertisement"
	}
	return ""
}

// kaService writes a virtual server ("192.0.2.100:80/tcp") or one of its
// real servers (target "192.0.2.10:80") as keepalived's FMT_VS/FMT_RS do:
// "[192.0.2.10]:tcp:80"; a fwmark service is "FWM 1".
func kaService(service, target string) string {
	addr, proto, ok := strings.Cut(service, "/")
	if !ok {
		if target != "" {
			return target
		}
		return service
	}
	if target == "" && strings.HasPrefix(addr, "fwmark:") {
		return "FWM " + strings.TrimPrefix(addr, "fwmark:")
	}
	if target != "" {
		addr = target
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return addr
	}
	switch proto {
	case "tcp", "udp", "sctp":
		return fmt.Sprintf("[%s]:%s:%d", ap.Addr(), proto, ap.Port())
	}
	return fmt.Sprintf("[%s]:%d", ap.Addr(), ap.Port()) // a fwmark service's real server

}
