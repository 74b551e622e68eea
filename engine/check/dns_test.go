package check

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/keepwatch/keepwatch/engine/config"
)

// dnsServer starts a real miekg/dns server on loopback UDP. It answers SOA
// for the root, NXDOMAIN for anything under bad.example., sleeps on
// slow.example., and answers other names with NOERROR and no records.
func dnsServer(t *testing.T) (net.Addr, func() dns.Question) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	last := &dns.Question{}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		mu.Lock()
		*last = q.Question[0]
		mu.Unlock()
		m := new(dns.Msg)
		m.SetReply(q)
		switch q.Question[0].Name {
		case ".":
			soa, _ := dns.NewRR(". 3600 IN SOA a.root.example. admin.example. 1 2 3 4 5")
			m.Answer = append(m.Answer, soa)
		case "bad.example.":
			m.Rcode = dns.RcodeNameError
		case "slow.example.":
			time.Sleep(time.Second)
		}
		w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: h}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr(), func() dns.Question {
		mu.Lock()
		defer mu.Unlock()
		return *last
	}
}

func TestDNS(t *testing.T) {
	addr, last := dnsServer(t)
	for _, tc := range []struct {
		name, qtype, qname string
		ok                 bool
		reason             string
		timeout            time.Duration
	}{
		{"up/default SOA .", "", "", true, "", time.Second},
		{"up/A without answers", "A", "empty.example", true, "", time.Second},
		{"down/nxdomain", "MX", "bad.example", false, "rcode", time.Second},
		{"slow", "A", "slow.example", false, "timeout", 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := &Target{Type: config.DNSCheck, Addr: addrOf(addr), Timeout: tc.timeout, DNS: &config.DNSSpec{Type: tc.qtype, Name: tc.qname}}
			probe(t, ProbeDNS, tg, tc.ok, tc.reason)
		})
	}
	if q := last(); q.Qtype != dns.TypeA || q.Name != "slow.example." {
		t.Errorf("last query %v", q)
	}
	t.Run("query", func(t *testing.T) {
		tg := &Target{Type: config.DNSCheck, Addr: addrOf(addr), Timeout: time.Second, DNS: &config.DNSSpec{Type: "txt", Name: "x.example"}}
		probe(t, ProbeDNS, tg, true, "")
		if q := last(); q.Qtype != dns.TypeTXT || q.Name != "x.example." || q.Qclass != dns.ClassINET {
			t.Errorf("server saw %v", q)
		}
	})
	t.Run("down/port unreachable", func(t *testing.T) {
		probe(t, ProbeDNS, &Target{Type: config.DNSCheck, Addr: closedPort(t, "udp"), Timeout: time.Second}, false, "refused")
	})
	t.Run("bad type", func(t *testing.T) {
		tg := &Target{Type: config.DNSCheck, Addr: addrOf(addr), Timeout: time.Second, DNS: &config.DNSSpec{Type: "SRVX"}}
		probe(t, ProbeDNS, tg, false, "config")
	})
}
