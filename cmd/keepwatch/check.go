package main

import (
	"fmt"
	"io"

	"github.com/keepwatch/keepwatch/engine/config/loader"
	"github.com/spf13/cobra"
)

func checkCommand() *cobra.Command {
	var file, configID string
	cmd := &cobra.Command{
		Use:   "check -f FILE",
		Short: "validate a config as keepalived -t does (exit 0 ok, 4 fatal, 5 errors or warnings, 6 script security)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			code := check(cmd.OutOrStdout(), file, configID)
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "/etc/keepalived/keepalived.conf", "config file (keepalived.conf, or .yaml/.toml/.json)")
	cmd.Flags().StringVarP(&configID, "config-id", "i", "", "config id for @id conditional lines (default: first label of the host name)")
	cmd.SilenceErrors = true
	return cmd
}

// check prints every diagnostic of file, one per line with what keepwatch
// run does about it ("[ignored, default 1 s kept]"), and returns
// keepalived -t's exit code for them.
func check(w io.Writer, file, configID string) int {
	_, ds := loader.Load(file, loader.Options{ConfigID: configID, CheckInterfaces: true})
	for _, d := range ds {
		fmt.Fprintln(w, d.Report())
	}
	return ds.ExitCode()
}
