package main

import (
	"testing"
)

// The agent: section of a YAML config, and KEEPWATCH_AGENT_* for it and
// for a keepalived.conf, fill the settings no flag gave; a flag wins.
func TestApplyAgentSettings(t *testing.T) {
	yaml := write(t, "k.yaml", `agent:
  listen_address: 127.0.0.1:19001
  web_config_file: /etc/keepwatch/web.yml
  log_format: json
  otlp_endpoint: http://127.0.0.1:4318
  advert_span_ratio: 0.25
vrrp_instances:
  - name: VI_1
    interface: lo
    virtual_router_id: 51
    priority: 100
    advert_int: 1s
    virtual_ipaddress:
      - address: 192.0.2.10/24
`)
	f := runFlags{file: yaml, listen: DefaultListen, logFormat: "console", logLevel: "info"}
	if err := applyAgentSettings(&f, nil); err != nil {
		t.Fatal(err)
	}
	if f.listen != "127.0.0.1:19001" || f.webConfig != "/etc/keepwatch/web.yml" || f.logFormat != "json" ||
		f.logLevel != "info" || f.otlpEndpoint != "http://127.0.0.1:4318" || f.advertSpans != 0.25 {
		t.Errorf("from the agent: section: %+v", f)
	}

	// A flag given on the command line wins; the environment overrides the file.
	t.Setenv("KEEPWATCH_AGENT_OTLP_ENDPOINT", "http://127.0.0.1:4999")
	f = runFlags{file: yaml, listen: "127.0.0.1:9", logFormat: "console", logLevel: "info"}
	if err := applyAgentSettings(&f, func(flag string) bool { return flag == "web.listen-address" }); err != nil {
		t.Fatal(err)
	}
	if f.listen != "127.0.0.1:9" || f.otlpEndpoint != "http://127.0.0.1:4999" {
		t.Errorf("flag or environment lost: listen %q, otlp %q", f.listen, f.otlpEndpoint)
	}

	// keepalived.conf has no words for them: the environment alone.
	conf := write(t, "k.conf", "global_defs {\n  router_id x\n}\n")
	t.Setenv("KEEPWATCH_AGENT_LISTEN_ADDRESS", "127.0.0.1:19002")
	t.Setenv("KEEPWATCH_AGENT_WEB_CONFIG_FILE", "/w.yml")
	t.Setenv("KEEPWATCH_AGENT_LOG_LEVEL", "warn")
	t.Setenv("KEEPWATCH_AGENT_ADVERT_SPAN_RATIO", "0.5")
	f = runFlags{file: conf, listen: DefaultListen, logFormat: "console", logLevel: "info"}
	if err := applyAgentSettings(&f, nil); err != nil {
		t.Fatal(err)
	}
	if f.listen != "127.0.0.1:19002" || f.webConfig != "/w.yml" || f.logLevel != "warn" || f.otlpEndpoint != "http://127.0.0.1:4999" || f.advertSpans != 0.5 {
		t.Errorf("from the environment: %+v", f)
	}
	t.Setenv("KEEPWATCH_AGENT_ADVERT_SPAN_RATIO", "half")
	if err := applyAgentSettings(&f, nil); err == nil {
		t.Error("a bad KEEPWATCH_AGENT_ADVERT_SPAN_RATIO: no error")
	}
}
