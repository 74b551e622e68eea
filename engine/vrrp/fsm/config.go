package fsm

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Config is what one instance's state machine needs from the configuration.
// Fields are taken literally (a zero GARP repeat sends no gratuitous ARPs);
// start from DefaultConfig to get keepalived's defaults.
type Config struct {
	// Identity, copied into every event.
	Name      string
	VRID      uint8
	Interface string
	Family    vrrp.Family

	// Version is the VRRP version, 2 (RFC 3768) or 3 (RFC 9568).
	Version int
	// Priority is the base priority, 1-255; 255 is the address owner.
	Priority int
	// AdvertInterval is this router's own advert_int.
	AdvertInterval time.Duration
	// Addr is this router's primary address on the interface (or its
	// unicast_src_ip / mcast_src_ip): the master-side tie-break compares it
	// with the sender's (RFC 9568 §6.4.3).
	Addr netip.Addr
	// InitialState is "state MASTER|BACKUP". keepalived honours MASTER at
	// once only at priority 255 (reference §2.4 "Startup"); below that it
	// waits Master_Down_Interval like BACKUP.
	InitialState vrrp.State

	// NoPreempt: a backup accepts every advert, so it never takes over from a
	// live master, even a lower-priority one (reference §2.5).
	NoPreempt bool
	// PreemptDelay: how long a backup keeps accepting a lower-priority
	// master after first hearing it, before it preempts (0-1000 s).
	PreemptDelay time.Duration
	// DownTimerAdverts is the number of advert intervals in
	// Master_Down_Interval (keepalived's down_timer_adverts, 1-100); 0 means 3.
	DownTimerAdverts int
	// LowerPrioNoAdvert stops the master answering a lower-priority advert
	// with an immediate advert of its own (RFC 9568 behaviour).
	LowerPrioNoAdvert bool
	// HigherPrioSendAdvert makes a master that yields to a higher priority
	// send one last advert before it goes BACKUP.
	HigherPrioSendAdvert bool
	// OwnerIgnoreAdverts: at priority 255 every received advert is ignored
	// (keepalived's owner_ignore_adverts, forced by strict mode).
	OwnerIgnoreAdverts bool
	// RejectAddressMismatch restores keepalived ≤2.3.2 semantics: an advert
	// whose address list differs from ours is ignored (reference §2.3 row
	// 17). The default follows 2.3.3+: accepted (the driver counts it).
	RejectAddressMismatch bool
	// StartupDelay is vrrp_startup_delay, counted from InputStart: until it
	// has passed every received advert is discarded and the first
	// Master_Down_Timer (or an owner's immediate takeover) waits for it, so
	// a restarted router does not take over before it has heard its peers
	// (keepalived vrrp_daemon.c start_vrrp sets vrrp_delayed_start_time;
	// vrrp_scheduler.c drops packets and defers timers until then). The
	// driver passes it only at the agent's first start, not on a reload,
	// as keepalived does.
	StartupDelay time.Duration

	GARP GARP
}

// GARP is the gratuitous ARP / unsolicited NA schedule (reference §2.6).
// Counts are per VIP; the driver turns one SendGratuitous action into that
// many packets for every VIP.
type GARP struct {
	MasterRepeat        int           // garp_master_repeat: burst on becoming master
	MasterDelay         time.Duration // garp_master_delay: second burst after this; 0 = none
	MasterRefresh       time.Duration // garp_master_refresh: periodic burst; 0 = off
	MasterRefreshRepeat int           // garp_master_refresh_repeat
	LowerPrioRepeat     int           // garp_lower_prio_repeat: burst when the master hears a lower priority
	LowerPrioDelay      time.Duration // garp_lower_prio_delay: second such burst after this; 0 = none
}

// DefaultGARP is keepalived's schedule: 5 at takeover, 5 more after 5 s, no
// refresh, and the lower-priority bursts following the master ones.
func DefaultGARP() GARP {
	return GARP{
		MasterRepeat:        5,
		MasterDelay:         5 * time.Second,
		MasterRefreshRepeat: 1,
		LowerPrioRepeat:     5,
		LowerPrioDelay:      5 * time.Second,
	}
}

// DefaultConfig returns keepalived's defaults for an instance: version 2,
// priority 100, advert_int 1 s, BACKUP, preempt, down_timer_adverts 3.
func DefaultConfig() Config {
	return Config{
		Family:           vrrp.IPv4,
		Version:          2,
		Priority:         100,
		AdvertInterval:   time.Second,
		InitialState:     vrrp.StateBackup,
		DownTimerAdverts: 3,
		GARP:             DefaultGARP(),
	}
}

// ErrConfig is wrapped by every error New returns.
var ErrConfig = errors.New("invalid state machine config")

func (c *Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: vrid %d: %s", ErrConfig, c.VRID, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Version != 2 && c.Version != 3:
		return bad("version %d, want 2 or 3", c.Version)
	case c.Priority < 1 || c.Priority > 255:
		return bad("priority %d out of 1-255", c.Priority)
	case c.AdvertInterval <= 0:
		return bad("advert interval %v must be positive", c.AdvertInterval)
	case !c.Addr.IsValid():
		return bad("no primary address")
	case c.DownTimerAdverts < 0 || c.DownTimerAdverts > 100:
		return bad("down_timer_adverts %d out of 1-100", c.DownTimerAdverts)
	case c.PreemptDelay < 0:
		return bad("negative preempt_delay")
	case c.StartupDelay < 0:
		return bad("negative vrrp_startup_delay")
	case c.InitialState != vrrp.StateInit && c.InitialState != vrrp.StateBackup && c.InitialState != vrrp.StateMaster:
		return bad("initial state %v", c.InitialState)
	case c.GARP.MasterRepeat < 0 || c.GARP.MasterRefreshRepeat < 0 || c.GARP.LowerPrioRepeat < 0:
		return bad("negative GARP repeat")
	case c.GARP.MasterDelay < 0 || c.GARP.MasterRefresh < 0 || c.GARP.LowerPrioDelay < 0:
		return bad("negative GARP delay")
	}
	return nil
}
