package track

import (
	"math/big"
	"regexp"
	"strconv"
	"testing"
)

// strtolModel is the reference for ParseValue, written differently: a
// regular expression for C's base-0 integer syntax (C11 §7.22.1.4) and
// big.Int for its value.
var strtolModel = regexp.MustCompile(`^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)`)

func modelValue(b []byte) int64 {
	if len(b) > 127 {
		b = b[:127]
	}
	m := strtolModel.FindSubmatch(b)
	if m == nil {
		return 0
	}
	var v big.Int
	if _, ok := v.SetString(string(m[2]), 0); !ok {
		panic("model: " + string(m[2]))
	}
	if string(m[1]) == "-" {
		v.Neg(&v)
	}
	switch {
	case v.Cmp(big.NewInt(254)) > 0:
		return 254
	case v.Cmp(big.NewInt(-254)) < 0:
		return -254
	}
	return v.Int64()
}

func TestParseValue(t *testing.T) {
	for in, want := range map[string]int64{
		"5": 5, " 42 \n": 42, "-3x": -3, "junk": 0, "1000": 254, "-999": -254, "0x1f": 31, "": 0,
		"010": 8, "08": 0, "0x": 0, "0xg": 0, "+7": 7, "+-7": 0, "\v\f12": 12,
		// Go's strconv would read these; C's strtol does not.
		"0b101": 0, "0o17": 0, "1_000": 1, "\u00a012": 0,
		"99999999999999999999999": 254, "-99999999999999999999999": -254,
	} {
		if got := ParseValue([]byte(in)); got != want {
			t.Errorf("ParseValue(%q) = %d, want %d", in, got, want)
		}
		if got := modelValue([]byte(in)); got != want {
			t.Errorf("model(%q) = %d, want %d", in, got, want)
		}
	}
}

// FuzzParseValue: any track_file bytes give a value in [-254, 254] equal
// to what C's strtol reads (the model), and a written integer reads back.
func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"5", " 42 \n", "-3x", "junk", "1000", "0x1f", "010", "0b1", "1_0", "-0x", "\t+0X7fffffffffffffffff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := ParseValue(b)
		if got < -254 || got > 254 {
			t.Fatalf("ParseValue(%q) = %d out of range", b, got)
		}
		if want := modelValue(b); got != want {
			t.Fatalf("ParseValue(%q) = %d, strtol model %d", b, got, want)
		}
		// What init_file writes reads back.
		if v := int64(len(b)) - 300; ParseValue([]byte(strconv.FormatInt(v, 10)+"\n")) != min(max(v, -254), 254) {
			t.Fatalf("value %d does not read back", v)
		}
	})
}
