package config

import (
	"net/netip"
	"time"
)

// VSGroup is a virtual_server_group block: addresses, ranges and fwmarks
// that share one set of real servers (reference §1.6).
type VSGroup struct {
	Pos     Pos            `json:"-" yaml:"-"`
	Name    string         `json:"name" yaml:"name"`
	Entries []VSGroupEntry `json:"entries" yaml:"entries"`
}

// VSGroupEntry is one line of a virtual_server_group: an address, a range
// (`192.0.2.1-10`), a CIDR, or a fwmark.
type VSGroupEntry struct {
	Pos Pos `json:"-" yaml:"-"`
	// First and Last bound an address range; for a single address they are equal.
	First  netip.Addr `json:"first,omitempty" yaml:"first,omitempty"`
	Last   netip.Addr `json:"last,omitempty" yaml:"last,omitempty"`
	Port   int        `json:"port,omitempty" yaml:"port,omitempty"`
	FWMark uint32     `json:"fwmark,omitempty" yaml:"fwmark,omitempty"`
	Family int        `json:"family,omitempty" yaml:"family,omitempty"` // fwmark entries: 4 or 6
	// Text is the entry as written, for printing it back.
	Text string `json:"text,omitempty" yaml:"text,omitempty"`
}

// VirtualServer is a virtual_server block: one IPVS service (reference §1.6).
type VirtualServer struct {
	Pos Pos `json:"-" yaml:"-"`
	// Exactly one of Addr (with Port), FWMark, or Group identifies the service.
	Addr   netip.Addr `json:"address,omitempty" yaml:"address,omitempty"`
	Port   int        `json:"port,omitempty" yaml:"port,omitempty"`
	FWMark uint32     `json:"fwmark,omitempty" yaml:"fwmark,omitempty"`
	Group  string     `json:"group,omitempty" yaml:"group,omitempty"`

	// Protocol is TCP, UDP or SCTP. keepalived 2.2.7 defaults a virtual
	// server without one to UDP, with a warning ("no protocol set -
	// defaulting to UDP"), and keepwatch's keepalived.conf reader does the
	// same; YAML configs default to DefaultProtocol.
	Protocol  string `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	IPFamily  int    `json:"ip_family,omitempty" yaml:"ip_family,omitempty"`
	Scheduler string `json:"lb_algo,omitempty" yaml:"lb_algo,omitempty"` // rr, wrr, lc, wlc (default), ...
	// Method is the forwarding method: NAT (default), DR or TUN.
	Method     string `json:"lb_kind,omitempty" yaml:"lb_kind,omitempty"`
	TunnelType string `json:"tunnel_type,omitempty" yaml:"tunnel_type,omitempty"` // ipip, gue, gre
	TunnelPort int    `json:"tunnel_port,omitempty" yaml:"tunnel_port,omitempty"`
	TunnelCsum string `json:"tunnel_csum,omitempty" yaml:"tunnel_csum,omitempty"`

	PersistenceTimeout     time.Duration `json:"persistence_timeout,omitempty" yaml:"persistence_timeout,omitempty"`
	PersistenceGranularity string        `json:"persistence_granularity,omitempty" yaml:"persistence_granularity,omitempty"`
	PersistenceEngine      string        `json:"persistence_engine,omitempty" yaml:"persistence_engine,omitempty"`
	OPS                    bool          `json:"ops,omitempty" yaml:"ops,omitempty"`
	Hashed                 bool          `json:"hashed,omitempty" yaml:"hashed,omitempty"`
	// SchedFlags are flag-1..3, sh-port, sh-fallback, mh-port, mh-fallback as written.
	SchedFlags []string `json:"sched_flags,omitempty" yaml:"sched_flags,omitempty"`

	// Defaults for the real servers and their checkers (inheritance, reference §1.6).
	CheckDefaults

	Virtualhost      string `json:"virtualhost,omitempty" yaml:"virtualhost,omitempty"`
	HASuspend        bool   `json:"ha_suspend,omitempty" yaml:"ha_suspend,omitempty"`
	InhibitOnFailure bool   `json:"inhibit_on_failure,omitempty" yaml:"inhibit_on_failure,omitempty"`
	Alpha            bool   `json:"alpha,omitempty" yaml:"alpha,omitempty"`
	Omega            bool   `json:"omega,omitempty" yaml:"omega,omitempty"`

	Quorum     int     `json:"quorum,omitempty" yaml:"quorum,omitempty"` // default 1
	Hysteresis int     `json:"hysteresis,omitempty" yaml:"hysteresis,omitempty"`
	QuorumUp   *Script `json:"quorum_up,omitempty" yaml:"quorum_up,omitempty"`
	QuorumDown *Script `json:"quorum_down,omitempty" yaml:"quorum_down,omitempty"`

	SorryServer        *RealServer `json:"sorry_server,omitempty" yaml:"sorry_server,omitempty"`
	SorryServerInhibit bool        `json:"sorry_server_inhibit,omitempty" yaml:"sorry_server_inhibit,omitempty"`
	SorryServerMethod  string      `json:"sorry_server_lvs_method,omitempty" yaml:"sorry_server_lvs_method,omitempty"`

	SMTPAlert *bool  `json:"smtp_alert,omitempty" yaml:"smtp_alert,omitempty"`
	SNMPName  string `json:"snmp_name,omitempty" yaml:"snmp_name,omitempty"`

	RealServers []RealServer `json:"real_servers,omitempty" yaml:"real_servers,omitempty"`

	Extra []Setting `json:"extra,omitempty" yaml:"extra,omitempty"`
}

// CheckDefaults are the scheduling and connection settings a checker
// inherits from its real server, which inherits them from its virtual server.
// Zero means "inherit" (or keepalived's default at the top).
type CheckDefaults struct {
	DelayLoop        time.Duration  `json:"delay_loop,omitempty" yaml:"delay_loop,omitempty"`                 // default 60s
	ConnectTimeout   time.Duration  `json:"connect_timeout,omitempty" yaml:"connect_timeout,omitempty"`       // default 5s
	Retry            *int           `json:"retry,omitempty" yaml:"retry,omitempty"`                           // default 1 (DNS 3, MISC 0)
	DelayBeforeRetry time.Duration  `json:"delay_before_retry,omitempty" yaml:"delay_before_retry,omitempty"` // default 1s (HTTP/SSL 3s)
	Warmup           *time.Duration `json:"warmup,omitempty" yaml:"warmup,omitempty"`                         // default delay_loop
}

// RealServer is a real_server (or sorry_server) entry.
type RealServer struct {
	Pos    Pos        `json:"-" yaml:"-"`
	Addr   netip.Addr `json:"address" yaml:"address"`
	Port   int        `json:"port,omitempty" yaml:"port,omitempty"`
	Weight int        `json:"weight" yaml:"weight"` // default 1
	// Method overrides the virtual server's lb_kind.
	Method           string  `json:"lvs_method,omitempty" yaml:"lvs_method,omitempty"`
	InhibitOnFailure *bool   `json:"inhibit_on_failure,omitempty" yaml:"inhibit_on_failure,omitempty"`
	UThreshold       int     `json:"uthreshold,omitempty" yaml:"uthreshold,omitempty"`
	LThreshold       int     `json:"lthreshold,omitempty" yaml:"lthreshold,omitempty"`
	Alpha            *bool   `json:"alpha,omitempty" yaml:"alpha,omitempty"`
	Virtualhost      string  `json:"virtualhost,omitempty" yaml:"virtualhost,omitempty"`
	SMTPAlert        *bool   `json:"smtp_alert,omitempty" yaml:"smtp_alert,omitempty"`
	NotifyUp         *Script `json:"notify_up,omitempty" yaml:"notify_up,omitempty"`
	NotifyDown       *Script `json:"notify_down,omitempty" yaml:"notify_down,omitempty"`
	CheckDefaults

	Checkers []Checker `json:"checkers,omitempty" yaml:"checkers,omitempty"`
	Extra    []Setting `json:"extra,omitempty" yaml:"extra,omitempty"`
}

// CheckerType names a checker block.
type CheckerType string

// The checkers keepalived has (reference §1.7).
const (
	TCPCheck  CheckerType = "TCP_CHECK"
	HTTPGet   CheckerType = "HTTP_GET"
	SSLGet    CheckerType = "SSL_GET"
	MiscCheck CheckerType = "MISC_CHECK"
	SMTPCheck CheckerType = "SMTP_CHECK"
	DNSCheck  CheckerType = "DNS_CHECK"
	UDPCheck  CheckerType = "UDP_CHECK"
	PingCheck CheckerType = "PING_CHECK"
	FileCheck CheckerType = "FILE_CHECK"
	BFDCheck  CheckerType = "BFD_CHECK"
)

// Checker is one checker block inside a real_server. Type says which of the
// type-specific parts apply.
type Checker struct {
	Pos  Pos         `json:"-" yaml:"-"`
	Type CheckerType `json:"type" yaml:"type"`

	// Common connection settings (not for MISC_CHECK and FILE_CHECK).
	ConnectIP   netip.Addr `json:"connect_ip,omitempty" yaml:"connect_ip,omitempty"`
	ConnectPort int        `json:"connect_port,omitempty" yaml:"connect_port,omitempty"`
	BindTo      netip.Addr `json:"bindto,omitempty" yaml:"bindto,omitempty"`
	BindPort    int        `json:"bind_port,omitempty" yaml:"bind_port,omitempty"`
	BindIf      string     `json:"bind_if,omitempty" yaml:"bind_if,omitempty"`
	FWMark      uint32     `json:"fwmark,omitempty" yaml:"fwmark,omitempty"`
	// Scheduling; zero values inherit from the real server.
	CheckDefaults
	Alpha          *bool `json:"alpha,omitempty" yaml:"alpha,omitempty"`
	LogAllFailures *bool `json:"log_all_failures,omitempty" yaml:"log_all_failures,omitempty"`

	HTTP *HTTPCheck `json:"http,omitempty" yaml:"http,omitempty"` // HTTP_GET, SSL_GET
	Misc *MiscSpec  `json:"misc,omitempty" yaml:"misc,omitempty"` // MISC_CHECK
	SMTP *SMTPSpec  `json:"smtp,omitempty" yaml:"smtp,omitempty"` // SMTP_CHECK
	DNS  *DNSSpec   `json:"dns,omitempty" yaml:"dns,omitempty"`   // DNS_CHECK
	UDP  *UDPSpec   `json:"udp,omitempty" yaml:"udp,omitempty"`   // UDP_CHECK
	File *FileSpec  `json:"file,omitempty" yaml:"file,omitempty"` // FILE_CHECK
	BFD  *BFDSpec   `json:"bfd,omitempty" yaml:"bfd,omitempty"`   // BFD_CHECK

	Extra []Setting `json:"extra,omitempty" yaml:"extra,omitempty"`
}

// HTTPCheck holds HTTP_GET / SSL_GET settings.
type HTTPCheck struct {
	URLs         []URL  `json:"url" yaml:"url"`
	Protocol     string `json:"http_protocol,omitempty" yaml:"http_protocol,omitempty"` // 1.0 (default), 1.0C, 1.1
	Virtualhost  string `json:"virtualhost,omitempty" yaml:"virtualhost,omitempty"`
	FastRecovery bool   `json:"fast_recovery,omitempty" yaml:"fast_recovery,omitempty"`
	EnableSNI    bool   `json:"enable_sni,omitempty" yaml:"enable_sni,omitempty"`
	SNIName      string `json:"sni_name,omitempty" yaml:"sni_name,omitempty"`
	TLSCompliant bool   `json:"tls_compliant,omitempty" yaml:"tls_compliant,omitempty"`
}

// URL is one url block of an HTTP_GET / SSL_GET checker.
type URL struct {
	Pos  Pos    `json:"-" yaml:"-"`
	Path string `json:"path" yaml:"path"`
	// Digest is keepalived's MD5 of the body, lower-case hex; "" = not checked.
	Digest string `json:"digest,omitempty" yaml:"digest,omitempty"`
	// StatusCodes are inclusive ranges; empty means 200-299.
	StatusCodes []StatusRange `json:"status_code,omitempty" yaml:"status_code,omitempty"`
	Virtualhost string        `json:"virtualhost,omitempty" yaml:"virtualhost,omitempty"`
	Regex       string        `json:"regex,omitempty" yaml:"regex,omitempty"`
	// RegexPos is where Regex was written (the url's Pos if unknown).
	RegexPos       Pos      `json:"-" yaml:"-"`
	RegexNoMatch   bool     `json:"regex_no_match,omitempty" yaml:"regex_no_match,omitempty"`
	RegexOptions   []string `json:"regex_options,omitempty" yaml:"regex_options,omitempty"`
	RegexMinOffset int      `json:"regex_min_offset,omitempty" yaml:"regex_min_offset,omitempty"`
	RegexMaxOffset int      `json:"regex_max_offset,omitempty" yaml:"regex_max_offset,omitempty"`
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct {
	From int `json:"from" yaml:"from"`
	To   int `json:"to" yaml:"to"`
}

// MiscSpec holds MISC_CHECK settings.
type MiscSpec struct {
	Path    Script        `json:"misc_path" yaml:"misc_path"`
	Timeout time.Duration `json:"misc_timeout,omitempty" yaml:"misc_timeout,omitempty"` // default: delay_loop
	// Dynamic: exit 0 OK, 1 fail, 2-255 OK with weight = code-2.
	Dynamic bool `json:"misc_dynamic,omitempty" yaml:"misc_dynamic,omitempty"`
}

// SMTPSpec holds SMTP_CHECK settings.
type SMTPSpec struct {
	HeloName string `json:"helo_name,omitempty" yaml:"helo_name,omitempty"` // default: smtp_helo_name or router_id
}

// DNSSpec holds DNS_CHECK settings.
type DNSSpec struct {
	Type string `json:"type,omitempty" yaml:"type,omitempty"` // default SOA
	Name string `json:"name,omitempty" yaml:"name,omitempty"` // default "."
}

// UDPSpec holds UDP_CHECK settings.
type UDPSpec struct {
	Payload      []byte `json:"payload,omitempty" yaml:"payload,omitempty"`
	RequireReply bool   `json:"require_reply,omitempty" yaml:"require_reply,omitempty"`
	// ReplyPattern is require_reply's hex pattern with 'x' wildcards, as written.
	ReplyPattern   string `json:"reply_pattern,omitempty" yaml:"reply_pattern,omitempty"`
	MinReplyLength int    `json:"min_reply_length,omitempty" yaml:"min_reply_length,omitempty"`
	MaxReplyLength int    `json:"max_reply_length,omitempty" yaml:"max_reply_length,omitempty"`
}

// FileSpec holds FILE_CHECK settings: a track_file whose value sets the weight.
type FileSpec struct {
	TrackFile string `json:"track_file" yaml:"track_file"`
	Weight    int    `json:"weight,omitempty" yaml:"weight,omitempty"`
	Reverse   bool   `json:"weight_reverse,omitempty" yaml:"weight_reverse,omitempty"`
}

// BFDSpec holds BFD_CHECK settings (parsed and kept; keepwatch has no BFD).
type BFDSpec struct {
	Name string `json:"name" yaml:"name"`
}
