package metrics

import (
	"net/netip"
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Declaration is what the configuration declares: the collector creates
// every series it knows of up front, so a dashboard or an alert sees a 0
// rather than no data before the first event.
type Declaration struct {
	Instances      []Instance
	Scripts        []Script
	VirtualServers []VirtualServer
	// ConfigErrors and ConfigWarnings count the running config's
	// diagnostics (keepwatch_config_diagnostics).
	ConfigErrors, ConfigWarnings int
}

// Instance is a configured VRRP instance. Name, VRID, Interface and Family
// are its identity labels; the other fields give the initial gauge values.
type Instance struct {
	Name      string
	VRID      uint8
	Interface string
	Family    vrrp.Family
	// Version is the VRRP version, 2 or 3 (0 means 3); it decides the skew
	// time formula (RFC 3768 §6.1 versus RFC 9568 §6.1).
	Version  int
	Priority int
	// Interval is the configured advert_int.
	Interval time.Duration
	VIPs     []netip.Addr
	// Segment is the label keepwatch_vrrp_instance_info carries: what
	// identifies the virtual router across hosts (see Segment).
	Segment string
}

// Script is a configured vrrp_script.
type Script struct {
	Name string
	// InitFail is keepalived's init_fail: the script counts as failed until
	// its first run. Without it the script starts as up.
	InitFail bool
}

// VirtualServer is a configured virtual_server. Name must be written as the
// engine writes event.Event.Service ("ip:port/proto" or "fwmark:N").
type VirtualServer struct {
	Name string
	// Checkers lists the checker types its real servers use (as in
	// event.Event.Name of probe events: "tcp", "http", ...).
	Checkers    []string
	RealServers []RealServer
}

// RealServer is a configured real_server; Name is "ip:port" as in
// event.Event.Target.
type RealServer struct {
	Name   string
	Weight int
	// Up is the state before the first check: keepalived starts real
	// servers up unless the virtual server has "alpha" set.
	Up bool
}
