package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keepwatch/keepwatch/engine/agent"
)

func statusCommand() *cobra.Command {
	var addr string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "show what the running agent is doing: each instance's state, priorities, master heard and VIPs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return status(cmd.OutOrStdout(), addr, asJSON)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "http://127.0.0.1"+DefaultListen, "the agent's HTTP address")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status API's JSON as it is")
	return cmd
}

func status(w io.Writer, addr string, asJSON bool) error {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(strings.TrimSuffix(addr, "/") + "/api/v1/status")
	if err != nil {
		return fmt.Errorf("asking the agent: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if asJSON {
		_, err := w.Write(body)
		return err
	}
	var doc agent.StatusDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("reading the status: %w", err)
	}
	return printStatus(w, &doc)
}

// printStatus renders the status for a person: one line per instance, then
// what each tracker contributes to its priority.
func printStatus(w io.Writer, doc *agent.StatusDoc) error {
	fmt.Fprintf(w, "router_id %s, config %s, ready %v\n\n", doc.RouterID, doc.Config, doc.Ready)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tVRID\tIFACE\tSTATE\tPRIO (BASE)\tMASTER HEARD\tVIPS\tSINCE\tREASON")
	for _, in := range doc.Instances {
		master := "-"
		if in.MasterAddress != "" {
			master = fmt.Sprintf("%s (%d)", in.MasterAddress, in.MasterPriority)
		}
		held := ""
		if in.VIPsHeld {
			held = " held"
		}
		since := "-"
		if in.LastTransition != nil {
			since = time.Since(*in.LastTransition).Truncate(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d (%d)\t%s\t%s%s\t%s\t%s\n", in.Name, in.VRID, in.Interface,
			strings.ToUpper(in.State), in.EffectivePriority, in.BasePriority, master, strings.Join(in.VIPs, ","), held, since, in.LastReason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, in := range doc.Instances {
		for _, t := range in.Trackers {
			state := "down"
			switch {
			case !t.Known:
				state = "unknown"
			case t.Kind == "file":
				state = fmt.Sprintf("value %d", t.Value)
			case t.Up:
				state = "up"
			}
			effect := fmt.Sprintf("%+d", t.Delta)
			if t.Fault {
				effect = "FAULT"
			}
			fmt.Fprintf(w, "  %s: %s %s (weight %d): %s → %s\n", in.Name, t.Kind, t.Name, t.Weight, state, effect)
		}
	}
	if len(doc.Diagnostics) > 0 {
		fmt.Fprintf(w, "\nconfig diagnostics (%d):\n", len(doc.Diagnostics))
		for _, d := range doc.Diagnostics {
			fmt.Fprintf(w, "  %s: %s: %s [%s]\n", d.Position, d.Severity, d.Message, d.Done)
		}
	}
	return nil
}
