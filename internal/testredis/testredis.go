// Package testredis is Redis support for tests: it counts what a go-redis
// client sends to the server (the round trips behind
// docs/abuse-resistance.md, "one Redis round trip per request"), and
// starts private redis-server processes (servers.go).
package testredis

import (
	"context"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// RoundTrips is a go-redis hook (AddHook) that counts the single commands
// and the pipelines sent, and the commands in those pipelines. With
// IgnoreHandshakes set it leaves out the handshake go-redis runs on each
// new connection (HELLO, CLIENT, AUTH, SELECT). With Only set it counts
// only the commands sent with a context Only accepts: Marked counts those
// of a request whose context Mark made, and leaves out what runs in the
// background on the same client (the revocation feed's reads and resyncs;
// docs/architecture.md, "Revocation feed"), which no request waits for.
type RoundTrips struct {
	IgnoreHandshakes bool
	Only             func(context.Context) bool

	Single, Pipelines, Commands atomic.Int64
}

// Reset sets the counts back to zero.
func (h *RoundTrips) Reset() {
	h.Single.Store(0)
	h.Pipelines.Store(0)
	h.Commands.Store(0)
}

// ignored reports whether a command (the first of a pipeline) sent with
// ctx is left out.
func (h *RoundTrips) ignored(ctx context.Context, cmd goredis.Cmder) bool {
	if h.Only != nil && !h.Only(ctx) {
		return true
	}
	switch cmd.Name() {
	case "hello", "client", "auth", "select":
		return h.IgnoreHandshakes
	}
	return false
}

type marked struct{}

// Mark returns ctx marked for Marked: the context of a request whose
// round trips are counted.
func Mark(ctx context.Context) context.Context { return context.WithValue(ctx, marked{}, true) }

// Marked reports whether ctx (or a context derived from it) was made by
// Mark.
func Marked(ctx context.Context) bool { return ctx.Value(marked{}) != nil }

// DialHook is next: dialling is not counted.
func (h *RoundTrips) DialHook(next goredis.DialHook) goredis.DialHook { return next }

// ProcessHook counts a single command.
func (h *RoundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if !h.ignored(ctx, cmd) {
			h.Single.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook counts a pipeline and its commands.
func (h *RoundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if len(cmds) > 0 && !h.ignored(ctx, cmds[0]) {
			h.Pipelines.Add(1)
			h.Commands.Add(int64(len(cmds)))
		}
		return next(ctx, cmds)
	}
}
