package ipvs

import (
	"testing"

	"github.com/keepwatch/keepwatch/engine/ipvs/ipvstest"
)

// BenchmarkSetOneWeight is the Go side of a weight change on a 100 × 100
// table through Set (the whole desired table diffed) and through Update
// (one virtual server), against the in-memory kernel.
func BenchmarkSetOneWeight(b *testing.B) {
	table := benchTable(100, 100)
	changed := benchTable(100, 100)
	changed[50].Destinations[50].Weight = 5
	for _, bc := range []struct {
		name string
		do   func(r *Reconciler, t []Service) (Report, error)
	}{
		{"Set", func(r *Reconciler, t []Service) (Report, error) { return r.Set(t) }},
		{"Update", func(r *Reconciler, t []Service) (Report, error) { return r.Update(t[50]) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := NewReconciler(ipvstest.New(), nil)
			if _, err := r.Set(table); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				t := table
				if i%2 == 0 {
					t = changed
				}
				if rep, err := bc.do(r, t); err != nil || len(rep.Ops) != 1 {
					b.Fatalf("%v %v", rep.Ops, err)
				}
			}
		})
	}
}
