// Package testredis counts, for tests, what a go-redis client sends to the
// server: the round trips behind docs/abuse-resistance.md ("one Redis
// round trip per request").
package testredis

import (
	"context"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// RoundTrips is a go-redis hook (AddHook) that counts the single commands
// and the pipelines sent, and the commands in those pipelines. With
// IgnoreHandshakes set it leaves out the handshake go-redis runs on each
// new connection (HELLO, CLIENT, AUTH, SELECT); with IgnoreFeed, the
// revocation feed's background reads (XREAD, and the XINFO pipeline after
// each; docs/architecture.md, "Revocation feed"), which no request waits
// for.
type RoundTrips struct {
	IgnoreHandshakes bool
	IgnoreFeed       bool

	Single, Pipelines, Commands atomic.Int64
}

// Reset sets the counts back to zero.
func (h *RoundTrips) Reset() {
	h.Single.Store(0)
	h.Pipelines.Store(0)
	h.Commands.Store(0)
}

// ignored reports whether a command (the first of a pipeline) is left out.
func (h *RoundTrips) ignored(cmd goredis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return h.IgnoreHandshakes
	case "xread", "xinfo":
		return h.IgnoreFeed
	}
	return false
}

// DialHook is next: dialling is not counted.
func (h *RoundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

// ProcessHook counts a single command.
func (h *RoundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if !h.ignored(cmd) {
			h.Single.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts a pipeline and its commands.
func (h *RoundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if len(cmds) > 0 && !h.ignored(cmds[0]) {
			h.Pipelines.Add(1)
			h.Commands.Add(int64(len(cmds)))
		}
		return next(ctx, cmds)
	}
}
