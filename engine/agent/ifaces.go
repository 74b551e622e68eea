package agent

import (
	"fmt"
	"strings"

	"github.com/keepwatch/keepwatch/engine/config"
)

// checkInterfaces is keepalived 2.2.7's start-up rule for a vrrp_instance
// whose interface does not exist: without dynamic_interfaces the VRRP
// process exits ("WARNING - interface X for vrrp_instance Y doesn't exist",
// then "Non-existent interface specified in configuration", vrrp_parser.c
// vrrp_int_handler, verified against the installed keepalived); with it,
// the instance starts in FAULT and runs once the interface appears
// ("will use if created"), which is what the agent does for any instance
// it cannot start. Only the first config is checked: on reload keepwatch
// keeps running rather than exit (the reload guard's rule).
func checkInterfaces(plat Platform, c *config.Config) error {
	if c.Global.DynamicInterfaces || len(c.Instances) == 0 {
		return nil
	}
	links, err := plat.Links()
	if err != nil {
		return fmt.Errorf("interfaces: %w", err)
	}
	have := make(map[string]bool, len(links))
	for _, l := range links {
		have[l.Name] = true
	}
	var missing []string
	for _, in := range c.Instances {
		if in.Interface != "" && !have[in.Interface] {
			missing = append(missing, fmt.Sprintf("interface %s for vrrp_instance %s doesn't exist (%s)", in.Interface, in.Name, in.Pos))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s; set dynamic_interfaces in global_defs to start such instances in FAULT until the interface appears",
		config.ErrRefused, strings.Join(missing, "; "))
}
