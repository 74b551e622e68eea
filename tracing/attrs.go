package tracing

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Span names: low-cardinality, "{domain}.{operation}" (STYLE.md, Tracing).
const (
	SpanTransition  = "vrrp.transition"
	SpanAdvert      = "vrrp.advert"
	SpanPriority    = "vrrp.priority"
	SpanVIP         = "vrrp.vip"
	SpanGratuitous  = "vrrp.gratuitous"
	SpanPeerMaster  = "vrrp.peer_master"
	SpanScript      = "track.script"
	SpanInterface   = "track.interface"
	SpanFile        = "track.file"
	SpanProbe       = "check.probe"
	SpanRealServer  = "check.real_server"
	SpanReconcile   = "ipvs.reconcile"
	SpanQuorum      = "ipvs.quorum"
	SpanUnavailable = "ipvs.unavailable"
	SpanConfigLoad  = "agent.config_load"
	SpanNotify      = "notify.script"
	SpanMail        = "notify.mail"
)

// Attribute keys: OpenTelemetry's where the meaning matches
// (network.interface.name, network.peer.address, network.type, error.type,
// server.address, process.exit.code), domain-first keys otherwise.
const (
	KeyInstance       = attribute.Key("vrrp.instance")
	KeyVRID           = attribute.Key("vrrp.vrid")
	KeyStateFrom      = attribute.Key("vrrp.state.from")
	KeyStateTo        = attribute.Key("vrrp.state.to")
	KeyReason         = attribute.Key("vrrp.reason")
	KeyPriority       = attribute.Key("vrrp.priority")
	KeyBasePriority   = attribute.Key("vrrp.priority.base")
	KeyTracker        = attribute.Key("vrrp.tracker")
	KeyTrackerValue   = attribute.Key("vrrp.tracker.value")
	KeyAdvertInterval = attribute.Key("vrrp.advert.interval")
	KeyDirection      = attribute.Key("vrrp.advert.direction")
	KeyVIP            = attribute.Key("vrrp.vip.address")
	KeyVIPAction      = attribute.Key("vrrp.vip.action")
	KeyScript         = attribute.Key("track.script.name")
	KeyUp             = attribute.Key("track.up")
	KeyFile           = attribute.Key("track.file.path")
	KeyFileValue      = attribute.Key("track.file.value")
	KeyChecker        = attribute.Key("check.type")
	KeyResult         = attribute.Key("check.result")
	KeyVirtualServer  = attribute.Key("ipvs.virtual_server")
	KeyRealServer     = attribute.Key("ipvs.real_server")
	KeyWeight         = attribute.Key("ipvs.weight")
	KeyAdded          = attribute.Key("ipvs.added")
	KeyChanged        = attribute.Key("ipvs.changed")
	KeyRemoved        = attribute.Key("ipvs.removed")
	KeyConfigPath     = attribute.Key("config.path")
	KeyNotifyScript   = attribute.Key("notify.script")
	KeyMailSubject    = attribute.Key("notify.mail.subject")
	KeyEventID        = attribute.Key("keepwatch.event.id")
)

func spanName(e *event.Event) (string, trace.SpanKind) {
	switch e.Kind {
	case event.KindTransition:
		return SpanTransition, trace.SpanKindInternal
	case event.KindAdvertSent:
		return SpanAdvert, trace.SpanKindProducer
	case event.KindAdvertReceived, event.KindAdvertDropped:
		return SpanAdvert, trace.SpanKindConsumer
	case event.KindPriorityChanged:
		return SpanPriority, trace.SpanKindInternal
	case event.KindVIPAdded, event.KindVIPRemoved:
		return SpanVIP, trace.SpanKindInternal
	case event.KindGratuitousSent:
		return SpanGratuitous, trace.SpanKindProducer
	case event.KindPeerMaster:
		return SpanPeerMaster, trace.SpanKindInternal
	case event.KindScriptRun:
		return SpanScript, trace.SpanKindInternal
	case event.KindInterfaceChanged:
		return SpanInterface, trace.SpanKindInternal
	case event.KindFileValue:
		return SpanFile, trace.SpanKindInternal
	case event.KindProbe:
		return SpanProbe, trace.SpanKindClient
	case event.KindRealServer:
		return SpanRealServer, trace.SpanKindInternal
	case event.KindIPVSReconcile:
		return SpanReconcile, trace.SpanKindInternal
	case event.KindQuorum:
		return SpanQuorum, trace.SpanKindInternal
	case event.KindIPVSUnavailable:
		return SpanUnavailable, trace.SpanKindInternal
	case event.KindConfigLoaded, event.KindReloadRejected:
		return SpanConfigLoad, trace.SpanKindInternal
	case event.KindNotifyRun:
		return SpanNotify, trace.SpanKindInternal
	case event.KindMailSent:
		return SpanMail, trace.SpanKindClient
	}
	return e.Kind.String(), trace.SpanKindInternal
}

