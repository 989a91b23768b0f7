// Command waitfor checks that the PostgreSQL and Redis servers named on the
// command line answer, retrying until a timeout. CI uses it so that a
// missing service fails the run loudly instead of letting tests skip.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"
)

func main() {
	pg := flag.String("postgres", "", "PostgreSQL URL that must answer")
	rd := flag.String("redis", "", "Redis URL that must answer")
	timeout := flag.Duration("timeout", 30*time.Second, "how long to keep trying")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ok := true
	if *pg != "" {
		ok = wait(ctx, "PostgreSQL", func(ctx context.Context) error {
			conn, err := pgx.Connect(ctx, *pg)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			return conn.Ping(ctx)
		}) && ok
	}
	if *rd != "" {
		ok = wait(ctx, "Redis", func(ctx context.Context) error {
			o, err := goredis.ParseURL(*rd)
			if err != nil {
				return err
			}
			c := goredis.NewClient(o)
			defer c.Close()
			return c.Ping(ctx).Err()
		}) && ok
	}
	if !ok {
		os.Exit(1)
	}
}

func wait(ctx context.Context, name string, ping func(context.Context) error) bool {
	for {
		err := ping(ctx)
		if err == nil {
			fmt.Printf("%s: reachable\n", name)
			return true
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(os.Stderr, "FATAL: %s is unreachable: %v\n", name, err)
			return false
		case <-time.After(500 * time.Millisecond):
		}
	}
}
