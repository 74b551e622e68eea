// Package loader reads a configuration file in any form keepwatch accepts and validates it.
package loader

import (
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/config/kaconf"
)

// Options tune loading.
type Options struct {
	// ConfigID selects `@id` conditional lines; "" means the first label of
	// the host name, as keepalived's default.
	ConfigID string
	// CheckInterfaces warns about interfaces missing on this host, as
	// keepalived -t does.
	CheckInterfaces bool
}

// Load reads path — keepalived.conf syntax, or YAML/TOML/JSON by extension —
// and validates it. The config is nil only when it could not be read at all.
// Otherwise it is the config as keepalived 2.2.7 would run it: every
// diagnostic's Action is applied (bad values ignored with the default kept,
// skipped entries left out), and c.Diagnostics holds the diagnostics.
// Whether it may run at all is config.Admit's decision.
func Load(path string, opts Options) (*config.Config, config.Diagnostics) {
	vo := config.ValidateOptions{Apply: true}
	if opts.CheckInterfaces {
		vo.InterfaceExists = interfaceExists
	}
	var c *config.Config
	var ds config.Diagnostics
	if config.IsStructured(path) {
		c, ds = config.LoadStructured(path, vo)
	} else {
		c, ds = kaconf.Load(path, kaconf.LoadOptions{Read: kaconf.ReadOptions{ConfigID: opts.ConfigID}, RTTables: config.SystemRTTables()})
		if c != nil {
			if opts.CheckInterfaces && c.Global.NetNamespace != "" {
				// The interfaces are net_namespace's, where the agent
				// will run its VRRP side.
				exists, done := interfacesIn(c.Global.NetNamespace)
				defer done()
				vo.InterfaceExists = exists
			}
			ds = append(ds, config.Validate(c, vo)...)
		}
	}
	if c != nil {
		c.Diagnostics = ds
	}
	return c, ds
}

func interfaceExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// interfacesIn is interfaceExists in a named network namespace, through a
// netlink handle made there. If the namespace cannot be opened, interfaces
// are not checked (nil): the agent reports that namespace itself at start.
func interfacesIn(ns string) (func(string) bool, func()) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return nil, func() {}
	}
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		h.Close()
		return nil, func() {}
	}
	return func(name string) bool {
			_, err := nl.LinkByName(name)
			return err == nil
		}, func() {
			nl.Close()
			h.Close()
		}
}
