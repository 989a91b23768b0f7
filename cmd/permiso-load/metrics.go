package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// droppedMetric counts audit events the server never queued because its
// audit queue stayed full for the whole bounded wait (docs/audit.md). A
// load run must leave it at 0: load slows requests down, it must not
// erase audit events.
const droppedMetric = "permiso_audit_events_dropped_total"

// scrapeDropped reads droppedMetric from the server's metrics endpoint
// (METRICS_PATH below the base URL).
func scrapeDropped(ctx context.Context, api *apiClient, metricsPath string) (float64, error) {
	r, err := api.do(ctx, http.MethodGet, api.base+metricsPath, nil, "", "")
	if err != nil {
		return 0, err
	}
	if r.status != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s (is ENABLE_METRICS on and -metrics-path the server's METRICS_PATH?)", metricsPath, r)
	}
	return sampleValue(r.body, droppedMetric)
}

// sampleValue returns the value of the unlabelled sample name in a
// Prometheus text exposition.
func sampleValue(text []byte, name string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name)
		if !ok || !strings.HasPrefix(rest, " ") {
			continue
		}
		fields := strings.Fields(rest) // value [timestamp]
		if len(fields) == 0 {
			break
		}
		return strconv.ParseFloat(fields[0], 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New(name + " is not in the metrics (a server without the bounded audit queue?)")
}
