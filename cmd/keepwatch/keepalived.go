package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"

	"github.com/keepwatch/keepwatch/engine/agent"
	"github.com/keepwatch/keepwatch/engine/config"
)

// keepalived 2.2.7's defaults (keepalived(8), lib/utils.h and core/main.c).
const (
	kaConfigFile  = "/etc/keepalived/keepalived.conf"
	kaPidFile     = "/run/keepalived.pid"
	kaVRRPPidFile = "/run/keepalived_vrrp.pid"
	kaCheckPid    = "/run/keepalived_checkers.pid"
	kaLogFile     = "/tmp/keepalived.log" // -g without a file name (core/main.c)
	// kaVersion is the keepalived whose command line the drop-in accepts.
	kaVersion = "2.2.7"
)

// daemonEnv marks the detached child of a drop-in started without -n.
const daemonEnv = "KEEPWATCH_DAEMON_CHILD"

// kaFlags is keepalived 2.2.7's command line (keepalived --help, keepalived(8)).
type kaFlags struct {
	file, configID            string
	test                      string // -t[=FILE]; "-" when given without a file
	vrrpOnly, checkOnly       bool
	noBFD, all                bool
	logConsole, logDetail     bool
	facility, logFile         string
	flushLog, noSyslog        bool
	umask                     string
	releaseVIPs, keepVRRP     bool
	keepIPVS, dontRespawn     bool
	dontFork, dumpConf        bool
	pid, vrrpPid, checkPid    string
	bfdPid                    string
	genhash, addrMonitor      bool
	snmp, dbus                bool
	snmpSocket, namespace     string
	coreDump                  bool
	corePattern, signum       string
	allConfig                 bool
	perf, debug               string
	noMemCheck, version, help bool
}

func (k *kaFlags) register(f *pflag.FlagSet) {
	f.StringVarP(&k.file, "use-file", "f", kaConfigFile, "Use the specified configuration file")
	f.BoolVarP(&k.vrrpOnly, "vrrp", "P", false, "Only run with VRRP subsystem")
	f.BoolVarP(&k.checkOnly, "check", "C", false, "Only run with Health-checker subsystem")
	f.BoolVarP(&k.noBFD, "no_bfd", "B", false, "Don't run BFD subsystem (keepwatch has none)")
	f.BoolVar(&k.all, "all", false, "Force all child processes to run, even if have no configuration")
	f.BoolVarP(&k.logConsole, "log-console", "l", false, "Log messages to local console")
	f.BoolVarP(&k.logDetail, "log-detail", "D", false, "Detailed log messages (debug level)")
	f.StringVarP(&k.facility, "log-facility", "S", "daemon", "Set syslog facility to LOG_LOCAL[0-7], user or daemon")
	f.StringVarP(&k.logFile, "log-file", "g", "", "Write log entries to FILE (default "+kaLogFile+")")
	f.Lookup("log-file").NoOptDefVal = kaLogFile
	f.BoolVar(&k.flushLog, "flush-log-file", false, "Flush the log file after each write (keepwatch always does)")
	f.BoolVarP(&k.noSyslog, "no-syslog", "G", false, "Don't log via syslog")
	f.StringVarP(&k.umask, "umask", "u", "", "umask for file creation (in numeric form)")
	f.BoolVarP(&k.releaseVIPs, "release-vips", "X", false, "Drop VIP on transition from signal (not supported)")
	f.BoolVarP(&k.keepVRRP, "dont-release-vrrp", "V", false, "Don't remove VRRP VIPs and VROUTEs on daemon stop (not supported)")
	f.BoolVarP(&k.keepIPVS, "dont-release-ipvs", "I", false, "Don't remove IPVS topology on daemon stop (not supported)")
	f.BoolVarP(&k.dontRespawn, "dont-respawn", "R", false, "Don't respawn child processes (keepwatch has none)")
	f.BoolVarP(&k.dontFork, "dont-fork", "n", false, "Don't fork the daemon process")
	f.BoolVarP(&k.dumpConf, "dump-conf", "d", false, "Dump the configuration data")
	f.StringVarP(&k.pid, "pid", "p", kaPidFile, "Use specified pidfile for parent process")
	f.StringVarP(&k.vrrpPid, "vrrp_pid", "r", kaVRRPPidFile, "Use specified pidfile for VRRP child process")
	f.StringVarP(&k.checkPid, "checkers_pid", "c", kaCheckPid, "Use specified pidfile for checkers child process")
	f.StringVarP(&k.bfdPid, "bfd_pid", "b", "", "Use specified pidfile for BFD child process (keepwatch has no BFD)")
	f.BoolVarP(&k.genhash, "genhash", "T", false, "Enter into genhash utility mode (not supported)")
	f.BoolVarP(&k.addrMonitor, "address-monitoring", "a", false, "Report all address additions/deletions notified via netlink (not supported)")
	f.BoolVarP(&k.snmp, "snmp", "x", false, "Enable SNMP subsystem (not supported: use /metrics)")
	f.StringVarP(&k.snmpSocket, "snmp-agent-socket", "A", "", "Use the specified socket for master agent (not supported)")
	f.BoolVar(&k.dbus, "dbus", false, "Enable DBus (not supported)")
	f.StringVarP(&k.namespace, "namespace", "s", "", "Run in network namespace NAME (overrides config)")
	f.BoolVarP(&k.coreDump, "core-dump", "m", false, "Produce core dump if terminate abnormally")
	f.StringVarP(&k.corePattern, "core-dump-pattern", "M", "", "Also set /proc/sys/kernel/core_pattern to PATN (not supported)")
	f.Lookup("core-dump-pattern").NoOptDefVal = "core"
	f.BoolVarP(&k.allConfig, "all-config", "e", false, "Error if any configuration file missing (same as includet)")
	f.StringVarP(&k.configID, "config-id", "i", "", "Skip any configuration lines beginning '@' that don't match id")
	f.StringVar(&k.signum, "signum", "", "Return signal number for STOP, RELOAD, DATA, STATS, STATS_CLEAR, JSON")
	f.StringVarP(&k.test, "config-test", "t", "", "Check the configuration for obvious errors, output to stderr by default")
	f.Lookup("config-test").NoOptDefVal = "-"
	f.StringVar(&k.perf, "perf", "", "Record perf data (not supported)")
	f.Lookup("perf").NoOptDefVal = "run"
	f.StringVar(&k.debug, "debug", "", "Enable debug options (not supported)")
	f.Lookup("debug").NoOptDefVal = "all"
	f.BoolVar(&k.noMemCheck, "no-mem-check", false, "Disable malloc() etc mem-checks (none in keepwatch)")
	f.BoolVarP(&k.version, "version", "v", false, "Display the version number")
	f.BoolVarP(&k.help, "help", "h", false, "Display this help message")
	for _, n := range []string{"dbus", "perf", "debug", "no-mem-check", "flush-log-file"} {
		_ = f.MarkHidden(n)
	}
}

