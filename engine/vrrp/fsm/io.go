package fsm

import (
	"net/netip"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// InputKind says what happened to the instance.
type InputKind uint8

// The inputs. InputTick carries nothing: Step fires whatever timers are due,
// which every Step does before handling its input anyway.
const (
	InputTick InputKind = iota
	InputStart
	InputAdvert           // Advert is set
	InputPriority         // Priority is the new effective priority (engine/track.EffectivePriority)
	InputFault            // an interface or a weight-0 tracker went down
	InputFaultCleared     // it came back
	InputShutdown         // stop: a master resigns with priority 0
	InputSyncMaster       // Group: every member wants MASTER; Reason is reported
	InputSyncBackup       // Group: another member went BACKUP
	InputSyncFault        // Group: another member is in FAULT
	InputSyncFaultCleared // Group: no member is in FAULT any more
	InputSyncLowerPrio    // Group: another member heard a lower priority; re-announce our VIPs too
)

var inputNames = [...]string{
	InputTick:             "tick",
	InputStart:            "start",
	InputAdvert:           "advert",
	InputPriority:         "priority",
	InputFault:            "fault",
	InputFaultCleared:     "fault_cleared",
	InputShutdown:         "shutdown",
	InputSyncMaster:       "sync_master",
	InputSyncBackup:       "sync_backup",
	InputSyncFault:        "sync_fault",
	InputSyncFaultCleared: "sync_fault_cleared",
	InputSyncLowerPrio:    "sync_lower_prio",
}

func (k InputKind) String() string {
	if int(k) < len(inputNames) {
		return inputNames[k]
	}
	return "unknown"
}

// Input is one thing that happened to the instance.
type Input struct {
	Kind     InputKind
	Advert   Advert       // InputAdvert
	Priority int          // InputPriority
	Reason   event.Reason // InputSyncMaster: the reason to report; empty means sync_group
}

// Advert is a received advertisement the codec and the driver have already
// validated (reference §2.3 rows 1-16); the state machine only decides.
type Advert struct {
	Src      netip.Addr    // sender's source address
	Priority int           // 0-255; 0 means the master resigns
	Interval time.Duration // carried Max Adver Int (v3); 0 if unknown
	// AddrMismatch: the address list differs from ours (reference §2.3 row
	// 17). Accepted unless Config.RejectAddressMismatch.
	AddrMismatch bool
}

// ActionKind says what the driver must do.
type ActionKind uint8

// The actions. The driver performs them in the order given: on takeover that
// is SendAdvert, AddVIPs, SendGratuitous (reference §2.6, DESIGN §5).
const (
	ActionSendAdvert      ActionKind = iota + 1 // Priority (0 = resign)
	ActionAddVIPs                               // add every VIP, eVIP, route and rule
	ActionRemoveVIPs                            // remove them
	ActionSendGratuitous                        // Count GARPs / unsolicited NAs per VIP
	ActionNotify                                // State entered, Priority (effective): notify scripts
	ActionNotifyLowerPrio                       // master heard lower Priority (keepalived's notify_master_rx_lower_pri)
	ActionEvent                                 // Event: emit it (driver stamps Time, ID and Cause)
)

var actionNames = [...]string{
	ActionSendAdvert:      "send_advert",
	ActionAddVIPs:         "add_vips",
	ActionRemoveVIPs:      "remove_vips",
	ActionSendGratuitous:  "send_gratuitous",
	ActionNotify:          "notify",
	ActionNotifyLowerPrio: "notify_lower_prio",
	ActionEvent:           "event",
}

func (k ActionKind) String() string {
	if int(k) < len(actionNames) && actionNames[k] != "" {
		return actionNames[k]
	}
	return "unknown"
}

// Action is one thing the driver must do. Fields not meaningful for its Kind
// are zero.
type Action struct {
	Kind     ActionKind
	Priority int
	Count    int
	State    vrrp.State
	Event    event.Event
}
