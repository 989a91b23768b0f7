package permiso

import (
	"context"

	"github.com/google/uuid"
)

// ChangeKind names which cached records a Change makes stale.
//
// The values are also the wire form of the kind (package redis publishes
// them), so they never change meaning. A subscriber that receives a kind it
// does not know treats it as ChangeAll: an instance running an older
// version drops too much, never too little.
type ChangeKind string

// Kinds of Change.
const (
	// ChangeUser: the one user Change.UserID changed (its row, its roles,
	// its password, or it was created or deleted).
	ChangeUser ChangeKind = "user"
	// ChangeAllUsers: any user may have changed (a bulk update of the
	// users table, such as clearing expired lockouts).
	ChangeAllUsers ChangeKind = "users"
	// ChangeAllClients: any service client may have changed. Client writes
	// name the client by its row id while caches key it by client_id
	// (which an update may change), and clients are few: every client
	// write invalidates them all.
	ChangeAllClients ChangeKind = "clients"
	// ChangeAll: everything may have changed: roles or scopes (which
	// users hold through their roles and clients hold directly), or the
	// schema (migrations).
	ChangeAll ChangeKind = "all"
	// ChangeResync is never published: ChangeBus.Subscribe delivers it when
	// the subscription is established or re-established, after which
	// changes published in between may have been lost. Subscribers drop
	// everything they cache.
	ChangeResync ChangeKind = "resync"
)

// Change says what a write made stale, for the in-process caches of every
// instance (docs/caching.md: user status and client records are cached in process
// with prompt invalidation across instances).
type Change struct {
	Kind ChangeKind
	// UserID is the user of a ChangeUser; zero otherwise.
	UserID uuid.UUID
}

// ChangeBus carries Changes between the instances that share one database,
// so that a write on one instance evicts the cached copies on all of them.
// Delivery is best effort and at most once: a subscriber that may have
// missed messages is told so with ChangeResync, and caches also expire
// their entries on their own (a bounded staleness for what a bus cannot
// report, such as a publisher that could not reach the bus).
type ChangeBus interface {
	// Publish sends c to every current subscriber, those of this process
	// included. It returns once the bus has accepted the message (for
	// Redis: PUBLISH answered), or an EUNAVAILABLE error when it could
	// not; the caller's write has happened either way.
	Publish(ctx context.Context, c Change) error
	// Subscribe calls fn with each Change published from now on, by any
	// instance, until stop is called. fn also receives ChangeResync each
	// time the subscription is (re)established, the first time included:
	// the caller must then drop everything it caches, because messages
	// may have been lost while it was not subscribed. fn must be safe for
	// concurrent use and must not block (it may run on the bus's receiving
	// goroutine or on a publisher's). ctx bounds only the setting up of
	// the subscription, not its life; an unreachable bus is not an error
	// (the subscription keeps retrying and reports ChangeResync when it
	// succeeds). stop waits until fn is no longer running and may be
	// called more than once.
	Subscribe(ctx context.Context, fn func(Change)) (stop func(), err error)
}

type freshReadKey struct{}

// WithFreshRead returns a context under which stores must answer reads
// from the database itself, bypassing any in-process cache. Use it where a
// read must observe every write that completed before it on any instance,
// such as the re-check that closes the race between a login and a
// concurrent revoke-all (a cache may lag another instance's write by the
// time its invalidation takes to arrive).
func WithFreshRead(ctx context.Context) context.Context {
	return context.WithValue(ctx, freshReadKey{}, true)
}

// FreshRead reports whether ctx asks for reads that bypass caches
// (WithFreshRead).
func FreshRead(ctx context.Context) bool {
	v, _ := ctx.Value(freshReadKey{}).(bool)
	return v
}
