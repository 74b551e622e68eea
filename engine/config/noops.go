package config

import (
	"reflect"
	"sort"
)

// IgnoredFields lists the model fields keepwatch reads from a config but
// does not act on, by "Type.Field", with the keyword a user writes for
// each. Validate warns about every one that a config sets ("keyword X is
// accepted but ignored by keepwatch"), so no keyword is a silent no-op
// (issue 8 §2). TestNoSilentNoOps keeps the list exact: a field the agent
// does not read must be here, and a field here must not be read.
// A listed field covers the fields of the struct it holds.
var IgnoredFields = map[string]string{
	"Address.NoTrack":        "no_track",
	"Address.TrackGroup":     "track_group",
	"Address.UseVMAC":        "use_vmac",
	"Checker.BFD":            "BFD_CHECK",
	"Global.MaxAutoPriority": "max_auto_priority",
	"HTTPCheck.FastRecovery": "fast_recovery",
	"HTTPCheck.TLSCompliant": "tls_compliant",
	"Instance.Accept":        "accept",
	"Route.TrackGroup":       "track_group",
	"SSL.CA":                 "ca",
	"VMAC.Group":             "use_vmac group",
	"VMAC.Notify":            "netlink_notify_msg",
	"VirtualServer.SNMPName": "snmp_name",
}

// notImplemented warns about each IgnoredFields field c sets, at the
// position of the block that holds it.
func (v *validator) notImplemented() {
	type hit struct {
		pos Pos
		kw  string
	}
	var hits []hit
	seen := map[string]bool{}
	var walk func(rv reflect.Value, pos Pos)
	walk = func(rv reflect.Value, pos Pos) {
		switch rv.Kind() {
		case reflect.Pointer:
			if !rv.IsNil() {
				walk(rv.Elem(), pos)
			}
			return
		case reflect.Slice, reflect.Array:
			for i := 0; i < rv.Len(); i++ {
				walk(rv.Index(i), pos)
			}
			return
		case reflect.Struct:
		default:
			return
		}
		t := rv.Type()
		if t.PkgPath() != reflect.TypeOf(Config{}).PkgPath() {
			return
		}
		if f := rv.FieldByName("Pos"); f.IsValid() && f.Type() == reflect.TypeOf(Pos{}) && f.Interface().(Pos).File != "" {
			pos = f.Interface().(Pos)
		}
		for i := 0; i < t.NumField(); i++ {
			sf, fv := t.Field(i), rv.Field(i)
			if sf.Anonymous {
				walk(fv, pos)
				continue
			}
			if kw, ok := IgnoredFields[t.Name()+"."+sf.Name]; ok {
				if !fv.IsZero() {
					at := innerPos(fv, pos)
					key := kw + "\x00" + at.String()
					if !seen[key] {
						seen[key] = true
						hits = append(hits, hit{at, kw})
					}
				}
				continue
			}
			walk(fv, pos)
		}
	}
	walk(reflect.ValueOf(v.c).Elem(), Pos{File: v.c.Source})
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].pos.File != hits[j].pos.File {
			return hits[i].pos.File < hits[j].pos.File
		}
		return hits[i].pos.Line < hits[j].pos.Line
	})
	for _, h := range hits {
		v.report(Warning, NotImplemented, "", h.pos, h.kw, nil, "keyword %s is accepted but ignored by keepwatch", h.kw)
	}
}

// innerPos is the position of the block a field holds (its first entry's,
// for a list), or pos when it has none.
func innerPos(v reflect.Value, pos Pos) Pos {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Slice {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return pos
			}
			v = v.Elem()
			continue
		}
		if v.Len() == 0 {
			return pos
		}
		v = v.Index(0)
	}
	if v.Kind() == reflect.Struct {
		if f := v.FieldByName("Pos"); f.IsValid() && f.Type() == reflect.TypeOf(Pos{}) && f.Interface().(Pos).File != "" {
			return f.Interface().(Pos)
		}
	}
	return pos
}
