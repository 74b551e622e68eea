package kaconf

import (
	"io/fs"

	"github.com/keepwatch/keepwatch/engine/config"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// Read is passed to the reader (config-id, environment, limits).
	Read ReadOptions
}

// Load reads and parses the keepalived.conf at path into the config model,
// with keepalived's defaults applied (priority 100, advert_int 1 s, ...). The
// diagnostics are the reader's followed by the parser's; when one is Fatal
// the returned config is nil. Cross-block checks are config.Validate's.
func Load(path string, opts LoadOptions) (*config.Config, config.Diagnostics) {
	lines, ds := Read(path, opts.Read)
	return load(lines, ds, path)
}

// LoadFS is Load over a file system (fstest.MapFS in tests and fuzzing).
func LoadFS(fsys fs.FS, name string, opts LoadOptions) (*config.Config, config.Diagnostics) {
	lines, ds := ReadFS(fsys, name, opts.Read)
	return load(lines, ds, name)
}

func load(lines []Line, ds config.Diagnostics, source string) (*config.Config, config.Diagnostics) {
	if ds.Worst() == config.Fatal {
		return nil, ds
	}
	c, pds := Parse(lines, source)
	return c, append(ds, pds...)
}
