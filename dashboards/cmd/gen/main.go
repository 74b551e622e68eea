// Command gen writes keepwatch's dashboards as Grafana JSON: `go run ./dashboards/cmd/gen -dir dashboards`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keepwatch/keepwatch/dashboards"
)

func main() {
	dir := flag.String("dir", "dashboards", "directory to write the dashboards' JSON to")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	for _, d := range dashboards.All() {
		b, err := d.Render()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, d.File), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
