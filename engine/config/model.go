package config

import (
	"log/slog"
	"net/netip"
	"time"
)

// Config is one whole keepwatch configuration, whichever front end read it
// (keepalived.conf or YAML/TOML/JSON). Zero values mean "not set" only where a
// field's comment says so; everything else holds keepalived's default once
// the front end has applied Defaults.
type Config struct {
	// Source is the top-level file the config was read from.
	Source string `json:"-" yaml:"-"`

	Agent  Agent  `json:"agent,omitempty" yaml:"agent,omitempty"`
	Global Global `json:"global_defs" yaml:"global_defs"`

	Scripts        []Script        `json:"vrrp_scripts,omitempty" yaml:"vrrp_scripts,omitempty"`
	TrackFiles     []TrackFile     `json:"track_files,omitempty" yaml:"track_files,omitempty"`
	TrackProcesses []TrackProcess  `json:"track_processes,omitempty" yaml:"track_processes,omitempty"`
	Instances      []Instance      `json:"vrrp_instances,omitempty" yaml:"vrrp_instances,omitempty"`
	SyncGroups     []SyncGroup     `json:"vrrp_sync_groups,omitempty" yaml:"vrrp_sync_groups,omitempty"`
	GarpGroups     []GarpGroup     `json:"garp_groups,omitempty" yaml:"garp_groups,omitempty"`
	StaticAddrs    []Address       `json:"static_ipaddress,omitempty" yaml:"static_ipaddress,omitempty"`
	StaticRoutes   []Route         `json:"static_routes,omitempty" yaml:"static_routes,omitempty"`
	StaticRules    []Rule          `json:"static_rules,omitempty" yaml:"static_rules,omitempty"`
	VSGroups       []VSGroup       `json:"virtual_server_groups,omitempty" yaml:"virtual_server_groups,omitempty"`
	VirtualServers []VirtualServer `json:"virtual_servers,omitempty" yaml:"virtual_servers,omitempty"`
	SSL            *SSL            `json:"ssl,omitempty" yaml:"ssl,omitempty"`

	// Extra holds root-level keywords keepwatch parses but does not act on
	// (reference tier R: net_namespace, bfd_instance, ...).
	Extra []Setting `json:"extra,omitempty" yaml:"extra,omitempty"`

	// Diagnostics are what loading the config reported, each with what was
	// done about it; the loader sets them. They travel with the config so
	// that status, metrics and the reload guard see the running config's.
	Diagnostics Diagnostics `json:"-" yaml:"-"`
}

// Agent holds keepwatch's own settings, which keepalived.conf has no words
// for; YAML/TOML/JSON and KEEPWATCH_* environment variables set them.
type Agent struct {
	ListenAddress string  `json:"listen_address,omitempty" yaml:"listen_address,omitempty"`
	WebConfigFile string  `json:"web_config_file,omitempty" yaml:"web_config_file,omitempty"`
	LogFormat     string  `json:"log_format,omitempty" yaml:"log_format,omitempty"` // json or console
	LogLevel      string  `json:"log_level,omitempty" yaml:"log_level,omitempty"`
	OTLPEndpoint  string  `json:"otlp_endpoint,omitempty" yaml:"otlp_endpoint,omitempty"`
	OTLPProtocol  string  `json:"otlp_protocol,omitempty" yaml:"otlp_protocol,omitempty"` // http/protobuf or grpc
	AdvertSampler float64 `json:"advert_span_ratio,omitempty" yaml:"advert_span_ratio,omitempty"`
	// Strict refuses a config with any error, where keepalived (and
	// keepwatch by default) runs it with the bad lines ignored.
	Strict bool `json:"strict,omitempty" yaml:"strict,omitempty"`
}

// Setting is a keyword keepwatch keeps but does not model, with its
// arguments as written, so nothing in a user's file is silently lost.
type Setting struct {
	Pos     Pos      `json:"-" yaml:"-"`
	Keyword string   `json:"keyword" yaml:"keyword"`
	Args    []string `json:"args,omitempty" yaml:"args,omitempty"`
	// Block holds the lines of a sub-block, if the keyword opened one.
	Block []Setting `json:"block,omitempty" yaml:"block,omitempty"`
}

// Secret is a string that never prints: auth_pass, SMTP and SSL passwords.
type Secret string

// String masks the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "********"
}