func networkType(f vrrp.Family) attribute.KeyValue {
	if f == vrrp.IPv6 {
		return semconv.NetworkTypeIPv6
	}
	return semconv.NetworkTypeIPv4
}

// attributes builds a span's attributes from the fields meaningful for its
// event's Kind (see event.Kind).
func attributes(e *event.Event) []attribute.KeyValue {
	return appendAttributes(make([]attribute.KeyValue, 0, 12), e, nil)
}

// appendAttributes appends e's span attributes to a. addrs, if not nil,
// spells the addresses.
func appendAttributes(a []attribute.KeyValue, e *event.Event, addrs *addrCache) []attribute.KeyValue {
	n := len(a)
	// Sent and received adverts, thousands of spans a second when every
	// advert is traced, leave out three attributes that say nothing there:
	// the event id (no log record, exemplar or other span refers to an
	// advert's), network.type (network.peer.address says it) and
	// vrrp.advert.direction (the span kind says it: producer is sent,
	// consumer received). Each attribute costs three allocations in the
	// OTLP exporter's transform, about an eighth of an advert span's
	// export cost (issue 12).
	lean := (e.Kind == event.KindAdvertSent || e.Kind == event.KindAdvertReceived) && e.Addr.IsValid()
	// Where vrrp.instance names the instance, such spans also leave out its
	// vrrp.vrid and network.interface.name: within the agent (the span's
	// resource) an instance's name gives both, from its one vrrp_instance
	// block (keepalived skips a second block of the same name, "vrrp
	// instance ... already defined", as engine/config does), and every other
	// span and log record of the instance carries them. With every advert a span,
	// each attribute was an eighth of the span's CPU, the transform's three
	// allocations and the marshal's oneof lookups (issue 12).
	named := lean && e.Instance != ""
	if e.ID != 0 && !lean {
		a = append(a, KeyEventID.Int64(int64(e.ID)))
	}
	if e.Instance != "" {
		a = append(a, KeyInstance.String(e.Instance))
	}
	if (e.Instance != "" || e.VRID != 0) && !named {
		a = append(a, KeyVRID.Int(int(e.VRID)))
	}
	if e.Interface != "" && !named {
		a = append(a, semconv.NetworkInterfaceName(e.Interface))
	}
	if e.Family != 0 && !lean {
		a = append(a, networkType(e.Family))
	}
	switch e.Kind {
	case event.KindTransition:
		a = append(a, KeyStateFrom.String(e.From.String()), KeyStateTo.String(e.To.String()),
			KeyReason.String(string(e.Reason)), KeyPriority.Int(e.Priority))
	case event.KindAdvertSent:
		if !lean {
			a = append(a, KeyDirection.String("sent"))
		}
		a = append(a, KeyPriority.Int(e.Priority))
		// A named instance's advert to VRRP's own multicast group (RFC 9568
		// §5.1.1.2 224.0.0.18, §5.1.2.2 ff02::12) leaves the destination
		// out: it is the same for every such advert of the family, which the
		// instance gives as it gives the vrid. A unicast peer or another
		// group (mcast_dst_ip, vrrp_mcast_group4/6) is kept.
		if !named || (e.Addr != vrrp.GroupIPv4 && e.Addr != vrrp.GroupIPv6) {
			a = appendAddr(a, semconv.NetworkPeerAddressKey, e.Addr, addrs)
		}
	case event.KindAdvertReceived:
		if !lean {
			a = append(a, KeyDirection.String("received"))
		}
		a = append(a, KeyPriority.Int(e.Priority), KeyAdvertInterval.Float64(e.Interval.Seconds()))
		a = appendAddr(a, semconv.NetworkPeerAddressKey, e.Addr, addrs)
	case event.KindAdvertDropped:
		a = append(a, KeyDirection.String("received"), semconv.ErrorTypeKey.String(string(e.Reason)))
		a = appendAddr(a, semconv.NetworkPeerAddressKey, e.Addr, addrs)
	case event.KindPriorityChanged:
		a = append(a, KeyPriority.Int(e.Priority), KeyBasePriority.Int(e.BasePriority),
			KeyTracker.String(e.Tracker), KeyTrackerValue.Int64(e.Value))
	case event.KindVIPAdded, event.KindVIPRemoved:
		action := "add"
		if e.Kind == event.KindVIPRemoved {
			action = "remove"
		}
		a = append(a, KeyVIPAction.String(action))
		a = appendAddr(a, KeyVIP, e.Addr, addrs)
	case event.KindGratuitousSent:
		a = appendAddr(a, KeyVIP, e.Addr, addrs)
	case event.KindPeerMaster:
		a = append(a, KeyPriority.Int(e.Priority))
		a = appendAddr(a, semconv.NetworkPeerAddressKey, e.Addr, addrs)
	case event.KindScriptRun:
		a = append(a, KeyScript.String(e.Name), KeyUp.Bool(e.OK), semconv.ProcessExitCode(e.ExitCode))
	case event.KindInterfaceChanged:
		a = append(a, KeyUp.Bool(e.OK))
	case event.KindFileValue:
		a = append(a, KeyFile.String(e.Name), KeyFileValue.Int64(e.Value))
	case event.KindProbe:
		a = append(a, KeyChecker.String(e.Name), KeyResult.String(result(e.OK)))
		if e.Service != "" {
			a = append(a, KeyVirtualServer.String(e.Service))
		}
		a = appendTarget(a, e.Target)
	case event.KindRealServer:
		a = append(a, KeyVirtualServer.String(e.Service), KeyRealServer.String(e.Target),
			KeyUp.Bool(e.OK), KeyWeight.Int64(e.Value))
	case event.KindChecker:
		a = append(a, KeyVirtualServer.String(e.Service), KeyRealServer.String(e.Target),
			KeyChecker.String(e.Name), KeyUp.Bool(e.OK))
	case event.KindQuorum:
		a = append(a, KeyVirtualServer.String(e.Service), KeyUp.Bool(e.OK))
	case event.KindIPVSReconcile:
		a = append(a, KeyAdded.Int(e.Added), KeyChanged.Int(e.Changed), KeyRemoved.Int(e.Removed))
	case event.KindConfigLoaded, event.KindReloadRejected:
		a = append(a, KeyConfigPath.String(e.Name))
	case event.KindNotifyRun:
		a = append(a, KeyNotifyScript.String(e.Name), semconv.ProcessExitCode(e.ExitCode))
	case event.KindMailSent:
		a = append(a, KeyMailSubject.String(e.Name))
	}
	if et := errorType(e); et != "" && e.Kind != event.KindAdvertDropped {
		a = append(a, semconv.ErrorTypeKey.String(et))
	}
	for i, kv := range a[n:] {
		i += n
		if kv.Value.Type() == attribute.STRING && !utf8.ValidString(kv.Value.AsString()) {
			a[i] = kv.Key.String(validUTF8(kv.Value.AsString()))
		}
	}
	return a
}

