package dashboards

// The v1 dashboard schema is deprecated in the SDK for dashboardv2, which
// only Grafana 12+ with the v2 API imports; v1 JSON imports everywhere.
//lint:file-ignore SA1019 v1 dashboards on purpose (see above)

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// A Dashboard is one of keepwatch's dashboards and the file it renders to.
type Dashboard struct {
	File  string // name of the JSON file in this directory
	Build func() *dashboard.DashboardBuilder
}

// All lists every dashboard keepwatch ships, in a fixed order.
func All() []Dashboard {
	return []Dashboard{
		{File: "fleet.json", Build: Fleet},
		{File: "instance.json", Build: Instance},
		{File: "loadbalancer.json", Build: LoadBalancer},
	}
}

// Render builds d and returns its JSON as committed: indented, panels
// numbered in order (so links to a panel survive regeneration), with a
// final newline.
func (d Dashboard) Render() ([]byte, error) {
	db, err := d.Build().Build()
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", d.File, err)
	}
	numberPanels(&db)
	raw, err := json.Marshal(db)
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", d.File, err)
	}
	// The SDK's marshalers escape <, > and & (\u003e); decoding and
	// re-encoding without HTML escaping keeps PromQL such as `> 0` readable
	// in the committed file, with keys sorted for stable diffs.
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", d.File, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", d.File, err)
	}
	return buf.Bytes(), nil
}

// numberPanels gives every panel and row an id, in grid order. Grafana
// would assign them on import, but differently on every import.
func numberPanels(db *dashboard.Dashboard) {
	id := uint32(0)
	next := func() *uint32 { id++; return cog.ToPtr(id) }
	for _, p := range db.Panels {
		switch {
		case p.Panel != nil:
			p.Panel.Id = next()
		case p.RowPanel != nil:
			p.RowPanel.Id = *next()
			for i := range p.RowPanel.Panels {
				p.RowPanel.Panels[i].Id = next()
			}
		}
	}
}