// LogValue masks the secret in structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Script is a command line as keepalived takes it for notify scripts, vrrp
// scripts and MISC_CHECK: the whole command, and the user to run it as.
type Script struct {
	Pos  Pos    `json:"-" yaml:"-"`
	Name string `json:"name,omitempty" yaml:"name,omitempty"` // vrrp_script NAME; empty for inline commands
	// Command is the script specification as written (quotes processed), e.g.
	// `/usr/bin/check "arg 1"`; Args is it split into argv.
	Command string   `json:"command" yaml:"command"`
	Args    []string `json:"-" yaml:"-"`
	User    string   `json:"user,omitempty" yaml:"user,omitempty"`
	Group   string   `json:"group,omitempty" yaml:"group,omitempty"`

	// vrrp_script settings (zero for inline notify commands).
	Interval time.Duration `json:"interval,omitempty" yaml:"interval,omitempty"` // default 1s
	Timeout  time.Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`   // default = interval
	Weight   int           `json:"weight,omitempty" yaml:"weight,omitempty"`     // -253..253; 0 = FAULT on failure
	Reverse  bool          `json:"weight_reverse,omitempty" yaml:"weight_reverse,omitempty"`
	Rise     int           `json:"rise,omitempty" yaml:"rise,omitempty"` // default 1
	Fall     int           `json:"fall,omitempty" yaml:"fall,omitempty"` // default 1
	InitFail bool          `json:"init_fail,omitempty" yaml:"init_fail,omitempty"`
}

// TrackFile is a root-level track_file (alias vrrp_track_file) block.
type TrackFile struct {
	Pos      Pos    `json:"-" yaml:"-"`
	Name     string `json:"name" yaml:"name"`
	File     string `json:"file" yaml:"file"`
	Weight   int    `json:"weight,omitempty" yaml:"weight,omitempty"` // default 1
	Reverse  bool   `json:"weight_reverse,omitempty" yaml:"weight_reverse,omitempty"`
	InitFile *int   `json:"init_file,omitempty" yaml:"init_file,omitempty"` // nil: not set
	// InitOverwrite rewrites the file at start even if it exists.
	InitOverwrite bool `json:"init_file_overwrite,omitempty" yaml:"init_file_overwrite,omitempty"`
}

// TrackProcess is a root-level vrrp_track_process block.
type TrackProcess struct {
	Pos            Pos           `json:"-" yaml:"-"`
	Name           string        `json:"name" yaml:"name"`
	Process        string        `json:"process" yaml:"process"`
	Args           []string      `json:"args,omitempty" yaml:"args,omitempty"`
	ParamMatch     string        `json:"param_match,omitempty" yaml:"param_match,omitempty"` // "", initial, partial
	Weight         int           `json:"weight,omitempty" yaml:"weight,omitempty"`
	Reverse        bool          `json:"weight_reverse,omitempty" yaml:"weight_reverse,omitempty"`
	Quorum         int           `json:"quorum,omitempty" yaml:"quorum,omitempty"` // default 1
	QuorumMax      int           `json:"quorum_max,omitempty" yaml:"quorum_max,omitempty"`
	Delay          time.Duration `json:"delay,omitempty" yaml:"delay,omitempty"`
	TerminateDelay time.Duration `json:"terminate_delay,omitempty" yaml:"terminate_delay,omitempty"`
	ForkDelay      time.Duration `json:"fork_delay,omitempty" yaml:"fork_delay,omitempty"`
	FullCommand    bool          `json:"full_command,omitempty" yaml:"full_command,omitempty"`
}

// TrackRef is an entry of a track_script, track_interface, track_file or
// track_process block: a name, optionally with its own weight.
type TrackRef struct {
	Pos    Pos    `json:"-" yaml:"-"`
	Name   string `json:"name" yaml:"name"`
	Weight *int   `json:"weight,omitempty" yaml:"weight,omitempty"` // nil: the tracker's own
	// Reverse is nil when not given ("reverse" or "noreverse" set it).
	Reverse *bool `json:"reverse,omitempty" yaml:"reverse,omitempty"`
}

// Address is one line of virtual_ipaddress, virtual_ipaddress_excluded or
// static_ipaddress: ONE address with its options (reference §1.3).
type Address struct {
	Pos           Pos          `json:"-" yaml:"-"`
	Prefix        netip.Prefix `json:"address" yaml:"address"`             // bits default to /32 or /128
	Broadcast     string       `json:"brd,omitempty" yaml:"brd,omitempty"` // an address, "+" or "-"
	Dev           string       `json:"dev,omitempty" yaml:"dev,omitempty"`
	UseVMAC       bool         `json:"use_vmac,omitempty" yaml:"use_vmac,omitempty"`
	Scope         string       `json:"scope,omitempty" yaml:"scope,omitempty"` // site, link, host, nowhere, global or a number
	Label         string       `json:"label,omitempty" yaml:"label,omitempty"`
	Peer          netip.Prefix `json:"peer,omitempty" yaml:"peer,omitempty"`
	Home          bool         `json:"home,omitempty" yaml:"home,omitempty"`
	NoDAD         bool         `json:"nodad,omitempty" yaml:"nodad,omitempty"`
	MngTmpAddr    bool         `json:"mngtmpaddr,omitempty" yaml:"mngtmpaddr,omitempty"`
	NoPrefixRoute bool         `json:"noprefixroute,omitempty" yaml:"noprefixroute,omitempty"`
	AutoJoin      bool         `json:"autojoin,omitempty" yaml:"autojoin,omitempty"`
	NoTrack       bool         `json:"no_track,omitempty" yaml:"no_track,omitempty"`
	// PreferredLft is in seconds; -1 means "forever"; nil: not set.
	PreferredLft *int64 `json:"preferred_lft,omitempty" yaml:"preferred_lft,omitempty"`
	TrackGroup   string `json:"track_group,omitempty" yaml:"track_group,omitempty"`
}

// Route is one line of virtual_routes or static_routes, in `ip route` syntax.
type Route struct {
	Pos Pos `json:"-" yaml:"-"`
	// Type is "" (unicast) or blackhole, unreachable, prohibit, throw.
	Type    string       `json:"type,omitempty" yaml:"type,omitempty"`
	Dst     netip.Prefix `json:"dst,omitempty" yaml:"dst,omitempty"` // zero: default route
	Src     netip.Addr   `json:"src,omitempty" yaml:"src,omitempty"`
	Via     netip.Addr   `json:"via,omitempty" yaml:"via,omitempty"`
	Dev     string       `json:"dev,omitempty" yaml:"dev,omitempty"`
	Table   string       `json:"table,omitempty" yaml:"table,omitempty"`
	Metric  int          `json:"metric,omitempty" yaml:"metric,omitempty"`
	Scope   string       `json:"scope,omitempty" yaml:"scope,omitempty"`
	Proto   string       `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	OnLink  bool         `json:"onlink,omitempty" yaml:"onlink,omitempty"`
	NoTrack bool         `json:"no_track,omitempty" yaml:"no_track,omitempty"`
	// Rest keeps any `ip route` words keepwatch does not model, in order.
	Rest       []string `json:"rest,omitempty" yaml:"rest,omitempty"`
	TrackGroup string   `json:"track_group,omitempty" yaml:"track_group,omitempty"`
}

