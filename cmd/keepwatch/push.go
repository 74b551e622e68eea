package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	promconfig "github.com/prometheus/common/config"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/keepwatch/keepwatch/alerts/push"
	"github.com/keepwatch/keepwatch/metrics"
)

// pushFlags configure the direct push of the agent's alerts to
// Alertmanager (alerts/push): the fast path beside the rules, which stay
// the path of record (they also see an agent that died).
type pushFlags struct {
	urls       []string
	labels     []string
	configFile string
}

func (p *pushFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&p.urls, "alertmanager.url", nil, "Alertmanager to push VIP-move and fault alerts to at the transition (repeatable), e.g. http://am:9093")
	fl.StringArrayVar(&p.labels, "alertmanager.label", nil, "label=value added to pushed alerts (repeatable); set instance (and job, cluster) to what Prometheus scrapes this agent as, so Alertmanager deduplicates them with the rules' alerts (default job=keepwatch, instance=the listen address)")
	fl.StringVar(&p.configFile, "alertmanager.http-config.file", "", "Prometheus HTTP client config for Alertmanager (tls_config, basic_auth, authorization), as in prometheus.yml's alertmanagers")
}

// newPush returns the push sink, or nil without --alertmanager.url.
func newPush(p pushFlags, listen string, log *slog.Logger) (*push.Sink, error) {
	if len(p.urls) == 0 {
		return nil, nil
	}
	labels := map[string]string{"job": "keepwatch", "instance": defaultInstance(listen)}
	for _, kv := range p.labels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--alertmanager.label %q: want label=value", kv)
		}
		labels[k] = v
	}
	cfg := promconfig.DefaultHTTPClientConfig
	if p.configFile != "" {
		b, err := os.ReadFile(p.configFile)
		if err != nil {
			return nil, fmt.Errorf("--alertmanager.http-config.file: %w", err)
		}
		if err := yaml.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", p.configFile, err)
		}
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", p.configFile, err)
		}
	}
	client, err := promconfig.NewClientFromConfig(cfg, "alertmanager")
	if err != nil {
		return nil, fmt.Errorf("alertmanager HTTP client: %w", err)
	}
	return push.New(push.Options{URLs: append([]string(nil), p.urls...), Labels: labels, Client: client, Log: log,
		RunbookBase: "https://github.com/keepwatch/keepwatch/blob/main/alerts/runbook.md"}), nil
}

// defaultInstance guesses Prometheus's instance label for this agent: the
// listen address when it names a host, else this host's name and port.
func defaultInstance(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// segmentsOf maps each declared instance to its segment label.
func segmentsOf(d metrics.Declaration) map[string]string {
	m := make(map[string]string, len(d.Instances))
	for _, in := range d.Instances {
		m[in.Name] = in.Segment
	}
	return m
}
