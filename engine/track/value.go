package track

// maxValueBytes is how much of a track_file counts: the number is at its
// start, and keepalived reads one short buffer of it.
const maxValueBytes = 127

// ParseValue turns a track_file's bytes into its value as keepalived does
// (track_file.c: strtol(buf, NULL, 0) on the file's first bytes): leading
// ASCII white space, an optional sign, then a C integer, hexadecimal after
// 0x, octal after a 0, else decimal, up to the first byte that is not a
// digit of it. No number is 0. The value is clamped to [-254, 254], which
// also stands in for strtol's saturation on overflow. Only the first
// maxValueBytes bytes count.
//
// It is pure and total: any bytes a file holds give a value.
func ParseValue(b []byte) int64 {
	if len(b) > maxValueBytes {
		b = b[:maxValueBytes]
	}
	i := 0
	for i < len(b) && (b[i] == ' ' || (b[i] >= '\t' && b[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	base := int64(10)
	if i < len(b) && b[i] == '0' {
		base = 8
		// "0x" is a hexadecimal prefix only when a hex digit follows;
		// otherwise strtol reads the 0 alone.
		if i+2 < len(b) && (b[i+1] == 'x' || b[i+1] == 'X') && digit(b[i+2], 16) >= 0 {
			base = 16
			i += 2
		}
	}
	var v int64
	for ; i < len(b); i++ {
		d := digit(b[i], base)
		if d < 0 {
			break
		}
		// Saturate well above the clamp: no overflow, same result.
		v = min(v*base+d, 1<<20)
	}
	if neg {
		v = -v
	}
	return min(max(v, -254), 254)
}

// digit is c's value as a digit in base, or -1.
func digit(c byte, base int64) int64 {
	var d int64
	switch {
	case c >= '0' && c <= '9':
		d = int64(c - '0')
	case c >= 'a' && c <= 'f':
		d = int64(c-'a') + 10
	case c >= 'A' && c <= 'F':
		d = int64(c-'A') + 10
	default:
		return -1
	}
	if d >= base {
		return -1
	}
	return d
}
