// Package metricstest reads metrics/README.md, the reference of every metric family keepwatch exports, for tests.
package metricstest

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Identity is what *id* stands for in the README's label column: the labels
// of every per-instance family.
var Identity = []string{"vrrp_instance", "vrid", "interface", "family"}

// Family is one row of the README's table.
type Family struct {
	Type   string   // counter, gauge, histogram, ...
	Labels []string // sorted, *id* expanded
}

// ReadmeFamilies parses the families table of the README at path (rows
// starting "| `keepwatch_"). A name listed twice is an error.
func ReadmeFamilies(path string) (map[string]Family, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]Family{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "| `keepwatch_") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			return nil, fmt.Errorf("%s: short table row %q", path, line)
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		var labels []string
		for _, l := range strings.Split(cells[3], ",") {
			switch l = strings.Trim(strings.TrimSpace(l), "`"); l {
			case "":
			case "*id*":
				labels = append(labels, Identity...)
			default:
				labels = append(labels, l)
			}
		}
		slices.Sort(labels)
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s lists %s twice", path, name)
		}
		out[name] = Family{Type: strings.TrimSpace(cells[2]), Labels: labels}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
