package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
)

type summary struct {
	Service string         `json:"service"`
	Queue   string         `json:"queue"`
	Count   int            `json:"count"`
	Reasons map[string]int `json:"reasons"`
}

type entry struct {
	MessageID      string `json:"message_id"`
	PhotoID        string `json:"photo_id"`
	Event          string `json:"event"`
	Queue          string `json:"queue"`
	Reason         string `json:"reason"`
	DeadLetteredAt string `json:"dead_lettered_at"`
}

func dlq(ctx context.Context, c *apiClient, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError{"dlq needs list, replay or discard"}
	}
	switch args[0] {
	case "-h", "--help", "help":
		return errHelp
	case "list":
		if len(args) > 2 {
			return usageError{"dlq list takes at most one service"}
		}
		if len(args) == 2 {
			return listOne(ctx, c, args[1], out)
		}
		return listAll(ctx, c, out)
	case "replay", "discard":
		if len(args) < 3 {
			return usageError{fmt.Sprintf("dlq %s needs a service and --all, --id or --photo", args[0])}
		}
		sel, err := selection(args[2:])
		if err != nil {
			return err
		}
		var res struct {
			Replayed  int      `json:"replayed"`
			Discarded int      `json:"discarded"`
			Failed    []string `json:"failed"`
		}
		if err := c.do(ctx, http.MethodPost, "/admin/dead-letters/"+url.PathEscape(args[1])+"/"+args[0], sel, &res); err != nil {
			return err
		}
		if args[0] == "replay" {
			fmt.Fprintf(out, "replayed %d message(s) from %s's dead-letter queue\n", res.Replayed, args[1])
		} else {
			fmt.Fprintf(out, "discarded %d message(s) from %s's dead-letter queue\n", res.Discarded, args[1])
		}
		for _, f := range res.Failed {
			fmt.Fprintln(out, "  not replayed:", f)
		}
		if len(res.Failed) > 0 {
			return fmt.Errorf("%d message(s) could not be replayed", len(res.Failed))
		}
		return nil
	}
	return usageError{fmt.Sprintf("unknown dlq command %q", args[0])}
}

func selection(args []string) (map[string]any, error) {
	sel := map[string]any{}
	var ids, photos []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--all":
			sel["all"] = true
		case "--id", "--photo":
			if i+1 >= len(args) {
				return nil, usageError{args[i] + " needs a value"}
			}
			if args[i] == "--id" {
				ids = append(ids, args[i+1])
			} else {
				photos = append(photos, args[i+1])
			}
			i++
		default:
			return nil, usageError{fmt.Sprintf("unexpected %q", args[i])}
		}
	}
	if len(ids) > 0 {
		sel["message_ids"] = ids
	}
	if len(photos) > 0 {
		sel["photo_ids"] = photos
	}
	if len(sel) == 0 {
		return nil, usageError{"choose --all, --id MESSAGE_ID or --photo PHOTO_ID"}
	}
	return sel, nil
}

func listAll(ctx context.Context, c *apiClient, out io.Writer) error {
	var res struct {
		Queues []summary `json:"queues"`
	}
	if err := c.do(ctx, http.MethodGet, "/admin/dead-letters", nil, &res); err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tQUEUE\tMESSAGES\tTOP REASON")
	for _, s := range res.Queues {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", s.Service, s.Queue, s.Count, topReason(s.Reasons))
	}
	return w.Flush()
}

func listOne(ctx context.Context, c *apiClient, service string, out io.Writer) error {
	var res struct {
		Summary summary `json:"summary"`
		Entries []entry `json:"entries"`
	}
	if err := c.do(ctx, http.MethodGet, "/admin/dead-letters/"+url.PathEscape(service)+"?limit=1000", nil, &res); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %d message(s) in %s\n", service, res.Summary.Count, res.Summary.Queue)
	reasons := make([]string, 0, len(res.Summary.Reasons))
	for r := range res.Summary.Reasons {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool { return res.Summary.Reasons[reasons[i]] > res.Summary.Reasons[reasons[j]] })
	for _, r := range reasons {
		fmt.Fprintf(out, "  %5d  %s\n", res.Summary.Reasons[r], r)
	}
	if len(res.Entries) == 0 {
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MESSAGE\tPHOTO\tEVENT\tQUEUE\tDEAD-LETTERED\tREASON")
	for _, e := range res.Entries {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.MessageID, e.PhotoID, e.Event, e.Queue, e.DeadLetteredAt, shorten(e.Reason, 80))
	}
	return w.Flush()
}

func topReason(reasons map[string]int) string {
	best, n := "-", 0
	for r, c := range reasons {
		if c > n || c == n && r < best {
			best, n = r, c
		}
	}
	return shorten(best, 80)
}

func shorten(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
