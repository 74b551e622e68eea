package lab

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestFormatViewColumns: the counters line up under their headings even
// when a backup hears an IPv6 link-local master.
func TestFormatViewColumns(t *testing.T) {
	out := FormatView("lab", 3*time.Second, []NodeView{
		{Index: 1, Running: true, Instances: []InstanceState{
			{Name: "VI_4", State: "master", BasePriority: 150, Priority: 150, VIP: netip.MustParseAddr("192.0.2.100"), VIPHeld: true, Sent: 12, Received: 0},
		}},
		{Index: 2, Running: true, Instances: []InstanceState{
			{Name: "VI_6", State: "backup", BasePriority: 100, Priority: 100, VIP: netip.MustParseAddr("2001:db8::100"),
				Master: "fe80::8c17:aaff:fe0b:2f8c", MasterPriority: 150, Sent: 0, Received: 12345},
		}},
	})
	lines := strings.Split(out, "\n")
	var head string
	var rows []string
	for _, l := range lines {
		if strings.HasPrefix(l, "NODE") {
			head = l
		} else if strings.HasPrefix(l, "n1") || strings.HasPrefix(l, "n2") {
			rows = append(rows, l)
		}
	}
	if head == "" || len(rows) != 2 {
		t.Fatalf("view:\n%s", out)
	}
	end := strings.Index(head, "DROP") + len("DROP")
	for _, r := range rows {
		if len(r) != end {
			t.Errorf("row ends at column %d, heading at %d:\n%s\n%s", len(r), end, head, r)
		}
	}
	if !strings.Contains(out, "fe80::8c17:aaff:fe0b:2f8c@150") || !strings.Contains(out, "192.0.2.100 *") {
		t.Errorf("view:\n%s", out)
	}
}
