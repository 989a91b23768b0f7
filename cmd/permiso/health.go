package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// cmdHealth asks a running server whether it is alive: GET --url (by
// default /health/live on 127.0.0.1 and PORT) and exit 0 on a 2xx answer,
// 1 otherwise. It is the image's HEALTHCHECK, so the runtime image needs no
// curl or wget. It reads only PORT, never the rest of the configuration:
// a health probe must not fail because a secret file is unreadable to it.
func cmdHealth(ctx context.Context, env *environment, args []string, stdout io.Writer) error {
	fs := newFlagSet("health", "health [--url URL] [--timeout D]", stdout)
	url := fs.String("url", "", "URL to probe (default http://127.0.0.1:$PORT/health/live)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if help, err := fs.parse(args); help || err != nil {
		return err
	}
	target := *url
	if target == "" {
		port, _ := env.getenv("PORT")
		if port = strings.TrimSpace(port); port == "" {
			port = "8000"
		}
		target = "http://" + net.JoinHostPort("127.0.0.1", port) + "/health/live"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return usageError{fmt.Sprintf("health: %v", err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("health: %s answered %s", target, resp.Status)
	}
	fmt.Fprintf(stdout, "%s: %s\n", target, resp.Status)
	return nil
}
