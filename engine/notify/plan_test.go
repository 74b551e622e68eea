package notify

import (
	"testing"

	"github.com/keepwatch/keepwatch/engine/config"
)

// TestPlanSharesTargets: instances with the same notify settings (most
// often none) share one target; one with a script or mail of its own has
// its own, with what it configured (targets, issue 12).
func TestPlanSharesTargets(t *testing.T) {
	c := &config.Config{Instances: []config.Instance{{Name: "VI_1"}, {Name: "VI_2"}, {Name: "VI_3"}, {Name: "VI_4"}}}
	master := &config.Script{Command: "/bin/true", Args: []string{"/bin/true"}}
	c.Instances[2].Notify.Master = master
	c.Instances[3].Notify.SMTPAlert = ptr(true)
	p := compile(c)
	if p.instances["VI_1"] != p.instances["VI_2"] {
		t.Error("VI_1 and VI_2 (no notify settings) have a target each, want one shared")
	}
	if got := p.instances["VI_3"]; got == p.instances["VI_1"] || got.notify.Master != master {
		t.Errorf("VI_3's target: shared %v, notify_master %v; want its own with its script", got == p.instances["VI_1"], got.notify.Master)
	}
	if got := p.instances["VI_4"]; got == p.instances["VI_1"] || !got.mail {
		t.Errorf("VI_4's target: shared %v, mail %v; want its own with mail", got == p.instances["VI_1"], got.mail)
	}
	if p.instances["VI_1"].mail || p.instances["VI_1"].notify != (config.Notify{}) {
		t.Errorf("VI_1's target %+v, want none of VI_3's or VI_4's settings", *p.instances["VI_1"])
	}
}
