package vrrp

// State is the state of a VRRP instance (RFC 9568 §6.4, plus keepalived's FAULT).
type State uint8

// The states. Values are stable: metrics export them as labels via String.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	// StateFault is keepalived's: an interface or a tracker with weight 0
	// is down, so the instance neither sends nor answers adverts.
	StateFault
	// StateStop is reported once when an instance is stopped or deleted.
	StateStop
)

// States lists every state in order, so collectors can initialise one series each.
var States = [...]State{StateInit, StateBackup, StateMaster, StateFault, StateStop}

func (s State) String() string {
	switch s {
	case StateInit:
		return "init"
	case StateBackup:
		return "backup"
	case StateMaster:
		return "master"
	case StateFault:
		return "fault"
	case StateStop:
		return "stop"
	}
	return "unknown"
}

// Family is an address family of an instance.
type Family uint8

// Families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	}
	return "unknown"
}
