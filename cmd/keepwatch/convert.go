package main

import (
	"fmt"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/config/kaconf"
	"github.com/keepwatch/keepwatch/engine/config/loader"
	"github.com/spf13/cobra"
)

func convertCommand() *cobra.Command {
	var to, configID string
	var strict bool
	cmd := &cobra.Command{
		Use:   "convert FILE",
		Short: "print a config as keepwatch YAML (or, with --to keepalived, as keepalived.conf)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ds := loader.Load(args[0], loader.Options{ConfigID: configID})
			for _, d := range ds {
				fmt.Fprintln(cmd.ErrOrStderr(), d.Report())
			}
			// The config as keepalived would run it: bad lines ignored,
			// skipped entries left out; refused only where keepalived stops.
			if err := config.Admit(c, ds, nil, strict); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return exitError{max(ds.ExitCode(), 1)}
			}
			switch to {
			case "yaml":
				return config.WriteYAML(cmd.OutOrStdout(), c)
			case "keepalived":
				return kaconf.Print(cmd.OutOrStdout(), c)
			}
			return fmt.Errorf("--to %q: want yaml or keepalived", to)
		},
	}
	cmd.Flags().StringVar(&to, "to", "yaml", "output form: yaml or keepalived")
	cmd.Flags().StringVarP(&configID, "config-id", "i", "", "config id for @id conditional lines")
	cmd.Flags().BoolVar(&strict, "strict", false, "refuse a config with any error (default: convert what keepalived would run)")
	return cmd
}
