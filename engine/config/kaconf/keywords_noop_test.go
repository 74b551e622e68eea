package kaconf

import (
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/config/configtest"
)

// blockContext is where a keyword table's keywords are written: the text
// before and after a keyword line.
type blockContext struct {
	name         string
	t            table
	open, closer string
}

func keywordContexts() []blockContext {
	vs := "virtual_server 192.0.2.1 80 {\n protocol TCP\n"
	rs := vs + " real_server 192.0.2.2 80 {\n"
	ctx := []blockContext{
		{"root", rootKeywords, "", ""},
		{"global_defs", globalKeywords, "global_defs {\n", "}\n"},
		{"vrrp_instance", instanceKeywords, "vrrp_instance VI_1 {\n", "}\n"},
		{"authentication", authKeywords, "vrrp_instance VI_1 {\n authentication {\n", "}\n}\n"},
		{"vrrp_sync_group", syncGroupKeywords, "vrrp_sync_group G {\n", "}\n"},
		{"vrrp_script", scriptKeywords, "vrrp_script chk {\n script /bin/true\n", "}\n"},
		{"track_file", trackFileKeywords, "track_file tf {\n file /run/x\n", "}\n"},
		{"vrrp_track_process", trackProcessKeywords, "vrrp_track_process tp {\n", "}\n"},
		{"garp_group", garpGroupKeywords, "garp_group {\n", "}\n"},
		{"SSL", sslKeywords, "SSL {\n", "}\n"},
		{"virtual_server", vsKeywords, vs, "}\n"},
		{"real_server", rsKeywords, rs, "}\n}\n"},
		{"url", urlKeywords, rs + "  HTTP_GET {\n   url {\n", "}\n}\n}\n}\n"},
	}
	// Each checker with what it needs to be kept.
	need := map[config.CheckerType]string{config.MiscCheck: "misc_path /bin/true\n", config.FileCheck: "track_file tf\n",
		config.HTTPGet: "url {\n path /\n}\n", config.SSLGet: "url {\n path /\n}\n", config.BFDCheck: "name b\n"}
	for typ, t := range checkerTables {
		pre := rs + "  " + string(typ) + " {\n" + need[typ]
		if typ == config.FileCheck {
			pre = "track_file tf {\n file /run/x\n}\n" + pre
		}
		ctx = append(ctx, blockContext{string(typ), t, pre, "}\n}\n}\n"})
	}
	return ctx
}

// probeArgs are tried in turn as a keyword's arguments (or, for a value
// block, as its one entry) until one is accepted.
var probeArgs = []string{"", "7", "192.0.2.9", "x", "192.0.2.9 80", "off", "tcp 7", "/bin/true", "00:11:22:33:44:55",
	"192.0.2.0/24 dev eth0", "all", "UDP", "A", "MASTER", "AH", "rr", "DR", "inet6", "224.0.0.99", "ff02::99", "3", "1.1",
	"partial", "200-299", "0123456789abcdef0123456789abcdef", "VI_1", "VS",
	"from 192.0.2.9 table 7"}

// relative are keywords whose only effect is to undo another: in a block
// without that other keyword they change nothing.
var relative = map[string]bool{
	"vrrp_instance preempt": true, // clears nopreempt
}

func probe(text string) (*config.Config, config.Diagnostics) {
	fsys := fstest.MapFS{"k.conf": {Data: []byte(text)}}
	return LoadFS(fsys, "k.conf", testOpts)
}

// TestKeywordsAreNotSilent walks every keyword table: each keyword the
// reader accepts either changes the config model (which
// config.TestNoSilentNoOps holds to being read by the agent or warned
// about) or is reported "accepted but ignored by keepwatch" when read.
// A keyword that does neither would be a silent no-op.
func TestKeywordsAreNotSilent(t *testing.T) {
	var silent []string
	total, warned := 0, 0
	for _, bc := range keywordContexts() {
		base, _ := probe(bc.open + bc.closer)
		for kw, k := range bc.t {
			total++
			if k.open != nil || relative[bc.name+" "+kw] {
				// A block keyword means its block: its table is probed
				// in its own context.
				continue
			}
			accounted, ignored := false, false
			for _, a := range probeArgs {
				for _, line := range []string{strings.TrimSpace(kw + " " + a), kw + " {\n" + a + "\n}", kw + " G {\n" + a + "\n}"} {
					c, ds := probe(bc.open + line + "\n" + bc.closer)
					for _, d := range ds {
						if (d.Outcome() == config.NotImplemented || d.Outcome() == config.Ignored) && d.Keyword == kw && strings.HasSuffix(d.Message, "accepted but ignored by keepwatch") {
							ignored = true
						}
					}
					if ignored || (c != nil && !cmp.Equal(base, c, configtest.ModelOptions)) {
						accounted = true
						break
					}
				}
				if accounted {
					break
				}
			}
			if ignored {
				warned++
			}
			if !accounted {
				silent = append(silent, bc.name+" "+kw)
			}
		}
	}
	sort.Strings(silent)
	t.Logf("%d keywords in the tables, %d reported as accepted but ignored when read", total, warned)
	for _, s := range silent {
		t.Errorf("keyword %s neither changes the model nor is reported as ignored", s)
	}
}
