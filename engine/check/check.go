package check

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	runner "github.com/keepwatch/keepwatch/engine/script"
)

// Target is everything one probe needs: where to connect, how, and the
// checker's type-specific settings. It is built once per checker (see
// NewTarget) and only read by probes, so concurrent probes may share it.
type Target struct {
	// Type is the checker block, e.g. TCP_CHECK.
	Type config.CheckerType
	// Addr is where the probe connects: connect_ip and connect_port, each
	// defaulting to the real server's (reference §1.7).
	Addr netip.AddrPort
	// Bind is bindto and bind_port; the zero value lets the kernel choose.
	Bind netip.AddrPort
	// BindIf is bind_if (SO_BINDTODEVICE), FWMark is fwmark (SO_MARK).
	BindIf string
	FWMark uint32
	// Timeout is connect_timeout. keepalived applies it to each step (connect,
	// each write and read) rather than to the whole probe; keepwatch bounds
	// the whole probe by it, which is never more lenient.
	Timeout time.Duration

	// Virtualhost is the HTTP Host inherited from the real or virtual server
	// when neither the url nor the checker sets one.
	Virtualhost string
	// HeloName is the SMTP HELO argument, already defaulted.
	HeloName string
	// TrackFile is the path FILE_CHECK reads (the track_file's file), and
	// TrackInit / TrackInitOverwrite its track_file's init_file.
	TrackFile          string
	TrackInit          *int
	TrackInitOverwrite bool

	// ClientCert is the client certificate SSL_GET presents: the global
	// ssl block's certificate and key; nil for none.
	ClientCert *tls.Certificate

	HTTP *config.HTTPCheck
	Misc *config.MiscSpec
	// Scripts is global_defs' script_user and enable_script_security,
	// which MISC_CHECK's misc_path runs under.
	Scripts runner.Policy
	DNS     *config.DNSSpec
	UDP     *config.UDPSpec
	File    *config.FileSpec

	// udpPattern is UDP.ReplyPattern compiled (NewTarget fills it).
	udpPattern *Pattern
	// digests are the HTTP urls' digests decoded (NewTarget fills them).
	digests [][]byte
}

// Result is the outcome of one probe.
type Result struct {
	OK bool
	// Reason is the error class when !OK (one of the Reason* constants), a
	// low-cardinality label value.
	Reason event.Reason
	// Weight, when SetWeight is true, is the real server's new weight
	// (MISC_CHECK misc_dynamic) or this checker's weight contribution
	// (FILE_CHECK with a weight).
	Weight    int
	SetWeight bool
	// Err is the underlying error, for logs; nil when OK.
	Err error
}

// Prober runs one probe of t. It returns when the probe is done, t.Timeout
// has passed, or ctx is cancelled, and never panics on what the peer sends.
// Every checker type is a Prober, one file each, as blackbox_exporter's
// prober package does.
type Prober func(ctx context.Context, t *Target) Result

// Probers maps each checker type keepwatch implements to its Prober.
// BFD_CHECK has none: keepwatch has no BFD.
var Probers = map[config.CheckerType]Prober{
	config.TCPCheck:  ProbeTCP,
	config.HTTPGet:   ProbeHTTP,
	config.SSLGet:    ProbeHTTP,
	config.MiscCheck: ProbeMisc,
	config.SMTPCheck: ProbeSMTP,
	config.DNSCheck:  ProbeDNS,
	config.UDPCheck:  ProbeUDP,
	config.PingCheck: ProbePing,
	config.FileCheck: ProbeFile,
}

// Error classes, the Reason of a failed probe (the `error.type` of its span,
// a label of keepwatch_check_probes_total).
const (
	ReasonTimeout     event.Reason = "timeout"     // connect_timeout (or misc_timeout) passed
	ReasonRefused     event.Reason = "refused"     // TCP RST, or ICMP port unreachable for UDP and DNS
	ReasonUnreachable event.Reason = "unreachable" // ICMP unreachable, no route
	ReasonConnect     event.Reason = "connect"     // any other connect or socket error
	ReasonIO          event.Reason = "io"          // read/write error or early close
	ReasonTLS         event.Reason = "tls"         // TLS handshake failed
	ReasonStatus      event.Reason = "status"      // HTTP status not in status_code
	ReasonDigest      event.Reason = "digest"      // HTTP body MD5 differs from digest
	ReasonRegex       event.Reason = "regex"       // HTTP body fails regex (or matches regex_no_match)
	ReasonProtocol    event.Reason = "protocol"    // peer spoke nonsense (bad status line, SMTP code, DNS id)
	ReasonRcode       event.Reason = "rcode"       // DNS RCODE not NOERROR
	ReasonMismatch    event.Reason = "mismatch"    // UDP reply differs from require_reply
	ReasonExit        event.Reason = "exit"        // MISC_CHECK script exited 1 (or signalled)
	ReasonExec        event.Reason = "exec"        // MISC_CHECK script could not start
	ReasonFile        event.Reason = "file"        // FILE_CHECK value says down
	ReasonCanceled    event.Reason = "canceled"    // the scheduler was stopped mid-probe
	ReasonConfig      event.Reason = "config"      // the checker cannot run as configured
	ReasonInsecure    event.Reason = "insecure"    // MISC_CHECK script refused by enable_script_security
)

// Reasons lists every error class, so collectors can initialise series.
var Reasons = [...]event.Reason{ReasonTimeout, ReasonRefused, ReasonUnreachable,
	ReasonConnect, ReasonIO, ReasonTLS, ReasonStatus, ReasonDigest, ReasonRegex, ReasonProtocol,
	ReasonRcode, ReasonMismatch, ReasonExit, ReasonExec, ReasonFile,
	ReasonCanceled, ReasonConfig}

// ok is the successful Result.
var ok = Result{OK: true}

// fail returns a failed Result of class reason.
func fail(reason event.Reason, err error) Result {
	return Result{Reason: reason, Err: err}
}

// failErr classifies err (a network error) into a failed Result, with ctx
// telling a cancelled scheduler from a timeout.
func failErr(ctx context.Context, err error, fallback event.Reason) Result {
	return fail(classify(ctx, err, fallback), err)
}

// classify maps a network error to an error class.
func classify(ctx context.Context, err error, fallback event.Reason) event.Reason {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ReasonCanceled
	}
	var ne net.Error
	var te *tlsError
	var oe *net.OpError
	var ae tls.AlertError
	switch {
	case errors.As(err, &te), errors.As(err, &ae),
		// A TLS 1.3 server rejects a client certificate after the client's
		// handshake is done: the alert comes with the first read.
		errors.As(err, &oe) && oe.Op == "remote error":
		return ReasonTLS
	case errors.Is(err, ErrNoResponse), errors.Is(err, ErrStatusLine):
		return ReasonProtocol
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTDOWN):
		return ReasonUnreachable
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ReasonIO
	}
	return fallback
}

// deadline is the time a probe of t started now must end by: t.Timeout
// from now, or ctx's deadline if sooner.
func deadline(ctx context.Context, t *Target) time.Time {
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = config.DefaultConnectTimeout
	}
	d := time.Now().Add(timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}
