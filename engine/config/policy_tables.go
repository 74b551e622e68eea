package config

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// DefaultIPRouteDir is where iproute2 keeps its name tables (rt_tables,
// rt_protos, rt_realms, rt_dsfield, group). keepalived 2.2.7 reads the same
// files from the same directory (lib/rttables.c, IPROUTE_ETC_DIR).
const DefaultIPRouteDir = "/etc/iproute2"

// RTTables maps the names `ip route` and `ip rule` accept for routing
// tables, protocols, realms, DS fields and interface groups to numbers, as
// keepalived does when it parses virtual_routes and virtual_rules
// (rttables.c: the built-in names first, then the file, then the .conf
// files of its ".d" directory). A file is read the first time a name it
// could hold is looked up, so a config that uses numbers reads nothing.
type RTTables struct {
	dir  string
	mu   sync.Mutex
	maps map[string]map[string]uint32
	errs map[string]error
}

// NewRTTables reads name tables from dir (DefaultIPRouteDir on a host;
// testdata in tests).
func NewRTTables(dir string) *RTTables { return &RTTables{dir: dir} }

var (
	systemOnce   sync.Once
	systemTables *RTTables
)

// SystemRTTables is the host's tables, in DefaultIPRouteDir.
func SystemRTTables() *RTTables {
	systemOnce.Do(func() { systemTables = NewRTTables(DefaultIPRouteDir) })
	return systemTables
}

// builtins are the names keepalived and iproute2 know without a file
// (rttables.c's built-in lists; rt_protos' "keepalived" is 18, RTPROT_KEEPALIVED).
var builtins = map[string]map[string]uint32{
	"rt_tables": {"unspec": 0, "default": 253, "main": 254, "local": 255},
	"rt_protos": {"unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "gated": 8, "ra": 9,
		"mrt": 10, "zebra": 11, "bird": 12, "dnrouted": 13, "xorp": 14, "ntk": 15, "dhcp": 16, "keepalived": 18,
		"babel": 42, "openr": 99, "bgp": 186, "isis": 187, "ospf": 188, "rip": 189, "eigrp": 192},
	"rt_realms":  {"unspec": 0, "unknown": 0},
	"rt_dsfield": {},
	"group":      {"default": 0},
}

// kinds names what each file holds, for messages.
var kinds = map[string]string{"rt_tables": "table", "rt_protos": "protocol", "rt_realms": "realm", "rt_dsfield": "dsfield", "group": "group"}

// lookup resolves name in table file (rt_tables, rt_protos, ...): a
// number (decimal, or 0x hex) as it is, else a built-in name, else the
// files. max bounds a number. A nil *RTTables reads no file: another name
// is taken as 0 unchecked (a parse that is not given the host's tables).
func (t *RTTables) lookup(file, name string, max uint64) (uint32, error) {
	if v, err := strconv.ParseUint(name, 0, 32); err == nil {
		if v > max {
			return 0, fmt.Errorf("%s %d out of range (0-%d)", kinds[file], v, max)
		}
		return uint32(v), nil
	}
	if v, ok := builtins[file][name]; ok {
		return v, nil
	}
	if t == nil {
		return 0, nil
	}
	m, err := t.load(file)
	if v, ok := m[name]; ok {
		return v, nil
	}
	if err != nil {
		return 0, fmt.Errorf("unknown %s name %q (%v)", kinds[file], name, err)
	}
	return 0, fmt.Errorf("unknown %s name %q (not in %s)", kinds[file], name, filepath.Join(t.dir, file))
}

// Table resolves a routing table name or number.
func (t *RTTables) Table(name string) (uint32, error) { return t.lookup("rt_tables", name, 1<<32-1) }

// Protocol resolves a route or rule protocol name or number.
func (t *RTTables) Protocol(name string) (uint8, error) {
	v, err := t.lookup("rt_protos", name, 255)
	return uint8(v), err
}

// Realm resolves a realm name or number.
func (t *RTTables) Realm(name string) (uint16, error) {
	v, err := t.lookup("rt_realms", name, 1<<16-1)
	return uint16(v), err
}

// Group resolves an interface group name or number.
func (t *RTTables) Group(name string) (uint32, error) { return t.lookup("group", name, 1<<32-1) }

// DSField resolves a TOS / DS field: a name from rt_dsfield, or a number.
// keepalived 2.2.7 reads the number in C's base 0 (decimal unless 0x),
// where iproute2 reads hexadecimal: "tos 10" is 0x0a under keepalived,
// which the kernel refuses (the ECN bits), as it does under keepwatch.
func (t *RTTables) DSField(name string) (uint8, error) {
	v, err := t.lookup("rt_dsfield", name, 255)
	return uint8(v), err
}

// load reads file and the .conf files of file.d, once.
func (t *RTTables) load(file string) (map[string]uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.maps[file]; ok {
		return m, t.errs[file]
	}
	if t.maps == nil {
		t.maps, t.errs = map[string]map[string]uint32{}, map[string]error{}
	}
	m := map[string]uint32{}
	err := readNames(filepath.Join(t.dir, file), m)
	if file == "rt_tables" || file == "rt_protos" {
		// keepalived reads rt_tables.d/*.conf (and rt_protos.d) in name order.
		names, _ := filepath.Glob(filepath.Join(t.dir, file+".d", "*.conf"))
		sort.Strings(names)
		for _, n := range names {
			if e := readNames(n, m); e != nil && err == nil {
				err = e
			}
		}
	}
	t.maps[file], t.errs[file] = m, err
	return m, err
}

// readNames reads "NUMBER NAME" lines; '#' starts a comment, and lines
// that are not a number and a name are skipped, as iproute2 does.
func readNames(path string, into map[string]uint32) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		v, err := strconv.ParseUint(fs[0], 0, 32)
		if err != nil {
			continue
		}
		if _, ok := into[fs[1]]; !ok {
			into[fs[1]] = uint32(v)
		}
	}
	return sc.Err()
}
