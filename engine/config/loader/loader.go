// Package loader reads a configuration file in any form keepwatch accepts and validates it.
package loader

import (
	"net"

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
// and validates it. The config is nil only when it could not be read at all;
// callers must not use it when the diagnostics hold errors.
func Load(path string, opts Options) (*config.Config, config.Diagnostics) {
	vo := config.ValidateOptions{}
	if opts.CheckInterfaces {
		vo.InterfaceExists = interfaceExists
	}
	if config.IsStructured(path) {
		return config.LoadStructured(path, vo)
	}
	c, ds := kaconf.Load(path, kaconf.LoadOptions{Read: kaconf.ReadOptions{ConfigID: opts.ConfigID}})
	if c == nil {
		return nil, ds
	}
	return c, append(ds, config.Validate(c, vo)...)
}

func interfaceExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}
