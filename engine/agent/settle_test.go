package agent

import (
	"net/netip"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/router"
)

// TestStartupSettled: the start-up release waits for the takeover that
// comes Master_Down_Interval after start (issue 12's 1 s rows), and no
// longer than the longest of them for a BACKUP that hears no master.
func TestStartupSettled(t *testing.T) {
	peer := netip.MustParseAddr("192.0.2.2")
	now := time.Now()
	long := now.Add(-time.Minute)                     // last transition long ago
	const down = 3*time.Second + 609*time.Millisecond // v2, 1 s, priority 100
	backup := router.Snapshot{State: vrrp.StateBackup, MasterDown: down, AdvertInterval: time.Second, LastTransition: long}
	following := backup
	following.Master = peer
	master := router.Snapshot{State: vrrp.StateMaster, MasterDown: down, AdvertInterval: time.Second, LastTransition: long}
	fault := router.Snapshot{State: vrrp.StateFault, AdvertInterval: time.Second, LastTransition: long}
	// A master that took over (or a backup that yielded) just now: the
	// takeover's work is under way, and a flapping instance may go on.
	fresh := master
	fresh.LastTransition = now.Add(-settleQuiet / 2)
	quiet := master
	quiet.LastTransition = now.Add(-settleQuiet)
	initial := router.Snapshot{State: vrrp.StateInit, AdvertInterval: time.Second}
	for _, c := range []struct {
		name    string
		snaps   []router.Snapshot
		elapsed time.Duration
		want    bool
	}{
		{"none", nil, 0, true},
		{"master", []router.Snapshot{master}, 0, true},
		{"fault", []router.Snapshot{fault}, 0, true},
		{"backup following a master", []router.Snapshot{following, master}, 0, true},
		{"backup before its takeover", []router.Snapshot{master, backup}, 2 * time.Second, false},
		{"backup just before the bound", []router.Snapshot{backup}, down + settleSlack - time.Millisecond, false},
		{"backup that never heard a master", []router.Snapshot{backup}, down + settleSlack, true},
		{"init", []router.Snapshot{initial, master}, 0, false},
		{"master just now", []router.Snapshot{fresh, following}, 0, false},
		{"master quiet since", []router.Snapshot{quiet, following}, 0, true},
		{"master just now, past the bound", []router.Snapshot{fresh}, time.Hour, false},
		// Not stepped yet: the bound is three intervals and v2's
		// longest skew, not zero.
		{"init, bound not yet", []router.Snapshot{initial}, 3*time.Second + settleSlack, false},
		{"init, bound", []router.Snapshot{initial}, 4*time.Second + settleSlack, true},
		// The longest interval sets the bound for all.
		{"longest interval", []router.Snapshot{backup, {State: vrrp.StateBackup, MasterDown: 10 * time.Second, LastTransition: long}}, down + settleSlack, false},
	} {
		if got := startupSettled(c.snaps, c.elapsed, now); got != c.want {
			t.Errorf("%s: startupSettled(elapsed %v) = %v, want %v", c.name, c.elapsed, got, c.want)
		}
	}
}