// keepalivedCommand accepts keepalived 2.2.7's command line (keepalived(8)),
// each option with keepalived's meaning, so that unit files (the upstream
// forking keepalived.service, Debian's Type=notify one, RHEL's with
// KEEPALIVED_OPTIONS="-D") and containers that run keepalived need no edit.
func keepalivedCommand() *cobra.Command {
	var k kaFlags
	cmd := &cobra.Command{
		Use:           "keepalived",
		Short:         "keepwatch, invoked as keepalived",
		SilenceUsage:  true,
		SilenceErrors: true,
		// keepalived ignores nothing silently: a stray argument is an
		// error here, with the usage, rather than a config never read.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(cmd, "Unexpected argument(s): "+strings.Join(args, " "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return k.run(cmd) },
	}
	// keepalived's getopt: an unknown option prints "Unknown option -Z" and
	// exits 1. cobra's would exit 1 in silence (SilenceErrors).
	cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		var ne *pflag.NotExistError
		var ve *pflag.ValueRequiredError
		switch {
		case errors.As(err, &ne) && ne.GetSpecifiedShortnames() != "":
			return usageError(cmd, "Unknown option -"+ne.GetSpecifiedName())
		case errors.As(err, &ne):
			return usageError(cmd, "Unknown option --"+ne.GetSpecifiedName())
		case errors.As(err, &ve) && ve.GetSpecifiedName() != "" && len(ve.GetSpecifiedName()) > 1:
			return usageError(cmd, "Missing parameter for option --"+ve.GetSpecifiedName())
		case errors.As(err, &ve):
			return usageError(cmd, "Missing parameter for option -"+ve.GetFlag().Shorthand)
		}
		return usageError(cmd, err.Error())
	})
	cmd.Flags().SortFlags = false // keepalived --help's order
	k.register(cmd.Flags())
	cmd.SetUsageFunc(func(cmd *cobra.Command) error {
		fmt.Fprintf(cmd.ErrOrStderr(), "Usage: keepalived [OPTION...]\n%s", cmd.Flags().FlagUsages())
		return nil
	})
	// -h: the usage alone, on stderr, exit 0, as keepalived --help.
	cmd.SetHelpFunc(func(cmd *cobra.Command, _ []string) { _ = cmd.Usage() })
	return cmd
}

