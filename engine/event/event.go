package event

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Kind says what happened, and so which fields of an Event are meaningful.
type Kind uint8

// The kinds of event (DESIGN.md §3).
const (
	KindUnknown Kind = iota

	// VRRP.
	KindTransition      // Instance, From, To, Reason, Priority (effective)
	KindAdvertSent      // Instance, Priority, Addr (destination), Duration (how late against its schedule)
	KindAdvertReceived  // Instance, Priority (sender's), Addr (sender), Interval
	KindAdvertDropped   // Instance (empty if VRID unknown), Interface, VRID, Reason, Addr (sender)
	KindPriorityChanged // Instance, BasePriority, Priority (effective), Tracker, Value (its contribution)
	KindVIPAdded        // Instance, Addr, Interface
	KindVIPRemoved      // Instance, Addr, Interface
	KindGratuitousSent  // Instance, Addr (VIP), Interface, Family (ARP for IPv4, NA for IPv6)
	KindPeerMaster      // Instance, Addr (master's address), Priority (master's priority)

	// Tracking.
	KindScriptRun        // Name, OK, ExitCode, Duration, Reason (error class)
	KindInterfaceChanged // Interface, OK (up), Reason (ReasonDeleted when it is gone)
	KindFileValue        // Name, Value

	// Checks.
	KindProbe           // Name (checker type), Target, OK, Duration, Reason (error class), Value (1: a failure to log, log_all_failures)
	KindRealServer      // Service, Target, OK (up), Value (weight)
	KindIPVSReconcile   // Added, Changed, Removed, Duration, Err
	KindQuorum          // Service, OK (quorum up)
	KindIPVSUnavailable // Err

	// Agent.
	KindConfigLoaded   // Name (path), Duration
	KindReloadRejected // Name (path), Err
	KindNotifyRun      // Name (script), Instance, OK, ExitCode, Duration, Reason
	KindMailSent       // Name (subject), OK, Err

	// VRRP, added last so the kinds above keep their values.
	KindMasterRxLowerPri // Instance, Priority (ours, effective), Value (the sender's), Addr (sender)
	// Checks, added last too. A checker went up or down (after its
	// retries) and its real server did not change state: keepalived mails
	// for it unless no_checker_emails.
	KindChecker // Service, Target, Name (checker type), OK (the checker up), Value (1 while the real server is up)
)

