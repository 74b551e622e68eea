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
	cmd := &cobra.Command{
		Use:   "convert FILE",
		Short: "print a config as keepwatch YAML (or, with --to keepalived, as keepalived.conf)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ds := loader.Load(args[0], loader.Options{ConfigID: configID})
			for _, d := range ds {
				fmt.Fprintln(cmd.ErrOrStderr(), d)
			}
			if c == nil || ds.HasErrors() {
				return exitError{ds.ExitCode()}
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
	return cmd
}