// Rule is one line of virtual_rules or static_rules, in `ip rule` syntax.
type Rule struct {
	Pos      Pos          `json:"-" yaml:"-"`
	From     netip.Prefix `json:"from,omitempty" yaml:"from,omitempty"`
	To       netip.Prefix `json:"to,omitempty" yaml:"to,omitempty"`
	Table    string       `json:"table,omitempty" yaml:"table,omitempty"`
	Priority int          `json:"priority,omitempty" yaml:"priority,omitempty"`
	FWMark   string       `json:"fwmark,omitempty" yaml:"fwmark,omitempty"` // "N" or "N/MASK"
	IIf      string       `json:"iif,omitempty" yaml:"iif,omitempty"`
	OIf      string       `json:"oif,omitempty" yaml:"oif,omitempty"`
	Action   string       `json:"action,omitempty" yaml:"action,omitempty"` // "" (lookup), blackhole, prohibit, unreachable, goto N
	NoTrack  bool         `json:"no_track,omitempty" yaml:"no_track,omitempty"`
	Family   int          `json:"family,omitempty" yaml:"family,omitempty"` // 4 or 6 when it cannot be inferred
	Rest     []string     `json:"rest,omitempty" yaml:"rest,omitempty"`
}

// GarpGroup is a root-level garp_group block.
type GarpGroup struct {
	Pos          Pos           `json:"-" yaml:"-"`
	GarpInterval time.Duration `json:"garp_interval,omitempty" yaml:"garp_interval,omitempty"`
	GnaInterval  time.Duration `json:"gna_interval,omitempty" yaml:"gna_interval,omitempty"`
	Interfaces   []string      `json:"interfaces" yaml:"interfaces"`
}

// SSL is the root-level SSL block used by SSL_GET checkers.
type SSL struct {
	Pos         Pos    `json:"-" yaml:"-"`
	Password    Secret `json:"password,omitempty" yaml:"password,omitempty"`
	CA          string `json:"ca,omitempty" yaml:"ca,omitempty"`
	Certificate string `json:"certificate,omitempty" yaml:"certificate,omitempty"`
	Key         string `json:"key,omitempty" yaml:"key,omitempty"`
}
