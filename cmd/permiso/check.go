package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/redis"
)

// cmdCheck connects to the database and Redis and reports each (the guide's
// test_connection()); it fails unless everything is reachable.
func cmdCheck(ctx context.Context, env *environment, args []string, stdout io.Writer) error {
	fs := newFlagSet("check", "check", stdout)
	if help, err := fs.parse(args); help || err != nil {
		return err
	}
	a, err := env.setup()
	if err != nil {
		return err
	}
	defer a.Close()
	cfg, logger := a.cfg, a.logger
	for _, w := range a.warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	fmt.Fprintln(stdout, "configuration: ok")
	failed := 0

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	db, err := openStore(ctx, cfg, logger)
	if err == nil {
		defer db.Close()
		start := time.Now()
		err = db.Ping(ctx)
		if err == nil {
			fmt.Fprintf(stdout, "database (%s): ok in %s\n", db.Backend(), time.Since(start).Round(time.Microsecond))
			if status, serr := db.MigrationStatus(ctx); serr == nil {
				if p := permiso.Pending(status); len(p) > 0 {
					fmt.Fprintf(stdout, "database migrations: %d pending (run `permiso migrate up`)\n", len(p))
				} else {
					fmt.Fprintln(stdout, "database migrations: up to date")
				}
			}
		}
	}
	if err != nil {
		failed++
		fmt.Fprintf(stdout, "database: FAILED: %v\n", err)
	}

	rdb, err := openRedis(cfg)
	switch {
	case err != nil:
		failed++
		fmt.Fprintf(stdout, "redis: FAILED: %v\n", err)
	case rdb == nil:
		fmt.Fprintln(stdout, "redis: not configured (in-process rate limits, lockout and revocation; single instance only)")
	default:
		defer rdb.Close()
		start := time.Now()
		if err := rdb.Ping(ctx); err != nil {
			failed++
			fmt.Fprintf(stdout, "redis: FAILED: %v\n", err)
			break
		}
		fmt.Fprintf(stdout, "redis: ok in %s\n", time.Since(start).Round(time.Microsecond))
		policy, perr := rdb.MaxMemoryPolicy(ctx)
		if perr == nil {
			fmt.Fprintf(stdout, "redis maxmemory-policy: %s\n", policy)
		}
		if w := redis.EvictionWarning(policy); w != "" {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
	}
	if failed > 0 {
		return errors.New("check failed: not every dependency is reachable")
	}
	fmt.Fprintln(stdout, "all checks passed")
	return nil
}