var kindNames = [...]string{
	KindUnknown:          "unknown",
	KindTransition:       "vrrp.transition",
	KindAdvertSent:       "vrrp.advert_sent",
	KindAdvertReceived:   "vrrp.advert_received",
	KindAdvertDropped:    "vrrp.advert_dropped",
	KindPriorityChanged:  "vrrp.priority_changed",
	KindVIPAdded:         "vrrp.vip_added",
	KindVIPRemoved:       "vrrp.vip_removed",
	KindGratuitousSent:   "vrrp.gratuitous_sent",
	KindPeerMaster:       "vrrp.peer_master",
	KindScriptRun:        "track.script_run",
	KindInterfaceChanged: "track.interface_changed",
	KindFileValue:        "track.file_value",
	KindProbe:            "check.probe",
	KindRealServer:       "check.real_server",
	KindIPVSReconcile:    "ipvs.reconcile",
	KindQuorum:           "ipvs.quorum",
	KindIPVSUnavailable:  "ipvs.unavailable",
	KindConfigLoaded:     "agent.config_loaded",
	KindReloadRejected:   "agent.reload_rejected",
	KindNotifyRun:        "agent.notify_run",
	KindMailSent:         "agent.mail_sent",
	KindMasterRxLowerPri: "vrrp.master_rx_lower_pri",
	KindChecker:          "check.checker",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Reason is a low-cardinality cause: of a transition, of a dropped advert, or
// an error class. Its values are metric label values, so they are fixed strings.
type Reason string

// Transition reasons.
const (
	ReasonPriority     Reason = "priority"      // a higher-priority advert was heard
	ReasonPreempted    Reason = "preempted"     // we preempted a lower-priority master
	ReasonMasterDown   Reason = "master_down"   // Master_Down_Interval expired
	ReasonPriorityZero Reason = "priority_zero" // the master resigned (priority 0 advert)
	ReasonShutdown     Reason = "shutdown"
	ReasonFault        Reason = "fault"
	ReasonFaultCleared Reason = "fault_cleared"
	ReasonSyncGroup    Reason = "sync_group"
	ReasonReload       Reason = "reload"
	ReasonStartup      Reason = "startup"
	ReasonOwner        Reason = "owner" // priority 255 with state MASTER: immediate
)

// TransitionReasons lists every transition reason, so collectors can make
// what a reason's series needs once (as DropReasons does for drops).
var TransitionReasons = [...]Reason{ReasonPriority, ReasonPreempted, ReasonMasterDown,
	ReasonPriorityZero, ReasonShutdown, ReasonFault, ReasonFaultCleared,
	ReasonSyncGroup, ReasonReload, ReasonStartup, ReasonOwner}

// ReasonDeleted on a KindInterfaceChanged event says the interface is gone
// (not merely down): whatever is kept per interface, such as its series,
// can be dropped.
const ReasonDeleted Reason = "deleted"

// Drop reasons, in the order of keepalived's receive checks (reference §2.3).
const (
	DropTTL         Reason = "ttl"
	DropLength      Reason = "length"
	DropChecksum    Reason = "checksum"
	DropVersion     Reason = "version"
	DropType        Reason = "type"
	DropAuthType    Reason = "auth_type"
	DropAuth        Reason = "auth"
	DropInterval    Reason = "interval"
	DropAddressList Reason = "address_list" // counted but accepted (2.3.3+ semantics)
	DropVRIDUnknown Reason = "vrid_unknown"
	DropDestination Reason = "destination"
	DropUnicastSrc  Reason = "unicast_src"
	DropHMAC        Reason = "hmac"
	DropState       Reason = "state" // received in INIT or FAULT
)

// DropReasons lists every drop reason, so collectors can initialise series.
var DropReasons = [...]Reason{DropTTL, DropLength, DropChecksum, DropVersion, DropType,
	DropAuthType, DropAuth, DropInterval, DropAddressList, DropVRIDUnknown,
	DropDestination, DropUnicastSrc, DropHMAC, DropState}

// Event is one thing that happened. It is a flat value, passed by value, so
// emitting one does not allocate; fields not meaningful for its Kind are zero.
type Event struct {
	Kind Kind
	// ID identifies this event; Cause is the ID of the event that led to it
	// (0 if none), so a trace can show the whole chain.
	ID, Cause uint64
	Time      time.Time

	// VRRP identity.
	Instance  string
	VRID      uint8
	Interface string
	Family    vrrp.Family

	From, To vrrp.State
	Reason   Reason

	Priority     int // effective priority, or the sender's for received adverts
	BasePriority int
	Interval     time.Duration // advert interval carried or configured

	Tracker string // which tracker changed the priority
	Name    string // script, checker type, file, path, subject
	Service string // virtual server, "ip:port/proto" or "fwmark:N"
	Target  string // real server or probe target, "ip:port"

	Addr     netip.Addr
	OK       bool
	ExitCode int
	Value    int64
	Duration time.Duration

	Added, Changed, Removed int
	Err                     error
}

// Sink receives events. Emit must not block for long and must not retain
// pointers into the Event beyond the call; slow sinks queue a copy.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

// Emit calls f(e).
func (f SinkFunc) Emit(e Event) { f(e) }

// Discard drops every event.
var Discard Sink = SinkFunc(func(Event) {})

// Multi fans events out to several sinks in order.
type Multi []Sink

// Emit sends e to every sink.
func (m Multi) Emit(e Event) {
	for _, s := range m {
		s.Emit(e)
	}
}

var (
	_ Sink = SinkFunc(nil)
	_ Sink = Multi(nil)
)

var lastID atomic.Uint64

// NewID returns a process-wide unique, non-zero event ID.
func NewID() uint64 { return lastID.Add(1) }
