package fsm

import "testing"

func TestScriptTrack(t *testing.T) {
	tests := []struct {
		weight int
		ok     bool
		want   Track
	}{
		{0, true, Track{}},
		{0, false, Track{Fault: true}},
		{10, true, Track{Delta: 10}},
		{10, false, Track{}},
		{-20, true, Track{}},
		{-20, false, Track{Delta: -20}},
	}
	for _, tt := range tests {
		if got := ScriptTrack(tt.weight, tt.ok); got != tt.want {
			t.Errorf("ScriptTrack(%d, %v) = %+v, want %+v", tt.weight, tt.ok, got, tt.want)
		}
	}
}

func TestEffectivePriority(t *testing.T) {
	tests := []struct {
		name   string
		base   int
		tracks []Track
		prio   int
		fault  bool
	}{
		{"no trackers", 100, nil, 100, false},
		{"sum", 100, []Track{{Delta: 10}, {Delta: -30}, {Delta: 5}}, 85, false},
		{"clamped high: never 255", 250, []Track{{Delta: 50}}, 254, false},
		{"clamped low: never 0", 20, []Track{{Delta: -50}}, 1, false},
		{"owner never changed", 255, []Track{{Delta: -100}}, 255, false},
		{"owner still faults", 255, []Track{{Fault: true}}, 255, true},
		{"weight 0 failing", 100, []Track{{Delta: 10}, {Fault: true}}, 110, true},
		{"track value below -253", 100, []Track{{Delta: -254}}, 1, true},
		{"track value -253", 200, []Track{{Delta: -253}}, 1, false},
		{"sum below -253 is only a low priority", 200, []Track{{Delta: -200}, {Delta: -200}}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prio, fault := EffectivePriority(tt.base, tt.tracks)
			if prio != tt.prio || fault != tt.fault {
				t.Errorf("EffectivePriority = %d, %v; want %d, %v", prio, fault, tt.prio, tt.fault)
			}
		})
	}
}
