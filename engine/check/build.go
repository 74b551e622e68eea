package check

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	runner "github.com/keepwatch/keepwatch/engine/script"
)

// DefaultHeloName is SMTP_CHECK's HELO argument without helo_name
// (keepalived check_smtp.h SMTP_DEFAULT_HELO; not smtp_helo_name, which is
// for alert mail).
const DefaultHeloName = "smtpchecker.keepalived.org"

// FilePoll is the longest interval between two reads of a FILE_CHECK's file.
const FilePoll = time.Second

// FromConfig builds the real servers to check from c's virtual servers
// (sorry servers are not checked, as in keepalived), applying keepalived's
// inheritance: checker settings default to the real server's, which default
// to the virtual server's (reference §1.6, config.Checker.Resolved).
// BFD_CHECK is skipped: keepwatch has no BFD.
func FromConfig(c *config.Config) ([]RealServer, error) {
	var out []RealServer
	helo := DefaultHeloName
	var cert *tls.Certificate
	if c.SSL != nil && c.SSL.Certificate != "" {
		key := c.SSL.Key
		if key == "" {
			key = c.SSL.Certificate
		}
		kp, err := loadKeyPair(c.SSL.Certificate, key, string(c.SSL.Password))
		if err != nil {
			return nil, fmt.Errorf("ssl certificate %q: %w", c.SSL.Certificate, err)
		}
		cert = &kp
	}
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		svc := ServiceName(vs)
		for k := range vs.RealServers {
			rs := &vs.RealServers[k]
			port := rs.Port
			if port == 0 {
				port = vs.Port
			}
			srv := RealServer{Service: svc, Target: netip.AddrPortFrom(rs.Addr, uint16(port)).String(), Weight: rs.Weight}
			for n := range rs.Checkers {
				ck := &rs.Checkers[n]
				if ck.Type == config.BFDCheck {
					continue
				}
				chk, err := newChecker(c, vs, rs, ck, port, helo)
				if ck.Type == config.SSLGet {
					chk.ClientCert = cert
				}
				if err != nil {
					return nil, fmt.Errorf("virtual_server %s real_server %s %s: %w", svc, srv.Target, ck.Type, err)
				}
				srv.Checkers = append(srv.Checkers, chk)
			}
			out = append(out, srv)
		}
	}
	return out, nil
}

