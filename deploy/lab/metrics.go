package lab

import (
	"bufio"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// kaStateRE matches keepalived's state log lines, such as
// "(VI_4) Entering MASTER STATE" (2.2.7, -l -D), and the "(VI_4) entering
// FAULT state" it logs when a start or reload finds a tracker down
// (vrrp.c vrrp_complete_init).
var kaStateRE = regexp.MustCompile(`\(([^)\s]+)\) (?:Entering (MASTER|BACKUP|FAULT) STATE|entering (FAULT) state)`)

// kaInstanceRE matches a vrrp_instance block's opening line in a config.
var kaInstanceRE = regexp.MustCompile(`(?m)^\s*vrrp_instance\s+([^\s{]+)`)

// kaInstances returns the names of the vrrp_instance blocks in a
// keepalived config, in order: the instances keepalived logs a state for.
func kaInstances(conf string) []string {
	var out []string
	for _, m := range kaInstanceRE.FindAllStringSubmatch(conf, -1) {
		out = append(out, m[1])
	}
	return out
}

// SumMetric sums the samples of family name in a Prometheus text exposition
// whose labels include every pair in labels (name, value, name, value…).
// A family with no matching sample sums to 0.
func SumMetric(text, name string, labels ...string) (float64, error) {
	if len(labels)%2 != 0 {
		return 0, fmt.Errorf("lab: labels %q: want name, value pairs", labels)
	}
	var want []string
	for k := 0; k < len(labels); k += 2 {
		want = append(want, labels[k]+"="+strconv.Quote(labels[k+1]))
	}
	sum := 0.0
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		var lbls string
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			lbls, rest = rest[1:end], rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue // another family sharing the prefix
		}
		ok := true
		for _, w := range want {
			// Labels are separated by commas; match whole pairs only.
			if !containsPair(lbls, w) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("lab: metric line %q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// containsPair reports whether the label list holds pair exactly.
func containsPair(lbls, pair string) bool {
	for i := 0; ; {
		j := strings.Index(lbls[i:], pair)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(pair)
		if (j == 0 || lbls[j-1] == ',') && (end == len(lbls) || lbls[end] == ',') {
			return true
		}
		i = j + 1
	}
}
