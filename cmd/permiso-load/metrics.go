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
	"sync"
	"time"
)

// droppedMetric counts audit events the server never queued because its
// audit queue stayed full for the whole bounded wait (docs/audit.md). A
// load run must leave it at 0: load slows requests down, it must not
// erase audit events.
const droppedMetric = "permiso_audit_events_dropped_total"

// rssMetric is the server's resident set size, from the Prometheus
// process collector (Linux only: absent elsewhere).
const rssMetric = "process_resident_memory_bytes"

// rssEvery is how often the server's RSS is sampled during a scenario.
const rssEvery = 250 * time.Millisecond

// scrapeValues reads the unlabelled samples names from the server's
// metrics endpoint (METRICS_PATH below the base URL). A name that is not
// there is missing from the map.
func scrapeValues(ctx context.Context, api *apiClient, metricsPath string, names ...string) (map[string]float64, error) {
	r, err := api.do(ctx, http.MethodGet, api.base+metricsPath, nil, "", "")
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s (is ENABLE_METRICS on and -metrics-path the server's METRICS_PATH?)", metricsPath, r)
	}
	return sampleValues(r.body, names...)
}

// scrapeDropped reads droppedMetric from the server's metrics endpoint.
func scrapeDropped(ctx context.Context, api *apiClient, metricsPath string) (float64, error) {
	v, err := scrapeValues(ctx, api, metricsPath, droppedMetric)
	if err != nil {
		return 0, err
	}
	d, ok := v[droppedMetric]
	if !ok {
		return 0, errors.New(droppedMetric + " is not in the metrics (a server without the bounded audit queue?)")
	}
	return d, nil
}

// sampleValues returns the values of the unlabelled samples names in a
// Prometheus text exposition; names not there are missing from the map.
func sampleValues(text []byte, names ...string) (map[string]float64, error) {
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() && len(out) < len(names) {
		line := sc.Text()
		for _, name := range names {
			rest, ok := strings.CutPrefix(line, name)
			if !ok || !strings.HasPrefix(rest, " ") {
				continue
			}
			fields := strings.Fields(rest) // value [timestamp]
			if len(fields) == 0 {
				return nil, fmt.Errorf("%s: no value", name)
			}
			v, err := strconv.ParseFloat(fields[0], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			out[name] = v
		}
	}
	return out, sc.Err()
}

// rssSampler samples the server's RSS every rssEvery until stopped and
// keeps the largest value.
type rssSampler struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	peak   float64
	seen   bool
}

// sampleRSS starts sampling.
func sampleRSS(ctx context.Context, api *apiClient, metricsPath string) *rssSampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &rssSampler{cancel: cancel}
	s.wg.Go(func() {
		for sleepCtx(ctx, rssEvery) == nil {
			if v, err := scrapeValues(ctx, api, metricsPath, rssMetric); err == nil {
				if rss, ok := v[rssMetric]; ok {
					s.observe(rss)
				}
			}
		}
	})
	return s
}

func (s *rssSampler) observe(v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.seen || v > s.peak {
		s.peak, s.seen = v, true
	}
}

// stop ends the sampling and returns the largest value seen (false when
// none was).
func (s *rssSampler) stop() (float64, bool) {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak, s.seen
}
