package kaconf

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/keepwatch/keepwatch/engine/config"
)

// Route and rule options are resolved while parsing, with the name tables
// given: a bad one is reported at its file, line, column and keyword, and
// the entry is skipped (or only the option dropped) as keepalived does.
func TestPolicyDiagnostics(t *testing.T) {
	conf := `static_rules {
	from 192.0.2.1 table vips priority 10
	from 192.0.2.2 table nosuch priority 11
	from 192.0.2.3 table 1 priority 12 sport 53
	from 192.0.2.4 lookup 1 pref 13
	table 5 l3mdev priority 14
	from 192.0.2.5 tunnel-id 0x10 table 1 priority 15
	from 192.0.2.6 l3mdev tunnel-id 7 priority 16
	tunnel-id 4294967301 table 1 priority 17
}
static_routes {
	198.51.100.0/24 dev eth0 table isp1 mtu 1400
	198.51.100.16/28 dev eth0 table 1 mtu lots
	2001:db8::/32 dev eth0 expires 5
}
`
	fsys := fstest.MapFS{"k.conf": {Data: []byte(conf)}}
	c, ds := LoadFS(fsys, "k.conf", LoadOptions{RTTables: config.NewRTTables("../testdata/iproute2")})
	if c == nil {
		t.Fatal(ds)
	}
	var got []string
	for _, d := range ds {
		if strings.Contains(d.Message, "no preference") || strings.Contains(d.Message, "cannot track") {
			continue
		}
		got = append(got, d.String())
	}
	want := []string{
		`k.conf:3:17: error: virtual_rules: table: unknown table name "nosuch" (not in ../testdata/iproute2/rt_tables) - skipping`,
		`k.conf:4:37: error: virtual_rules: sport: invalid range "53" (keepalived needs FROM-TO) - ignoring the option`,
		`k.conf:5:26: error: virtual_rules: pref: unknown rule option - skipping`,
		`k.conf:6:10: error: virtual_rules: l3mdev: table 5 given: an l3mdev rule looks up its VRF device's table - skipping`,
		`k.conf:7:17: error: virtual_rules: tunnel-id: invalid tunnel id "0x10" (a decimal number from 0 to 18446744073709551615) - skipping`,
		`k.conf:9:2: warning: tunnel-id 4294967301: keepalived 2.2.7 installs tun_id 5 (its low 32 bits); keepwatch installs the value written`,
		`k.conf:13:36: error: virtual_routes: mtu: invalid value "lots" - skipping`,
		`k.conf:14:25: warning: route option 'expires 5' is accepted but ignored by keepwatch`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(c.StaticRules) != 4 || c.StaticRules[0].Table != "vips" || len(c.StaticRoutes) != 2 {
		t.Errorf("kept %d rules, %d routes: %+v %+v", len(c.StaticRules), len(c.StaticRoutes), c.StaticRules, c.StaticRoutes)
	}
}