// kaArgs rewrites getopt's attached optional arguments, which pflag reads
// as more short options: "-tFILE", "-gFILE", "-MPATTERN", also at the end
// of a cluster ("-ngFILE"), become "--config-test=FILE" and so on.
func kaArgs(args []string) []string {
	optional := map[byte]string{'t': "config-test", 'g': "log-file", 'M': "core-dump-pattern"}
	// The short options without an argument, which may precede in a cluster.
	const flags = "PCBlDGXVIRndTaxmevh"
	out := make([]string, 0, len(args)+1)
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			out = append(out, a)
			continue
		}
		j := 1
		for j < len(a) && strings.IndexByte(flags, a[j]) >= 0 {
			j++
		}
		long, ok := "", false
		if j < len(a)-1 {
			long, ok = optional[a[j]]
		}
		if !ok {
			out = append(out, a)
			continue
		}
		if j > 1 {
			out = append(out, a[:j])
		}
		out = append(out, "--"+long+"="+a[j+1:])
	}
	return out
}

// usageError prints msg and the usage on stderr and exits 1.
func usageError(cmd *cobra.Command, msg string) error {
	fmt.Fprintln(cmd.ErrOrStderr(), msg)
	_ = cmd.Usage()
	return exitError{1}
}

func (k *kaFlags) run(cmd *cobra.Command) error {
	stderr := cmd.ErrOrStderr()
	switch {
	case k.help:
		_ = cmd.Usage()
		return nil
	case k.version:
		fmt.Fprintf(stderr, "Keepalived v%s (keepwatch %s)\n", kaVersion, version)
		return nil
	case k.signum != "":
		n, ok := kaSignum(k.signum)
		if !ok {
			fmt.Fprintf(stderr, "Unknown sigfunc %s\n", k.signum)
			return exitError{1}
		}
		fmt.Fprintln(cmd.OutOrStdout(), n)
		return nil
	case k.genhash:
		fmt.Fprintln(stderr, "genhash mode (-T) is not supported by keepwatch: use keepwatch's HTTP checker or curl | md5sum")
		return exitError{1}
	case cmd.Flags().Changed("config-test"):
		out := stderr
		if k.test != "-" && k.test != "" {
			f, err := os.OpenFile(k.test, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				fmt.Fprintf(stderr, "Unable to open config-test log file %s: %v\n", k.test, err)
				return exitError{1}
			}
			defer f.Close()
			out = f
		}
		if code := check(out, k.file, k.configID); code != 0 {
			return exitError{code}
		}
		return nil
	}
	if _, err := syslogFacility(k.facility); err != nil {
		return usageError(cmd, err.Error())
	}
	if k.umask != "" {
		m, err := strconv.ParseUint(k.umask, 0, 32)
		if err != nil || m > 0o777 {
			return usageError(cmd, fmt.Sprintf("Invalid umask %q", k.umask))
		}
		syscall.Umask(int(m))
	}
	if k.namespace != "" && os.Getenv(netnsEnv) == "" {
		// Re-executes in the namespace; returns only on failure.
		err := execInNetns(k.namespace)
		fmt.Fprintf(stderr, "keepalived: network namespace %s: %v\n", k.namespace, err)
		return exitError{1}
	}
	if !k.dontFork && os.Getenv(daemonEnv) == "" {
		return daemonize(stderr)
	}
	// The mark has done its work: notify and check scripts must not
	// inherit it.
	_ = os.Unsetenv(daemonEnv)
	return k.runAgent(cmd)
}

