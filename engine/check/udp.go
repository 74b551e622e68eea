package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// defaultMaxReply is keepalived's default max_reply_length (check_udp.c).
const defaultMaxReply = 255

// ErrReplyMismatch is the error of a UDP reply that differs from require_reply.
var ErrReplyMismatch = errors.New("udp reply does not match require_reply")

// ProbeUDP is UDP_CHECK: send payload (possibly empty) on a connected UDP
// socket and wait up to connect_timeout. An ICMP port unreachable (read
// as ECONNREFUSED on the connected socket) is down. With require_reply a
// reply must arrive, and when a pattern is given its length must be within
// [min_reply_length, max_reply_length] (default 0-255) and its first bytes
// must match the pattern; keepalived compares only the shorter of the reply
// and the pattern (check_udp.c check_udp_reply). Without require_reply,
// silence until the timeout is up.
func ProbeUDP(ctx context.Context, t *Target) Result {
	dl := deadline(ctx, t)
	dctx, cancel := context.WithDeadline(ctx, dl)
	defer cancel()
	c, err := dial(dctx, "udp", t)
	if err != nil {
		return failErr(dctx, err, ReasonConnect)
	}
	defer c.Close()
	stop := context.AfterFunc(dctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c.SetDeadline(dl)
	var payload []byte
	require := false
	if t.UDP != nil {
		payload, require = t.UDP.Payload, t.UDP.RequireReply
	}
	if _, err := c.Write(payload); err != nil {
		return failErr(dctx, err, ReasonIO)
	}
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	switch {
	case err == nil:
	case errors.Is(err, syscall.ECONNREFUSED):
		// ICMP port unreachable: the kernel reports it as a refusal.
		return fail(ReasonRefused, fmt.Errorf("icmp port unreachable: %w", err))
	case !require && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil && !time.Now().Before(dl):
		// No answer and no ICMP error: up, as keepalived's udp_socket_state.
		return ok
	default:
		return failErr(dctx, err, ReasonIO)
	}
	pat := t.udpPattern
	if pat == nil && t.UDP != nil && t.UDP.ReplyPattern != "" {
		if pat, err = ParsePattern(t.UDP.ReplyPattern); err != nil {
			return fail(ReasonConfig, err)
		}
	}
	if pat != nil {
		minLen, maxLen := t.UDP.MinReplyLength, t.UDP.MaxReplyLength
		if maxLen == 0 {
			maxLen = defaultMaxReply
		}
		if n < minLen || n > maxLen {
			return fail(ReasonMismatch, fmt.Errorf("%w: length %d not in [%d, %d]", ErrReplyMismatch, n, minLen, maxLen))
		}
		if !pat.Match(buf[:n]) {
			return fail(ReasonMismatch, fmt.Errorf("%w: got %x", ErrReplyMismatch, buf[:n]))
		}
	}
	return ok
}

// Pattern is a require_reply hex pattern: a byte must equal data where mask
// is 0; an 'x' nibble sets its mask bits (any value).
type Pattern struct {
	data, mask []byte
}

// ParsePattern parses a require_reply pattern: hex digits, two a byte,
// with 'x' for a wildcard nibble; spaces are ignored.
func ParsePattern(s string) (*Pattern, error) {
	s = strings.Join(strings.Fields(s), "")
	if s == "" || len(s)%2 != 0 {
		return nil, fmt.Errorf("require_reply %q: want an even, non-zero number of hex digits", s)
	}
	p := &Pattern{data: make([]byte, len(s)/2), mask: make([]byte, len(s)/2)}
	for i := 0; i < len(s); i++ {
		shift := uint(4 * (1 - i%2))
		c := s[i]
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		case c == 'x' || c == 'X':
			p.mask[i/2] |= 0xf << shift
			continue
		default:
			return nil, fmt.Errorf("require_reply %q: bad hex digit %q", s, c)
		}
		p.data[i/2] |= v << shift
	}
	return p, nil
}

// Match reports whether the first min(len(b), len(p.data)) bytes of b match.
func (p *Pattern) Match(b []byte) bool {
	n := min(len(b), len(p.data))
	for i := range n {
		if (b[i]^p.data[i])&^p.mask[i] != 0 {
			return false
		}
	}
	return true
}
