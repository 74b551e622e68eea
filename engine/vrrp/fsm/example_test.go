package fsm_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/fsm"
)

// A driver owns one Machine: it feeds it inputs with the monotonic time,
// performs the actions in order, and sleeps until NextDeadline.
func Example() {
	cfg := fsm.DefaultConfig()
	cfg.Name, cfg.VRID, cfg.Interface = "VI_1", 51, "eth0"
	cfg.Addr = netip.MustParseAddr("192.0.2.1")
	cfg.Priority = 150
	m, err := fsm.New(cfg)
	if err != nil {
		panic(err)
	}
	do := func(acts []fsm.Action) {
		for _, a := range acts {
			switch a.Kind {
			case fsm.ActionSendAdvert:
				fmt.Println("send advert, priority", a.Priority)
			case fsm.ActionAddVIPs, fsm.ActionRemoveVIPs:
				fmt.Println(a.Kind)
			case fsm.ActionSendGratuitous:
				fmt.Println("gratuitous ARPs per VIP:", a.Count)
			case fsm.ActionNotify:
				fmt.Println("notify", a.State)
			}
		}
	}
	do(m.Step(0, fsm.Input{Kind: fsm.InputStart}))
	// No master is heard: the timer fires at Master_Down_Interval.
	at, _ := m.NextDeadline()
	fmt.Println("timer at", at)
	do(m.Step(at, fsm.Input{}))
	// SIGTERM.
	do(m.Step(at+time.Second/2, fsm.Input{Kind: fsm.InputShutdown}))
	fmt.Println(m.State() == vrrp.StateStop)
	// Output:
	// notify backup
	// timer at 3.4140625s
	// send advert, priority 150
	// add_vips
	// gratuitous ARPs per VIP: 5
	// notify master
	// send advert, priority 0
	// remove_vips
	// notify stop
	// true
}