func (k *kaFlags) runAgent(cmd *cobra.Command) error {
	f := runFlags{file: k.file, configID: k.configID, listen: DefaultListen, logFormat: "console", logLevel: "info"}
	if err := applyAgentSettings(&f, nil); err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return exitError{1}
	}
	if k.logDetail {
		f.logLevel = "debug"
	}
	log, flush, err := k.logger(cmd.ErrOrStderr(), f.logFormat, f.logLevel)
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return exitError{1}
	}
	defer flush()
	f.log = log
	k.warnUnsupported(log)
	if k.coreDump {
		// keepalived -m: lift RLIMIT_CORE so a crash leaves a core.
		lim := syscall.Rlimit{Cur: ^uint64(0), Max: ^uint64(0)}
		if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &lim); err != nil {
			log.Warn("core-dump: cannot raise RLIMIT_CORE", "err", err)
		}
	}
	k.namespacePidFiles(cmd.Flags())
	pids, err := k.writePidFiles()
	if err != nil {
		log.Error(err.Error())
		return exitError{1}
	}
	defer removePidFiles(pids)
	switch {
	case k.vrrpOnly && !k.checkOnly:
		f.trim = vrrpOnly
	case k.checkOnly && !k.vrrpOnly:
		f.trim = checkersOnly
	}
	if ns := os.Getenv(netnsEnv); ns != "" {
		// -s NAME overrides the config's net_namespace (keepalived(8)):
		// the whole process already runs in NAME, so the platform stays
		// where it is, and IPVS too unless net_namespace_ipvs says otherwise.
		trim := f.trim
		f.trim = func(c *configT) {
			if trim != nil {
				trim(c)
			}
			c.Global.NetNamespace = ""
		}
	}
	if k.dumpConf {
		f.started = func(ctx context.Context, a *agent.Agent) { go dumpConfigWhenReady(ctx, a, log) }
	}
	return runAgent(cmd.Context(), f)
}

// namespacePidFiles moves the default pid files under /run/keepalived/NAME/
// when running in a network namespace (-s), as keepalived(8) NAMESPACES
// says, so instances in different namespaces do not share them.
func (k *kaFlags) namespacePidFiles(fs *pflag.FlagSet) {
	ns := os.Getenv(netnsEnv)
	if ns == "" {
		return
	}
	for flag, p := range map[string]*string{"pid": &k.pid, "vrrp_pid": &k.vrrpPid, "checkers_pid": &k.checkPid} {
		if !fs.Changed(flag) {
			*p = filepath.Join("/run/keepalived", ns, filepath.Base(*p))
		}
	}
}

// vrrpOnly is keepalived -P: the VRRP side of the config alone (its VRRP
// child process), no virtual servers and no health checks.
func vrrpOnly(c *config.Config) {
	c.VirtualServers, c.VSGroups = nil, nil
}

// checkersOnly is keepalived -C: virtual servers and their checkers alone
// (its checker child process), no VRRP instance and no static addresses,
// routes or rules, which keepalived's VRRP process installs.
func checkersOnly(c *config.Config) {
	c.Instances, c.SyncGroups = nil, nil
	c.StaticAddrs, c.StaticRoutes, c.StaticRules = nil, nil, nil
}

// warnUnsupported says, once at start, which of keepalived's options
// keepwatch accepts without doing what they ask.
func (k *kaFlags) warnUnsupported(log *slog.Logger) {
	for _, u := range []struct {
		set  bool
		opt  string
		what string
	}{
		{k.snmp || k.snmpSocket != "", "-x/--snmp", "no SNMP subagent; the same data is on /metrics and /api/v1/status"},
		{k.dbus, "--dbus", "no DBus service; use signals or /api/v1/status"},
		{k.releaseVIPs, "-X/--release-vips", "VIPs are released as on any transition"},
		{k.keepVRRP, "-V/--dont-release-vrrp", "VIPs and routes are removed on stop"},
		{k.keepIPVS, "-I/--dont-release-ipvs", "the IPVS table is cleared on stop"},
		{k.addrMonitor, "-a/--address-monitoring", "address changes are not logged"},
		{k.corePattern != "", "-M/--core-dump-pattern", "core_pattern is left as it is"},
		{k.allConfig, "-e/--all-config", "a missing include is reported as a diagnostic"},
		{k.perf != "", "--perf", "no perf recording"},
		{k.debug != "", "--debug", "no debug options"},
	} {
		if u.set {
			log.Warn("option not supported by keepwatch, ignored", "option", u.opt, "effect", u.what)
		}
	}
}

