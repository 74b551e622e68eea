// Command keepwatch is a keepalived-compatible high-availability agent with metrics and traces built in.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"

// exitError carries a process exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args))
}

func run(args []string) int {
	var root *cobra.Command
	rest := args[1:]
	if filepath.Base(args[0]) == "keepalived" {
		// Invoked through a keepalived symlink: accept keepalived's own flags
		// so unit files and containers that run keepalived need no edit.
		root, rest = keepalivedCommand(), kaArgs(rest)
	} else {
		root = rootCommand()
	}
	root.SetArgs(rest)
	err := root.Execute()
	if err == nil {
		return 0
	}
	if e, ok := err.(exitError); ok {
		return e.code
	}
	return 1
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "keepwatch",
		Short:         "keepalived-compatible VRRP and IPVS agent with metrics and traces built in",
		SilenceUsage:  true,
		SilenceErrors: false,
		Version:       version,
	}
	root.AddCommand(checkCommand(), convertCommand(), runCommand(), statusCommand(), labCommand())
	return root
}
