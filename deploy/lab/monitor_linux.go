package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MonitorOptions describe the monitoring stack of `keepwatch lab --observe`.
type MonitorOptions struct {
	// Targets are the agents' HTTP addresses as the host reaches them
	// (the lab's proxies, 127.0.0.1:PORT).
	Targets []string
	// Rules and Alertmanager are the rule file and Alertmanager config
	// (the bundled alerts/keepwatch.rules.yml and alertmanager.yml); the
	// Alertmanager config's webhook URLs are pointed at the monitor.
	Rules, Alertmanager []byte
	// Dir holds their files and storage.
	Dir string
	// PrometheusAddr and AlertmanagerAddr are where they listen.
	PrometheusAddr, AlertmanagerAddr string
	// Notify receives every alert Alertmanager notifies, as it arrives.
	Notify func(Notification)
}

// Notification is one alert of an Alertmanager webhook notification.
type Notification struct {
	At       time.Time
	Receiver string
	Status   string // firing or resolved
	Labels   map[string]string
}

// String is the alert's name and identifying labels.
func (n Notification) String() string {
	var keys []string
	for k := range n.Labels {
		if k != "alertname" && k != "severity" && k != "job" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(n.Labels["alertname"])
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, n.Labels[k])
	}
	return b.String()
}

// Monitor is a real Prometheus and Alertmanager (the Debian packages)
// scraping the lab every second and evaluating its rules.
type Monitor struct {
	o     MonitorOptions
	procs []*exec.Cmd
	srv   *http.Server
}

// MissingTools says what is not installed, and how to install it.
func MissingTools() error {
	var missing []string
	for _, bin := range []string{"prometheus", "prometheus-alertmanager"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("--observe needs %s (Debian: apt-get install %s)", strings.Join(missing, " and "), strings.Join(missing, " "))
	}
	return nil
}

// PrometheusConfig is the Prometheus configuration of the lab's monitoring
// stack and of the paging tests: 1 s scrapes and evaluations (a page can be
// no faster than one of each), the rules file, one Alertmanager, and the
// agents as job "keepwatch", the selector the bundled rules use.
func PrometheusConfig(rules, alertmanager string, targets []string) []byte {
	return fmt.Appendf(nil, `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %s
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['%s']
scrape_configs:
  - job_name: keepwatch
    static_configs:
      - targets: ['%s']
`, rules, alertmanager, strings.Join(targets, "', '"))
}

// StartMonitor starts Alertmanager, a webhook receiver for it and
// Prometheus, and waits until both answer.
func StartMonitor(ctx context.Context, o MonitorOptions) (*Monitor, error) {
	if err := MissingTools(); err != nil {
		return nil, err
	}
	m := &Monitor{o: o}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m.srv = &http.Server{Handler: http.HandlerFunc(m.webhook), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = m.srv.Serve(ln) }()
	const shippedURL = "http://127.0.0.1:9095/"
	am := strings.ReplaceAll(string(o.Alertmanager), shippedURL, "http://"+ln.Addr().String()+"/")
	rules := filepath.Join(o.Dir, "keepwatch.rules.yml")
	amConf := filepath.Join(o.Dir, "alertmanager.yml")
	promConf := filepath.Join(o.Dir, "prometheus.yml")
	prom := PrometheusConfig(rules, o.AlertmanagerAddr, o.Targets)
	for path, b := range map[string][]byte{rules: o.Rules, amConf: []byte(am), promConf: prom} {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			m.Close()
			return nil, err
		}
	}
	for _, args := range [][]string{
		{"prometheus-alertmanager", "--config.file=" + amConf, "--storage.path=" + filepath.Join(o.Dir, "am"),
			"--web.listen-address=" + o.AlertmanagerAddr, "--cluster.listen-address="},
		{"prometheus", "--config.file=" + promConf, "--storage.tsdb.path=" + filepath.Join(o.Dir, "tsdb"),
			"--web.listen-address=" + o.PrometheusAddr},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		log, err := os.Create(filepath.Join(o.Dir, filepath.Base(args[0])+".log"))
		if err != nil {
			m.Close()
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = log, log
		// The kernel stops them if the lab dies without Close.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			log.Close()
			m.Close()
			return nil, err
		}
		log.Close()
		m.procs = append(m.procs, cmd)
	}
	for _, addr := range []string{o.AlertmanagerAddr, o.PrometheusAddr} {
		if err := waitReady(ctx, "http://"+addr+"/-/ready", 30*time.Second); err != nil {
			m.Close()
			return nil, fmt.Errorf("%s: %w (logs in %s)", addr, err, o.Dir)
		}
	}
	return m, nil
}

func waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("not ready")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (m *Monitor) webhook(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Receiver string `json:"receiver"`
		Alerts   []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now()
	for _, a := range msg.Alerts {
		if m.o.Notify != nil {
			m.o.Notify(Notification{At: now, Receiver: msg.Receiver, Status: a.Status, Labels: a.Labels})
		}
	}
}

// WaitScraped waits until Prometheus has scraped every target a few
// times: an alert on a counter's increase (KeepwatchVIPMoved) needs a
// sample from before the change.
func (m *Monitor) WaitScraped(ctx context.Context, timeout time.Duration) error {
	q := fmt.Sprintf(`count(count_over_time(up{job="keepwatch"}[1m]) >= 3) == %d`, len(m.o.Targets))
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.o.PrometheusAddr+"/api/v1/query?query="+url.QueryEscape(q), nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			var doc struct {
				Data struct {
					Result []json.RawMessage `json:"result"`
				} `json:"data"`
			}
			err = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if err == nil && len(doc.Data.Result) > 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("prometheus has not scraped the %d nodes after %v", len(m.o.Targets), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Firing lists the alerts Prometheus has firing now (name and labels).
func (m *Monitor) Firing(ctx context.Context) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.o.PrometheusAddr+"/api/v1/alerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var doc struct {
		Data struct {
			Alerts []struct {
				State  string            `json:"state"`
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, err
	}
	var out []string
	for _, a := range doc.Data.Alerts {
		out = append(out, fmt.Sprintf("%-8s %s", a.State, Notification{Labels: a.Labels}))
	}
	sort.Strings(out)
	return out, nil
}

// Close stops Prometheus and Alertmanager (by pid) and the receiver.
func (m *Monitor) Close() {
	var wg sync.WaitGroup
	for _, p := range m.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				_ = p.Process.Kill()
				<-done
			}
		}()
	}
	wg.Wait()
	if m.srv != nil {
		_ = m.srv.Close()
	}
}
