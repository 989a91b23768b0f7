package main

import (
	"context"
	"errors"
	"math"
	"math/bits"
	"strconv"
	"sync"
	"time"
)

// requestFunc sends one request of a scenario, reads the response to the
// end (so the connection is reused) and returns its status code (0 when no
// HTTP response arrived), and an error when none arrived or it was
// unusable.
type requestFunc func(ctx context.Context) (status int, err error)

// Result is the measurement of one scenario.
type Result struct {
	Name           string         `json:"name"`
	Workers        int            `json:"workers"`
	Requests       int64          `json:"requests"`
	ElapsedSeconds float64        `json:"elapsed_seconds"`
	RPS            float64        `json:"rps"`
	Ratio          *float64       `json:"ratio_to_baseline"` // null when no baseline ran
	Status         StatusCounts   `json:"status"`
	StatusCodes    map[string]int `json:"status_codes"`
	Errors         int64          `json:"errors"`
	FirstError     string         `json:"first_error,omitempty"`
	Latency        Latency        `json:"latency_ms"`
	Note           string         `json:"note,omitempty"`
	// AuditDropped is the server's permiso_audit_events_dropped_total
	// after the scenario (since the server started); null when it was not
	// scraped.
	AuditDropped *float64 `json:"audit_events_dropped"`
	// RSSBytes is the server's process_resident_memory_bytes after the
	// scenario, RSSPeakBytes the largest value sampled during it (every
	// rssEvery) and after it; null when not scraped.
	RSSBytes     *float64 `json:"rss_bytes"`
	RSSPeakBytes *float64 `json:"rss_peak_bytes"`
	// Pool is how the client-credentials scenario sized its pool of
	// service clients.
	Pool *PoolInfo `json:"client_pool,omitempty"`
}

// PoolInfo describes the client-credentials pool of a run.
type PoolInfo struct {
	// Clients is the pool's size at the end, AddedDuringRun how many of
	// them were created during the measurement (the rate outran the
	// calibration's margin).
	Clients        int `json:"clients"`
	AddedDuringRun int `json:"added_during_run"`
	// Calibration: requests and rate of the calibration that sized the
	// pool; 0 when -clients set the size.
	CalibrationRequests int64   `json:"calibration_requests"`
	CalibrationRPS      float64 `json:"calibration_rps"`
}

// StatusCounts groups the responses by status.
type StatusCounts struct {
	OK          int64 `json:"2xx"`
	TooMany     int64 `json:"429"`
	Unavailable int64 `json:"503"`
	Other       int64 `json:"other"`
}

// Latency holds percentiles of the response times, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
}

// measure runs newWorker(i)'s request function in a loop on concurrency
// workers for d and returns what they saw. A worker starts no request after
// d has passed; requests in flight then are finished and counted, and the
// elapsed time runs until the last of them is done. Cancelling ctx stops
// the run early; requests cut short by that are not counted. A request
// function that returns errStop ends its worker, uncounted.
func measure(ctx context.Context, name string, concurrency int, d time.Duration, workers []requestFunc) *Result {
	type tally struct {
		hist     histogram
		codes    map[int]int64
		requests int64
		errors   int64
		firstErr string
	}
	tallies := make([]*tally, concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i := range concurrency {
		tl := &tally{codes: make(map[int]int64)}
		tallies[i] = tl
		req := workers[i%len(workers)]
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				status, err := req(ctx)
				lat := time.Since(t0)
				if errors.Is(err, errStop) {
					return
				}
				if err != nil {
					if ctx.Err() != nil && errors.Is(err, context.Canceled) {
						return
					}
					tl.errors++
					if tl.firstErr == "" {
						tl.firstErr = err.Error()
					}
				}
				if status != 0 {
					tl.requests++
					tl.codes[status]++
					tl.hist.record(lat)
				} else {
					// A dead server must not turn the worker into a busy loop.
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := &Result{Name: name, Workers: concurrency, ElapsedSeconds: elapsed.Seconds(), StatusCodes: map[string]int{}}
	var hist histogram
	for _, tl := range tallies {
		res.Requests += tl.requests
		res.Errors += tl.errors
		if res.FirstError == "" {
			res.FirstError = tl.firstErr
		}
		hist.merge(&tl.hist)
		for code, n := range tl.codes {
			res.StatusCodes[strconv.Itoa(code)] += int(n)
			switch {
			case code >= 200 && code < 300:
				res.Status.OK += n
			case code == 429:
				res.Status.TooMany += n
			case code == 503:
				res.Status.Unavailable += n
			default:
				res.Status.Other += n
			}
		}
	}
	if elapsed > 0 {
		res.RPS = float64(res.Requests) / elapsed.Seconds()
	}
	res.Latency = Latency{P50: hist.quantileMs(0.50), P90: hist.quantileMs(0.90), P99: hist.quantileMs(0.99)}
	return res
}

// histogram counts durations in microseconds in log-linear buckets: exact
// below 64 µs, then 64 buckets per power of two (under 1.6 % error), in
// constant memory however long the run.
type histogram struct {
	counts []uint64
	n      uint64
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits
)

func histBucket(us uint64) int {
	if us < histSub {
		return int(us)
	}
	shift := bits.Len64(us) - histSubBits - 1
	return (shift+1)*histSub + int(us>>shift) - histSub
}

// histBounds returns the smallest and largest value of bucket i.
func histBounds(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i)
	}
	shift := i/histSub - 1
	sub := uint64(i%histSub + histSub)
	return sub << shift, (sub+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	us := uint64(max(d, 0) / time.Microsecond)
	b := histBucket(us)
	if b >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, b+1-len(h.counts))...)
	}
	h.counts[b]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantileMs returns the q-quantile in milliseconds (the middle of its
// bucket), 0 for an empty histogram.
func (h *histogram) quantileMs(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := histBounds(i)
			return math.Round(float64(lo+hi)/2) / 1000
		}
	}
	return 0
}