// logger builds keepalived's log destinations: syslog (unless -G) under the
// -S facility, the console with -l, and the -g file. With none of them
// reachable (no syslog socket, as in a container) it falls back to the
// console, so a foreground drop-in is never silent.
func (k *kaFlags) logger(stderr io.Writer, format, level string) (*slog.Logger, func(), error) {
	var extra []zapcore.Core
	var closers []func()
	if !k.noSyslog {
		fac, err := syslogFacility(k.facility)
		if err != nil {
			return nil, nil, err
		}
		if w, err := syslog.New(fac|syslog.LOG_INFO, "Keepalived"); err == nil {
			extra = append(extra, newSyslogCore(w))
			closers = append(closers, func() { _ = w.Close() })
		}
	}
	if k.logFile != "" {
		f, err := os.OpenFile(k.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("log file %s: %w", k.logFile, err)
		}
		enc, err := encoder(format)
		if err != nil {
			return nil, nil, err
		}
		extra = append(extra, zapcore.NewCore(enc, zapcore.Lock(f), zapcore.DebugLevel))
		closers = append(closers, func() { _ = f.Close() })
	}
	var console zapcore.WriteSyncer
	if k.logConsole || len(extra) == 0 {
		console = zapcore.AddSync(stderr)
	}
	log, flush, err := zapLoggerTo(format, level, console, extra...)
	if err != nil {
		return nil, nil, err
	}
	return log, func() {
		flush()
		for _, c := range closers {
			c()
		}
	}, nil
}

// writePidFiles writes keepalived's pid files: the main one (-p) and, for
// the side that runs, the VRRP (-r) and checkers (-c) ones. keepwatch is one
// process, so every file holds its pid: a signal sent to any of them
// reaches it. A main pid file naming a live process stops the start, as
// keepalived's "daemon is already running".
func (k *kaFlags) writePidFiles() ([]string, error) {
	if b, err := os.ReadFile(k.pid); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p != os.Getpid() && syscall.Kill(p, 0) == nil {
			return nil, fmt.Errorf("daemon is already running (pid %d in %s)", p, k.pid)
		}
	}
	files := []string{k.pid}
	if !k.checkOnly || k.vrrpOnly {
		files = append(files, k.vrrpPid)
	}
	if !k.vrrpOnly || k.checkOnly {
		files = append(files, k.checkPid)
	}
	var done []string
	for _, p := range files {
		if p == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			removePidFiles(done)
			return nil, fmt.Errorf("pid file %s: %w", p, err)
		}
		if err := os.WriteFile(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			removePidFiles(done)
			return nil, fmt.Errorf("pid file %s: %w", p, err)
		}
		done = append(done, p)
	}
	return done, nil
}

// removePidFiles removes the pid files that still name this process.
func removePidFiles(files []string) {
	me := strconv.Itoa(os.Getpid())
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == me {
			_ = os.Remove(p)
		}
	}
}

// daemonize is keepalived without -n. Go cannot fork, so the binary runs
// itself again, detached (setsid, stdio on /dev/null), marked by daemonEnv.
// The parent waits until the child is up (its pid files written and its
// config running: it says READY=1 on a notify socket the parent made), then
// exits 0, as keepalived's parent does after its fork; a forking unit
// (Type=forking, PIDFile=) then finds the pid file in place. If the child
// dies first, the parent exits with the child's status.
func daemonize(stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "keepalived: cannot find own executable: %v\n", err)
		return exitError{1}
	}
	dir, err := os.MkdirTemp("", "keepwatch-daemon-")
	if err != nil {
		fmt.Fprintf(stderr, "keepalived: %v\n", err)
		return exitError{1}
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "notify")
	ready, err := listenNotify(sock)
	if err != nil {
		fmt.Fprintf(stderr, "keepalived: %v\n", err)
		return exitError{1}
	}
	defer ready.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stderr, "keepalived: %v\n", err)
		return exitError{1}
	}
	defer null.Close()
	// Args[0] stays "keepalived" so the child is the drop-in too.
	child := &exec.Cmd{Path: exe, Args: os.Args, Stdin: null, Stdout: null, Stderr: null, Dir: "/",
		Env:         append(os.Environ(), daemonEnv+"=1", "NOTIFY_SOCKET="+sock),
		SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if err := child.Start(); err != nil {
		fmt.Fprintf(stderr, "keepalived: starting daemon: %v\n", err)
		return exitError{1}
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	up := make(chan struct{})
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := ready.Read(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), notifyReadyLine) {
				close(up)
				return
			}
		}
	}()
	select {
	case <-up:
		_ = child.Process.Release()
		return nil
	case err := <-exited:
		code := 1
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			code = ee.ExitCode()
		}
		fmt.Fprintf(stderr, "keepalived: daemon exited before it was up (status %d); see its log\n", code)
		return exitError{code}
	}
}
