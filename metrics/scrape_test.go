package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TestOpenMetricsScrape scrapes the registry over HTTP as Prometheus does
// (OpenMetrics negotiated): the transition counters carry their trace id.
func TestOpenMetricsScrape(t *testing.T) {
	m, reg := newTestMetrics(t)
	for _, e := range scenario() {
		m.Emit(e)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^keepwatch_vrrp_master_transitions_total\{[^}]*vrrp_instance="VI_1"\} 1(\.0)? # \{trace_id="4bf92f3577b34da6a3ce929d0e0e4736"\} 1(\.0)?`)
	if !want.Match(body) {
		t.Errorf("no exemplar on master transitions in the OpenMetrics scrape:\n%s", grepLines(body, "transitions_total"))
	}
}

func grepLines(b []byte, s string) []string {
	return regexp.MustCompile(`(?m)^.*`+regexp.QuoteMeta(s)+`.*$`).FindAllString(string(b), -1)
}

// TestConcurrentEmit runs events for declared and undeclared instances from
// several goroutines while the configuration is redeclared and scraped; run
// with -race.
func TestConcurrentEmit(t *testing.T) {
	m, reg := newTestMetrics(t)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				for _, e := range scenario() {
					if g%2 == 1 {
						e.Instance = fmt.Sprintf("VI_%d", i%7)
					}
					m.Emit(e)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			m.Declare(declaration())
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	m.Emit(event.Event{Kind: event.KindTransition, Instance: "VI_1", From: vrrp.StateBackup, To: vrrp.StateMaster})
}
