// Command permiso-load is a load generator for a permiso server on this
// machine (docs/benchmarks.md: speed is measured, not claimed).
//
// It runs a fixed set of scenarios one after the other, each for -duration
// with -concurrency workers sharing one keep-alive HTTP transport, and
// reports per scenario the requests, requests per second, status-code
// counts, transport errors, p50/p90/p99 latency and the ratio to the
// "baseline" scenario of the same run: a bare net/http server started in
// this process and hammered by the same client. Machines are noisy, so the
// ratio, not the absolute figure, is what compares across runs.
//
// It only ever targets a loopback address: a load run is not something to
// point at another host by accident.
//
//	permiso-load -url http://127.0.0.1:8000 -duration 10s -admin-password-stdin <<<"$PASSWORD"
//
// Setup (before measuring) logs in as -admin-user, creates a normal user
// and a pool of service clients through the admin API, and removes them
// again at the end. See docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal stops the measurement and lets cleanup run; a
	// second one ends the process at once.
	context.AfterFunc(ctx, stop)
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "permiso-load: %v\n", err)
		stop()
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a command-line mistake (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// run is the whole program; it returns instead of exiting so that tests
// can call it. getenv supplies PERMISO_LOAD_ADMIN_PASSWORD, stdin the
// password for -admin-password-stdin.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, getenv, stdin, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	res, err := runLoad(ctx, cfg, stderr)
	if res != nil {
		if cfg.json {
			if werr := writeJSON(stdout, res); werr != nil && err == nil {
				err = werr
			}
		} else {
			writeTable(stdout, res)
		}
	}
	return err
}
