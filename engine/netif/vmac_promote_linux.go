package netif

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// PromoteSecondaries sets net.ipv4.conf.IF.promote_secondaries to 1, as
// keepalived does for an instance with promote_secondaries
// (vrrp_if_config.c set_promote_secondaries): when the interface's primary
// IPv4 address is removed, the kernel then promotes the secondaries of its
// subnet (VIPs included) instead of deleting them with it. set reports
// whether this call changed the value, so that ResetPromoteSecondaries
// runs only for a value keepwatch set: keepalived leaves one already 1
// alone, and writes 0 back at shutdown otherwise (tried with 2.2.7).
func (s *System) PromoteSecondaries(ifname string) (set bool, err error) {
	k := "/proc/sys/net/ipv4/conf/" + ifname + "/promote_secondaries"
	err = inNS{ns: s.ns, hasNS: s.hasNS}.do(func() error {
		b, err := os.ReadFile(k)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(b)) == "1" {
			return nil
		}
		set = true
		return os.WriteFile(k, []byte("1"), 0o644)
	})
	if err != nil {
		return false, fmt.Errorf("netif: promote_secondaries on %q: %w", ifname, err)
	}
	return set, nil
}

// ResetPromoteSecondaries writes promote_secondaries 0 back
// (vrrp_if_config.c reset_promote_secondaries). An interface that is gone
// is not an error.
func (s *System) ResetPromoteSecondaries(ifname string) error {
	err := inNS{ns: s.ns, hasNS: s.hasNS}.do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/conf/"+ifname+"/promote_secondaries", []byte("0"), 0o644)
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netif: promote_secondaries on %q: %w", ifname, err)
	}
	return nil
}
