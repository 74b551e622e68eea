package obs

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// agentBin is bin/keepwatch built once for the package (TestMain).
var agentBin string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "kwobs")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		agentBin = filepath.Join(dir, "keepwatch")
		build := exec.Command("go", "build", "-o", agentBin, "github.com/keepwatch/keepwatch/cmd/keepwatch")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building keepwatch: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// agent is a keepwatch run process on a lab node.
type agent struct {
	t      testing.TB
	node   *nskit.Node
	proc   *nskit.Proc
	log    *nskittest.Buffer
	scheme string
	addr   string // listen address inside the node's namespace
	client *http.Client
}

// agentOpts are the extra flags of one agent.
type agentOpts struct {
	otlp      string // --otlp.endpoint
	webConfig string // --web.config.file
	advert    float64
	extra     []string
	bin       string // the keepwatch binary; empty: agentBin
}

const listenPort = "9759"

// startAgent writes conf to the node's directory and runs keepwatch on it
// with JSON logs, listening on the node's IPv4 address.
func startAgent(t testing.TB, n *nskit.Node, dir, conf string, o agentOpts) *agent {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("node%d.conf", n.Index))
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(n.IPv4.Addr().String(), listenPort)
	args := []string{"run", "-f", path, "--web.listen-address", addr, "--log.format", "json", "--log.level", "debug"}
	if o.otlp != "" {
		args = append(args, "--otlp.endpoint", o.otlp)
	}
	if o.webConfig != "" {
		args = append(args, "--web.config.file", o.webConfig)
	}
	if o.advert > 0 {
		args = append(args, "--trace.advert-ratio", strconv.FormatFloat(o.advert, 'g', -1, 64))
	}
	args = append(args, o.extra...)
	bin := agentBin
	if o.bin != "" {
		bin = o.bin
	}
	cmd := n.Command(bin, args...)
	// The environment must not point spans anywhere else.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	a := &agent{t: t, node: n, scheme: "http", addr: addr}
	a.proc, a.log = nskittest.Start(t, n, "keepwatch", cmd)
	a.client = nodeClient(n, nil)
	return a
}

// nodeClient is an HTTP client whose connections are opened inside the
// node's namespace: the agent listens there, unreachable from the host's.
func nodeClient(n *nskit.Node, tlsConfig *tls.Config) *http.Client {
	return n.HTTPClient(5*time.Second, tlsConfig)
}

// get fetches path from the agent.
func (a *agent) get(path string, hdr ...string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, a.scheme+"://"+a.addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitReady waits for /-/ready to answer 200.
func (a *agent) waitReady(timeout time.Duration) {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, _, err := a.get("/-/ready")
		if err == nil && code == http.StatusOK {
			return
		}
		select {
		case <-a.proc.Done():
			a.t.Fatalf("node %d agent exited:\n%s", a.node.Index, a.log.String())
		default:
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("node %d agent not ready after %v: %d %v", a.node.Index, timeout, code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape fetches /metrics (text format) and parses it.
func (a *agent) scrape() families {
	a.t.Helper()
	code, body, err := a.get("/metrics")
	if err != nil || code != http.StatusOK {
		a.t.Fatalf("scraping node %d: %d %v", a.node.Index, code, err)
	}
	return parseText(a.t, body)
}

// families are the parsed metric families of one scrape.
type families map[string]*dto.MetricFamily

func parseText(t testing.TB, body string) families {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return mfs
}

// gatherer serves the scraped families to client_golang's testutil.
func (f families) gatherer(names ...string) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		var out []*dto.MetricFamily
		for _, n := range names {
			if mf, ok := f[n]; ok {
				// The text keeps the exposition's label order; a registry
				// sorts labels by name, and testutil compares what it prints.
				for _, m := range mf.GetMetric() {
					sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
				}
				out = append(out, mf)
			}
		}
		return out, nil
	})
}

// value returns the value of the series of name whose labels include
// want (pairs), and whether there is exactly one.
func (f families) value(name string, want ...string) (float64, bool) {
	mf, ok := f[name]
	if !ok {
		return 0, false
	}
	var v float64
	n := 0
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			match = match && labels[want[i]] == want[i+1]
		}
		if !match {
			continue
		}
		n++
		switch {
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Untyped != nil:
			v = m.GetUntyped().GetValue()
		}
	}
	return v, n == 1
}

// must returns the value of one series, failing the test if there is not
// exactly one.
func (f families) must(t testing.TB, name string, want ...string) float64 {
	t.Helper()
	v, ok := f.value(name, want...)
	if !ok {
		t.Fatalf("no single series %s%v", name, want)
	}
	return v
}

// instanceStatus is the part of /api/v1/status the tests read.
type instanceStatus struct {
	Name     string `json:"iname"`
	State    string `json:"state"`
	Priority int    `json:"effective_priority"`
}

func (a *agent) states() map[string]instanceStatus {
	code, body, err := a.get("/api/v1/status")
	if err != nil || code != http.StatusOK {
		return nil
	}
	var doc struct {
		Instances []instanceStatus `json:"vrrp_instances"`
	}
	if json.Unmarshal([]byte(body), &doc) != nil {
		return nil
	}
	out := map[string]instanceStatus{}
	for _, s := range doc.Instances {
		out[s.Name] = s
	}
	return out
}

// waitState waits until the agent reports instance in state.
func (a *agent) waitState(inst, state string, timeout time.Duration) {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := a.states()
		if strings.EqualFold(st[inst].State, state) {
			return
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("node %d: %s is %q after %v, want %s", a.node.Index, inst, st[inst].State, timeout, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// compare asserts that the series of the family name equal want (text
// exposition lines, without HELP and TYPE, which are taken from the
// scrape), with testutil.
func compare(t testing.TB, f families, name, want string) {
	t.Helper()
	mf, ok := f[name]
	if !ok {
		t.Errorf("no family %s", name)
		return
	}
	head := fmt.Sprintf("# HELP %s %s\n# TYPE %s %s\n", name, mf.GetHelp(), name, strings.ToLower(mf.GetType().String()))
	// testutil prints the expected series with their labels in the order
	// written; sort them as the gathered side is.
	wantF := parseText(t, head+want)
	var buf bytes.Buffer
	for _, m := range wantF[name].GetMetric() {
		sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
	}
	if _, err := expfmt.MetricFamilyToText(&buf, wantF[name]); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(f.gatherer(name), &buf, name); err != nil {
		t.Error(err)
	}
}
