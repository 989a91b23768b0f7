package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

func writeJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// writeTable prints the report for people: one line per scenario.
func writeTable(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "permiso-load %s: %s, %d workers, %gs per scenario, GOMAXPROCS %d (%d CPUs), %s; server RSS after setup %s MiB\n",
		rep.StartedAt, rep.URL, rep.Concurrency, rep.DurationSeconds, rep.GOMAXPROCS, rep.NumCPU, rep.GoVersion, mib(rep.RSSStartBytes))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tworkers\trequests\treq/s\tx baseline\t2xx\t429\t503\tother\terrors\tp50 ms\tp90 ms\tp99 ms\taudit dropped\trss MiB\tpeak MiB\t")
	for _, r := range rep.Scenarios {
		ratio := "-"
		if r.Ratio != nil {
			ratio = strconv.FormatFloat(*r.Ratio, 'f', 3, 64)
		}
		dropped := "-"
		if r.AuditDropped != nil {
			dropped = strconv.FormatFloat(*r.AuditDropped, 'f', -1, 64)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%s\t%s\t%s\t\n",
			r.Name, r.Workers, r.Requests, r.RPS, ratio, r.Status.OK, r.Status.TooMany, r.Status.Unavailable, r.Status.Other,
			r.Errors, r.Latency.P50, r.Latency.P90, r.Latency.P99, dropped, mib(r.RSSBytes), mib(r.RSSPeakBytes))
	}
	tw.Flush()
	for _, r := range rep.Scenarios {
		if r.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", r.Name, r.FirstError)
		}
		if r.Note != "" {
			fmt.Fprintf(w, "%s: %s\n", r.Name, r.Note)
		}
	}
}

// mib formats a byte count in MiB, "-" when absent.
func mib(b *float64) string {
	if b == nil {
		return "-"
	}
	return strconv.FormatFloat(*b/(1<<20), 'f', 1, 64)
}
