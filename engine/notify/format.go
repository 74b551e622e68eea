package notify

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// stateWord is the state as keepalived spells it in notify arguments, FIFO
// lines and mail subjects (vrrp_notify.c), or "" for states it does not
// notify (INIT).
func stateWord(s vrrp.State) string {
	switch s {
	case vrrp.StateMaster:
		return "MASTER"
	case vrrp.StateBackup:
		return "BACKUP"
	case vrrp.StateFault:
		return "FAULT"
	case vrrp.StateStop:
		return "STOP"
	}
	return ""
}

// vrrpLine is a VRRP notify FIFO line: `INSTANCE "VI_1" MASTER 100` or
// `GROUP "G1" BACKUP 0` (groups always carry priority 0), newline-terminated
// (reference §1.8, vrrp_notify.c notify_fifo).
func vrrpLine(group bool, name, state string, prio int) []byte {
	typ := "INSTANCE"
	if group {
		typ = "GROUP"
	}
	b := make([]byte, 0, len(typ)+len(name)+len(state)+10)
	b = append(b, typ...)
	b = append(b, ' ', '"')
	b = append(b, name...)
	b = append(b, '"', ' ')
	b = append(b, state...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(prio), 10)
	return append(b, '\n')
}

// vsLine is an LVS FIFO line for a virtual server's quorum: `VS
// [192.0.2.1]:tcp:80 UP` (check/ipwrapper.c notify_fifo_vs). Released
// keepalived versions write no trailing NUL, so neither do we.
func vsLine(vs string, up bool) []byte {
	return []byte("VS " + vs + " " + upDown(up) + "\n")
}

// rsLine is an LVS FIFO line for a real server: `RS [198.51.100.1]:tcp:80
// [192.0.2.1]:tcp:80 DOWN` (check/ipwrapper.c notify_fifo_rs).
func rsLine(rs, vs string, up bool) []byte {
	return []byte("RS " + rs + " " + vs + " " + upDown(up) + "\n")
}

func upDown(up bool) string {
	if up {
		return "UP"
	}
	return "DOWN"
}

// protoWord is the protocol in keepalived's address trio
// (inet_sockaddrtotrio): a fwmark service has no protocol, "none".
func protoWord(vs *config.VirtualServer) string {
	if vs.FWMark != 0 && vs.Group == "" {
		return "none"
	}
	switch strings.ToUpper(vs.Protocol) {
	case "", "TCP":
		return "tcp"
	case "UDP":
		return "udp"
	case "SCTP":
		return "sctp"
	}
	return "?"
}

// trio formats an address the way keepalived's inet_sockaddrtotrio does:
// `[addr]:proto:port`, brackets for IPv4 too.
func trio(a netip.Addr, proto string, port int) string {
	return "[" + a.Unmap().String() + "]:" + proto + ":" + strconv.Itoa(port)
}

// formatVS is keepalived's FMT_VS: `[192.0.2.1]:tcp:80`, `FWM 5`, or for a
// virtual_server group `[NAME]:port`.
func formatVS(vs *config.VirtualServer) string {
	switch {
	case vs.Group != "":
		return "[" + vs.Group + "]:" + strconv.Itoa(vs.Port)
	case vs.FWMark != 0:
		return "FWM " + strconv.FormatUint(uint64(vs.FWMark), 10)
	}
	return trio(vs.Addr, protoWord(vs), vs.Port)
}

// formatRS is keepalived's FMT_RS: the real server's trio with its virtual
// server's protocol.
func formatRS(vs *config.VirtualServer, rs *config.RealServer) string {
	port := rs.Port
	if port == 0 {
		port = vs.Port
	}
	return trio(rs.Addr, protoWord(vs), port)
}

// Mail subjects and bodies, as keepalived's smtp_alert builds them
// (core/smtp.c; the texts from vrrp/vrrp_notify.c and check/ipwrapper.c).

func instanceSubject(routerID, name string, s vrrp.State) string {
	return "[" + routerID + "] VRRP Instance " + name + " - " + stateSubject(s)
}

func groupSubject(routerID, name string, s vrrp.State) string {
	return "[" + routerID + "] VRRP Group " + name + " - " + stateSubject(s)
}

func rsSubject(routerID, rs, vs string, up bool) string {
	return "[" + routerID + "] Realserver " + rs + " of virtual server " + vs + " - " + upDown(up)
}

func vsSubject(routerID, vs string, up bool) string {
	return "[" + routerID + "] Virtualserver " + vs + " - " + upDown(up)
}

func stateSubject(s vrrp.State) string {
	if s == vrrp.StateStop {
		return "Stopping"
	}
	return "Entering " + stateWord(s) + " state"
}

func instanceBody(s vrrp.State) string {
	switch s {
	case vrrp.StateMaster:
		return "=> VRRP Instance is now owning VRRP VIPs <="
	case vrrp.StateStop:
		return "=> VRRP Instance stopping <="
	}
	return "=> VRRP Instance is no longer owning VRRP VIPs <="
}

func groupBody(s vrrp.State) string {
	if s == vrrp.StateStop {
		return "=> All VRRP group instances are now stopping <="
	}
	return "=> All VRRP group instances are now in " + stateWord(s) + " state <="
}

// rsBody is the checker's text for a real server state change. keepalived
// lets each checker word it; the event carries the checker type in Name
// when the emitter knows it.
func rsBody(checker string, up bool) string {
	verb := "failed"
	if up {
		verb = "succeed"
	}
	switch checker {
	case string(config.TCPCheck):
		return "=> TCP CHECK " + verb + " on service <="
	case string(config.UDPCheck):
		return "=> UDP CHECK " + verb + " on service <="
	case string(config.PingCheck):
		return "=> ICMP CHECK " + verb + " on service <="
	case string(config.DNSCheck):
		return "=> DNS_CHECK: " + verb + " on service <="
	case string(config.MiscCheck):
		return "=> MISC CHECK " + verb + " on service <="
	}
	return "=> CHECK " + verb + " on service <="
}

// vsBody is do_vs_notifies' text: `=> Gained quorum 1+0=1 <= 2 <=`
// (quorum, hysteresis, the threshold crossed, the live weight).
func vsBody(startup, up bool, quorum, hysteresis, weight int) string {
	// The threshold is the one the old state was measured against
	// (ipwrapper.c update_quorum_state): quorum+hysteresis while down,
	// quorum-hysteresis while up. At startup the old state is down.
	var what string
	threshold := quorum + hysteresis
	switch {
	case up && startup:
		what = "Starting with quorum up"
	case up:
		what = "Gained quorum"
	case startup:
		what = "Starting with quorum down"
	default:
		what, threshold = "Lost quorum", quorum-hysteresis
	}
	return "=> " + what + " " + strconv.Itoa(quorum) + "+" + strconv.Itoa(hysteresis) + "=" +
		strconv.Itoa(threshold) + " <= " + strconv.Itoa(weight) + " <="
}

// mailDate is the Date header in keepalived's strftime format
// "%a, %d %b %Y %H:%M:%S %z" (local time).
func mailDate(t time.Time) string { return t.Format("Mon, 02 Jan 2006 15:04:05 -0700") }
