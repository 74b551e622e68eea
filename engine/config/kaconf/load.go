package kaconf

import (
	"io/fs"

	"github.com/keepwatch/keepwatch/engine/config"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// Read is passed to the reader (config-id, environment, limits).
	Read ReadOptions
	// RTTables resolves the names of routing tables, protocols and realms
	// in virtual_routes and virtual_rules, as keepalived does with the
	// host's (config.SystemRTTables, which the loader passes). Nil checks
	// numbers and built-in names only, so a parse reads no file of the host.
	RTTables *config.RTTables
}

// Load reads and parses the keepalived.conf at path into the config model,
// with keepalived's defaults applied (priority 100, advert_int 1 s, ...). The
// diagnostics are the reader's followed by the parser's; when one is Fatal
// the returned config is nil. Cross-block checks are config.Validate's.
func Load(path string, opts LoadOptions) (*config.Config, config.Diagnostics) {
	lines, ds := Read(path, opts.Read)
	return load(lines, ds, path, opts.RTTables)
}

// LoadFS is Load over a file system (fstest.MapFS in tests and fuzzing).
func LoadFS(fsys fs.FS, name string, opts LoadOptions) (*config.Config, config.Diagnostics) {
	lines, ds := ReadFS(fsys, name, opts.Read)
	return load(lines, ds, name, opts.RTTables)
}

func load(lines []Line, ds config.Diagnostics, source string, tables *config.RTTables) (*config.Config, config.Diagnostics) {
	if ds.Worst() == config.Fatal {
		return nil, ds
	}
	c, pds := parse(lines, source, tables)
	return c, append(ds, pds...)
}
