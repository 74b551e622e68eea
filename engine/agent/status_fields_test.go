package agent

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/dump"
)

// /api/v1/status carries every field of keepalived's JSON dump under the
// same name (its "data" object, and "stats"), and keeps its own fields'
// types where the names meet (state as a name, last_transition as a time).
func TestStatusHasKeepalivedDumpFields(t *testing.T) {
	now := time.Unix(1700000000, 0).UTC()
	ir := InstanceReport{Name: "VI_1", State: "master", LastTransition: &now,
		Data: dump.Data{IName: "VI_1", State: 2, AuthType: 1, AuthData: dump.Masked, VIPs: []string{"x"}, EVIPs: []string{"y"},
			VRoutes: []string{"r"}, VRules: []string{"u"}, TrackIfp: []string{"i"}, TrackScript: []string{"s"}, TrackProcess: []string{"p"},
			ScriptBackup: "b", ScriptMaster: "m", ScriptFault: "f", ScriptStop: "s", ScriptDeleted: "d", Script: "a", ScriptMasterRxLower: "l"},
		Stats: dump.Stats{AdvertSent: 3}}
	b, err := json.Marshal(ir)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	dt := reflect.TypeOf(dump.Data{})
	for i := 0; i < dt.NumField(); i++ {
		name, _, _ := strings.Cut(dt.Field(i).Tag.Get("json"), ",")
		if _, ok := got[name]; !ok {
			t.Errorf("status lacks keepalived's %q", name)
		}
	}
	if string(got["state"]) != `"master"` || !strings.HasPrefix(string(got["last_transition"]), `"2023-`) {
		t.Errorf("existing fields changed type: state %s, last_transition %s", got["state"], got["last_transition"])
	}
	var st map[string]uint64
	if err := json.Unmarshal(got["stats"], &st); err != nil || st["advert_sent"] != 3 || len(st) != 14 {
		t.Errorf("stats = %s (%v), want keepalived's 14 counters", got["stats"], err)
	}
}
