package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/config"
)

// keepalived's signal functions (lib/signals.c, keepalived --signum): the
// real-time ones count from glibc's SIGRTMIN (34) and the kernel's SIGRTMAX
// (64), which is what `keepalived --signum=JSON` prints on Linux (36).
const (
	sigRTMin        = 34
	sigRTMax        = 64
	sigJSON         = syscall.Signal(sigRTMin + 2) // JSON: keepalived.json
	sigStatsClear   = syscall.Signal(sigRTMax - 1) // STATS_CLEAR: keepalived.stats, then zero
	sigData         = syscall.SIGUSR1              // DATA: keepalived.data
	sigStats        = syscall.SIGUSR2              // STATS: keepalived.stats
	netnsEnv        = "KEEPWATCH_NETNS"
	netnsDir        = "/var/run/netns"
	agentEnvPrefix  = config.EnvPrefix + "_AGENT_"
	notifyReadyLine = "READY=1"
)

// kaSignum is keepalived --signum=NAME.
func kaSignum(name string) (int, bool) {
	n, ok := map[string]syscall.Signal{
		"STOP": syscall.SIGTERM, "RELOAD": syscall.SIGHUP, "DATA": sigData, "STATS": sigStats,
		"STATS_CLEAR": sigStatsClear, "JSON": sigJSON,
	}[name]
	return int(n), ok
}

// listenNotify opens the socket a daemonized child says READY=1 on (the
// sd_notify protocol, which the agent already speaks).
func listenNotify(path string) (*net.UnixConn, error) {
	return net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
}

// execInNetns is keepalived -s NAME: run in the named network namespace
// (ip netns add NAME). A Go process cannot move all its threads into a
// namespace, so the calling thread enters it and execs the binary again;
// after exec the process is that one thread, inside the namespace.
func execInNetns(name string) error {
	if strings.ContainsRune(name, '/') {
		return fmt.Errorf("invalid namespace name %q", name)
	}
	runtime.LockOSThread()
	fd, err := unix.Open(filepath.Join(netnsDir, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(exe, os.Args, append(os.Environ(), netnsEnv+"="+name))
}

// applyAgentSettings fills f with the settings only keepwatch has: the YAML
// (TOML, JSON) config's agent: section, with KEEPWATCH_AGENT_* overrides, or
// for a keepalived.conf, which has no words for them, the environment alone.
// A command-line flag wins (changed reports which were given); otherwise
// the setting replaces f's default.
func applyAgentSettings(f *runFlags, changed func(flag string) bool) error {
	if changed == nil {
		changed = func(string) bool { return false }
	}
	var ag config.Agent
	if config.IsStructured(f.file) {
		c, _ := config.LoadStructured(f.file, config.ValidateOptions{})
		if c == nil {
			return nil // the agent reports why when it loads the file
		}
		ag = c.Agent
	} else {
		env := func(k string) string { return os.Getenv(agentEnvPrefix + k) }
		ag = config.Agent{ListenAddress: env("LISTEN_ADDRESS"), WebConfigFile: env("WEB_CONFIG_FILE"),
			LogFormat: env("LOG_FORMAT"), LogLevel: env("LOG_LEVEL"), OTLPEndpoint: env("OTLP_ENDPOINT"),
			OTLPProtocol: env("OTLP_PROTOCOL")}
		if v := env("ADVERT_SPAN_RATIO"); v != "" {
			r, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%sADVERT_SPAN_RATIO %q: %w", agentEnvPrefix, v, err)
			}
			ag.AdvertSampler = r
		}
		if v := env("STRICT"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%sSTRICT %q: %w", agentEnvPrefix, v, err)
			}
			ag.Strict = b
		}
	}
	set := func(dst *string, flag, v string) {
		if v != "" && !changed(flag) {
			*dst = v
		}
	}
	set(&f.listen, "web.listen-address", ag.ListenAddress)
	set(&f.webConfig, "web.config.file", ag.WebConfigFile)
	set(&f.logFormat, "log.format", ag.LogFormat)
	set(&f.logLevel, "log.level", ag.LogLevel)
	set(&f.otlpEndpoint, "otlp.endpoint", ag.OTLPEndpoint)
	set(&f.otlpProtocol, "otlp.protocol", ag.OTLPProtocol)
	if ag.Strict && !changed("strict") {
		f.strict = true
	}
	if ag.AdvertSampler != 0 && !changed("trace.advert-ratio") {
		f.advertSpans = ag.AdvertSampler
	}
	return nil
}