// validUTF8 repairs a string for OTLP: protobuf refuses invalid UTF-8 in
// string fields, and one bad config name would fail a whole export batch.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func result(ok bool) string {
	if ok {
		return "success"
	}
	return "failure"
}

func appendAddr(a []attribute.KeyValue, k attribute.Key, addr netip.Addr, addrs *addrCache) []attribute.KeyValue {
	if addr.IsValid() {
		a = append(a, k.String(addrs.text(addr)))
	}
	return a
}

// addrCache remembers how recent addresses are spelled. An advert span's
// network.peer.address is one of a few (the multicast group or the unicast
// peers an advert goes to, the masters heard), and netip.Addr.String
// allocates a new string for every span (issue 12: with every advert a
// span, each allocation is GC work at thousands a second). Direct-mapped,
// so it stays this size whatever the addresses; only the span worker uses
// it.
type addrCache [64]struct {
	addr netip.Addr
	text string
}

// text returns addr.String(), from the cache when it is there. A nil cache
// spells every address anew.
func (c *addrCache) text(addr netip.Addr) string {
	if c == nil {
		return addr.String()
	}
	b := addr.As16()
	h := mix(binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:]))
	sl := &c[h%uint64(len(c))]
	if sl.addr != addr || sl.text == "" {
		sl.addr, sl.text = addr, addr.String()
	}
	return sl.text
}

// appendTarget splits a probe target "ip:port" into server.address and
// server.port; anything else is kept whole in server.address.
func appendTarget(a []attribute.KeyValue, target string) []attribute.KeyValue {
	if target == "" {
		return a
	}
	if ap, err := netip.ParseAddrPort(target); err == nil {
		return append(a, semconv.ServerAddress(ap.Addr().String()), semconv.ServerPort(int(ap.Port())))
	}
	return append(a, semconv.ServerAddress(target))
}

// failed reports whether the event is an error outcome.
func failed(e *event.Event) bool {
	switch e.Kind {
	case event.KindAdvertDropped, event.KindReloadRejected, event.KindIPVSUnavailable:
		return true
	case event.KindScriptRun, event.KindProbe, event.KindNotifyRun, event.KindMailSent:
		return !e.OK
	}
	return e.Err != nil
}

// errorType is error.type: the event's low-cardinality error class if it
// has one, else the Go type of its error.
func errorType(e *event.Event) string {
	if !failed(e) {
		return ""
	}
	if e.Reason != "" {
		return string(e.Reason)
	}
	if e.Err != nil {
		return fmt.Sprintf("%T", e.Err)
	}
	return "_OTHER"
}

func setStatus(sp trace.Span, e *event.Event) {
	if !failed(e) {
		return
	}
	msg := string(e.Reason)
	if e.Err != nil {
		msg = e.Err.Error()
	}
	sp.SetStatus(codes.Error, validUTF8(msg))
}