func newChecker(c *config.Config, vs *config.VirtualServer, rs *config.RealServer, ck *config.Checker, port int, helo string) (Checker, error) {
	d := ck.Resolved(rs, vs)
	addr := ck.ConnectIP
	if !addr.IsValid() {
		addr = rs.Addr
	}
	if ck.ConnectPort != 0 {
		port = ck.ConnectPort
	}
	if port == 0 {
		// A real server of a fwmark service may have no port: SMTP_CHECK
		// and DNS_CHECK then use their protocol's (check_smtp.c, check_dns.c).
		switch ck.Type {
		case config.SMTPCheck:
			port = 25
		case config.DNSCheck:
			port = 53
		}
	}
	alpha := vs.Alpha
	if rs.Alpha != nil {
		alpha = *rs.Alpha
	}
	if ck.Alpha != nil {
		alpha = *ck.Alpha
	}
	t := Target{
		Type:    ck.Type,
		Addr:    netip.AddrPortFrom(addr, uint16(port)),
		BindIf:  ck.BindIf,
		FWMark:  ck.FWMark,
		Timeout: d.ConnectTimeout,
		HTTP:    ck.HTTP, Misc: ck.Misc, DNS: ck.DNS, UDP: ck.UDP, File: ck.File,
		Scripts: runner.Policy{User: c.Global.ScriptUser, Group: c.Global.ScriptGroup, Security: c.Global.EnableScriptSecurity},
	}
	if ck.BindTo.IsValid() || ck.BindPort != 0 {
		t.Bind = netip.AddrPortFrom(ck.BindTo, uint16(ck.BindPort))
	}
	t.Virtualhost = rs.Virtualhost
	if t.Virtualhost == "" {
		t.Virtualhost = vs.Virtualhost
	}
	t.HeloName = helo
	if ck.SMTP != nil && ck.SMTP.HeloName != "" {
		t.HeloName = ck.SMTP.HeloName
	}
	chk := Checker{Target: t, DelayLoop: d.DelayLoop, DelayBeforeRetry: d.DelayBeforeRetry,
		Warmup: *d.Warmup, Retry: *d.Retry, Alpha: alpha, LogAllFailures: c.Global.CheckerLogAllFailures}
	if ck.LogAllFailures != nil {
		chk.LogAllFailures = *ck.LogAllFailures
	}
	switch ck.Type {
	case config.MiscCheck:
		// misc_timeout defaults to delay_loop; connect_timeout does not apply.
		chk.Timeout = d.DelayLoop
		if ck.Misc != nil && ck.Misc.Timeout > 0 {
			chk.Timeout = ck.Misc.Timeout
		}
	case config.FileCheck:
		if ck.File == nil {
			return chk, fmt.Errorf("no track_file")
		}
		f := *ck.File
		chk.TrackFile = f.TrackFile
		for _, tf := range c.TrackFiles {
			if tf.Name == f.TrackFile {
				chk.TrackFile = tf.File
				chk.TrackInit, chk.TrackInitOverwrite = tf.InitFile, tf.InitOverwrite
				// FILE_CHECK without its own weight takes the track_file's
				// (check_file.c file_end_handler).
				if f.Weight == 0 {
					f.Weight, f.Reverse = tf.Weight, tf.Reverse
				}
			}
		}
		chk.File = &f
		// A file is known at once: no alpha, no retries, no warmup; and
		// since keepalived sees changes at once (inotify), poll at least
		// every second.
		chk.Alpha, chk.Retry, chk.Warmup = false, 0, 0
		chk.DelayLoop = min(chk.DelayLoop, FilePoll)
	}
	if err := chk.Target.compile(); err != nil {
		return chk, err
	}
	return chk, nil
}

// compile checks and pre-parses t's type-specific settings; NewTarget
// callers that fill a Target by hand call it through Compile.
func (t *Target) compile() error {
	t.udpPattern, t.digests = nil, nil
	if t.UDP != nil && t.UDP.ReplyPattern != "" {
		p, err := ParsePattern(t.UDP.ReplyPattern)
		if err != nil {
			return err
		}
		t.udpPattern = p
	}
	if t.HTTP != nil {
		digests := make([][]byte, len(t.HTTP.URLs))
		for i := range t.HTTP.URLs {
			b, err := parseDigest(&t.HTTP.URLs[i])
			if err != nil {
				return err
			}
			if _, err := urlRegexp(&t.HTTP.URLs[i]); err != nil {
				return err
			}
			digests[i] = b
		}
		t.digests = digests
	}
	return nil
}

// Compile pre-parses t's type-specific settings (require_reply pattern,
// url digests, url regexes); call it after filling a Target by hand.
func (t *Target) Compile() error { return t.compile() }

// ServiceName is the name of vs in events, the form engine/ipvs keys use:
// "ip:port/tcp", "fwmark:N/ipv4"; a virtual_server group is "group:NAME".
func ServiceName(vs *config.VirtualServer) string {
	switch {
	case vs.Group != "":
		return "group:" + vs.Group
	case vs.FWMark != 0:
		fam := "ipv4"
		if vs.IPFamily == 6 {
			fam = "ipv6"
		}
		return "fwmark:" + strconv.FormatUint(uint64(vs.FWMark), 10) + "/" + fam
	}
	proto := strings.ToLower(vs.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	return netip.AddrPortFrom(vs.Addr.Unmap(), uint16(vs.Port)).String() + "/" + proto
}
