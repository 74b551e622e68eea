package track

import "testing"

func TestBoolContribution(t *testing.T) {
	for _, tc := range []struct {
		weight      int
		reverse, up bool
		delta       int
		fault       bool
	}{
		{0, false, true, 0, false},
		{0, false, false, 0, true},
		{0, true, true, 0, true}, // "weight 0 reverse": down when the script is up
		{0, true, false, 0, false},
		{10, false, true, 10, false},
		{10, false, false, 0, false},
		{10, true, true, -10, false},
		{10, true, false, 0, false},
		{-20, false, true, 0, false},
		{-20, false, false, -20, false},
		{-20, true, false, 20, false},
		{-20, true, true, 0, false},
	} {
		d, f := BoolContribution(tc.weight, tc.reverse, tc.up)
		if d != tc.delta || f != tc.fault {
			t.Errorf("BoolContribution(%d, reverse=%v, up=%v) = %d, %v; want %d, %v", tc.weight, tc.reverse, tc.up, d, f, tc.delta, tc.fault)
		}
	}
}

func TestFileContribution(t *testing.T) {
	for _, tc := range []struct {
		weight  int
		reverse bool
		value   int64
		delta   int
		fault   bool
	}{
		{0, false, 0, 0, false},
		{0, false, 5, 0, true},
		{1, false, 10, 10, false},
		{-2, false, 10, -20, false},
		{2, true, 10, -20, false},
		{10, false, 100, 253, false},
		{-10, false, 100, 0, true}, // clamps to -254: fault
		{1, false, -254, 0, true},
		{1, false, -253, -253, false},
	} {
		d, f := FileContribution(tc.weight, tc.reverse, tc.value)
		if d != tc.delta || f != tc.fault {
			t.Errorf("FileContribution(%d, %v, %d) = %d, %v; want %d, %v", tc.weight, tc.reverse, tc.value, d, f, tc.delta, tc.fault)
		}
	}
}

func TestEffectivePriority(t *testing.T) {
	for _, tc := range []struct{ base, delta, want int }{
		{100, 0, 100}, {100, -20, 80}, {100, -200, 1}, {100, 200, 254}, {255, -100, 255}, {254, 5, 254},
	} {
		if got := EffectivePriority(tc.base, tc.delta); got != tc.want {
			t.Errorf("EffectivePriority(%d, %d) = %d, want %d", tc.base, tc.delta, got, tc.want)
		}
	}
}
