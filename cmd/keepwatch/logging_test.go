package main

import (
	"bytes"
	"log/syslog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/keepwatch/keepwatch/tracing/logsink"
)

// An ERROR record is one line, as in keepalived's log: no Go stack trace
// follows it (zapslog adds one by default).
func TestErrorLogHasNoStack(t *testing.T) {
	for _, format := range []string{"console", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log, flush, err := zapLoggerTo(format, "info", zapcore.AddSync(&buf))
			if err != nil {
				t.Fatal(err)
			}
			log.Error("config", "diagnostic", "k.conf:4:3: error: priority 300 out of range")
			log.Warn("config", "diagnostic", "k.conf:5:3: warning: unknown keyword")
			flush()
			out := buf.String()
			if n := strings.Count(out, "\n"); n != 2 {
				t.Errorf("%d lines, want 2 (one per record):\n%s", n, out)
			}
			for _, bad := range []string{"runtime.main", "goroutine", ".go:"} {
				if strings.Contains(out, bad) {
					t.Errorf("log contains %q (a stack trace):\n%s", bad, out)
				}
			}
			if !strings.Contains(out, "priority 300 out of range") {
				t.Errorf("log lacks the diagnostic:\n%s", out)
			}
		})
	}
}

func TestSyslogFacility(t *testing.T) {
	for in, want := range map[string]syslog.Priority{
		"": syslog.LOG_DAEMON, "daemon": syslog.LOG_DAEMON, "user": syslog.LOG_USER,
		"0": syslog.LOG_LOCAL0, "7": syslog.LOG_LOCAL7, "local3": syslog.LOG_LOCAL3, "LOCAL5": syslog.LOG_LOCAL5,
	} {
		got, err := syslogFacility(in)
		if err != nil || got != want {
			t.Errorf("syslogFacility(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"8", "local8", "kern", "-1"} {
		if _, err := syslogFacility(in); err == nil {
			t.Errorf("syslogFacility(%q): no error", in)
		}
	}
}

// Records reach syslog at their own severity under the -S facility, one
// message each, the fields on the message's line.
func TestSyslogCore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fac, _ := syslogFacility("local3")
	w, err := syslog.Dial("unixgram", path, fac|syslog.LOG_INFO, "keepalived")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	log, flush, err := zapLoggerTo("console", "info", nil, newSyslogCore(w))
	if err != nil {
		t.Fatal(err)
	}
	log.Error("reload rejected", "err", "bad config")
	log.Info("transition", "instance", "VI_1")
	log.Debug("not at info level")
	flush()
	want := []string{"<155>", "<158>"} // local3 (19) * 8 + err (3) / info (6)
	for i, w := range want {
		buf := make([]byte, 2048)
		_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := l.Read(buf)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, w) || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
			t.Errorf("message %d = %q, want priority %s on one line", i, msg, w)
		}
		if i == 0 && !strings.Contains(msg, `reload rejected {"err": "bad config"}`) {
			t.Errorf("message %q lacks the record", msg)
		}
	}
	_ = l.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := l.Read(make([]byte, 2048)); err == nil {
		t.Errorf("a debug record reached syslog at info level (%d bytes)", n)
	}
}

// The console reads like keepalived -l: its time layout, then the line in
// keepalived's words when the record has one (logsink.TextKey), a config
// diagnostic as keepalived's "(file: Line N) text", other records as their
// message and fields; JSON keeps every structured field.
func TestConsoleLayout(t *testing.T) {
	var buf bytes.Buffer
	log, flush, err := zapLoggerTo("console", "info", zapcore.AddSync(&buf))
	if err != nil {
		t.Fatal(err)
	}
	log.Info("vrrp transition", "vrrp_instance", "VI_1", "to", "master", logsink.TextKey, "(VI_1) Entering MASTER STATE")
	log.Warn("config", "diagnostic", "/etc/k.conf:57:9: warning: rule has no preference specified")
	log.Info("starting", "version", "dev")
	flush()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	want := []string{"(VI_1) Entering MASTER STATE", "(/etc/k.conf: Line 57) rule has no preference specified", `starting {"version": "dev"}`}
	stamp := regexp.MustCompile(`^[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}: `)
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, l := range lines {
		if !stamp.MatchString(l) || stamp.ReplaceAllString(l, "") != want[i] {
			t.Errorf("line %d = %q, want keepalived's time then %q", i, l, want[i])
		}
	}

	buf.Reset()
	log, flush, err = zapLoggerTo("json", "info", zapcore.AddSync(&buf))
	if err != nil {
		t.Fatal(err)
	}
	log.Info("vrrp transition", "vrrp_instance", "VI_1", "to", "master", logsink.TextKey, "(VI_1) Entering MASTER STATE")
	flush()
	for _, f := range []string{`"msg":"vrrp transition"`, `"vrrp_instance":"VI_1"`, `"to":"master"`, `"text":"(VI_1) Entering MASTER STATE"`} {
		if !strings.Contains(buf.String(), f) {
			t.Errorf("JSON record lacks %s: %s", f, buf.String())
		}
	}
}
