package main

import (
	"github.com/spf13/cobra"
)

// keepalivedCommand accepts keepalived's command line (keepalived(8)):
// -f FILE, -t (config test), -n, -l, -D, -P, -C, -p PIDFILE, -r, -c,
// -i CONFIG_ID. Flags that only shape keepalived's process model are
// accepted and ignored: keepwatch is one foreground process.
func keepalivedCommand() *cobra.Command {
	var (
		file, configID, pid, vrrpPid, checkPid string
		test, dontFork, logConsole, logDetail  bool
		vrrpOnly, checkOnly, dump              bool
	)
	cmd := &cobra.Command{
		Use:           "keepalived",
		Short:         "keepwatch, invoked as keepalived",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if test {
				if code := check(cmd.ErrOrStderr(), file, configID); code != 0 {
					return exitError{code}
				}
				return nil
			}
			return runAgentCommand(cmd, file, configID)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "use-file", "f", "/etc/keepalived/keepalived.conf", "config file")
	f.BoolVarP(&test, "config-test", "t", false, "check the config and exit")
	f.BoolVarP(&dontFork, "dont-fork", "n", false, "accepted: keepwatch always runs in the foreground")
	f.BoolVarP(&logConsole, "log-console", "l", false, "accepted: logs go to stderr")
	f.BoolVarP(&logDetail, "log-detail", "D", false, "accepted")
	f.BoolVarP(&vrrpOnly, "vrrp", "P", false, "accepted")
	f.BoolVarP(&checkOnly, "check", "C", false, "accepted")
	f.BoolVarP(&dump, "dump-conf", "d", false, "accepted")
	f.StringVarP(&pid, "pid", "p", "", "accepted")
	f.StringVarP(&vrrpPid, "vrrp_pid", "r", "", "accepted")
	f.StringVarP(&checkPid, "checkers_pid", "c", "", "accepted")
	f.StringVarP(&configID, "config-id", "i", "", "config id for @id conditional lines")
	return cmd
}
