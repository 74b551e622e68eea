package check

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/keepwatch/keepwatch/engine/config"
)

// dnsTypes are the query types DNS_CHECK accepts (keepalived check_dns.h).
var dnsTypes = map[string]uint16{
	"A": dns.TypeA, "NS": dns.TypeNS, "CNAME": dns.TypeCNAME, "SOA": dns.TypeSOA,
	"MX": dns.TypeMX, "TXT": dns.TypeTXT, "AAAA": dns.TypeAAAA,
	"RRSIG": dns.TypeRRSIG, "DNSKEY": dns.TypeDNSKEY,
}

// ProbeDNS is DNS_CHECK: one UDP query (RD set, random ID) for name and
// type, default `. SOA`. Replies with another ID, or that are not responses,
// or are shorter than a header are ignored and the wait goes on, as keepalived's
// dns_recv_thread does; the first matching reply decides: RCODE NOERROR is
// up whatever the answer section holds, any other RCODE is down.
func ProbeDNS(ctx context.Context, t *Target) Result {
	qtype, name := uint16(dns.TypeSOA), config.DefaultDNSName
	if t.DNS != nil {
		if t.DNS.Type != "" {
			var found bool
			if qtype, found = dnsTypes[strings.ToUpper(t.DNS.Type)]; !found {
				return fail(ReasonConfig, fmt.Errorf("DNS_CHECK type %q unknown", t.DNS.Type))
			}
		}
		if t.DNS.Name != "" {
			name = t.DNS.Name
		}
	}
	q := new(dns.Msg)
	q.Id = uint16(rand.Uint32())
	q.RecursionDesired = true
	q.Question = []dns.Question{{Name: dns.Fqdn(name), Qtype: qtype, Qclass: dns.ClassINET}}
	wire, err := q.Pack()
	if err != nil {
		return fail(ReasonConfig, fmt.Errorf("DNS_CHECK name %q: %w", name, err))
	}

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
	if _, err := c.Write(wire); err != nil {
		return failErr(dctx, err, ReasonIO)
	}
	// One datagram at a time into one buffer: however many replies a
	// server sends, and however long, the probe holds one (truncated to
	// the largest DNS message), and the deadline ends the wait.
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, err := c.Read(buf)
		if err != nil {
			// ECONNREFUSED here is the ICMP port unreachable of a down server.
			return failErr(dctx, err, ReasonIO)
		}
		if r, done := dnsReply(buf[:n], q.Id); done {
			return r
		}
	}
}

// dnsReply judges one datagram received for the query with ID id: done is
// false when it is not the answer (ignored, the wait goes on). Like
// keepalived, it judges by the 12-byte header alone (RFC 1035 §4.1.1): ID,
// QR and RCODE; the sections need not even parse.
func dnsReply(b []byte, id uint16) (r Result, done bool) {
	if len(b) < 12 || binary.BigEndian.Uint16(b) != id || b[2]&0x80 == 0 {
		return Result{}, false
	}
	if rcode := int(b[3] & 0x0f); rcode != dns.RcodeSuccess {
		return fail(ReasonRcode, fmt.Errorf("%w: %s", errRcode, dns.RcodeToString[rcode])), true
	}
	return ok, true
}

var errRcode = errors.New("dns reply is not NOERROR")
