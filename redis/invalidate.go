package redis

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/permiso/permiso"
)

// ChangeBus is the permiso.ChangeBus over Redis pub/sub: every instance
// PUBLISHes the changes of its writes on one channel, <prefix>changes
// (prefix: CACHE_USER_PREFIX), and SUBSCRIBEs to it to evict its own
// cached copies (package cache).
//
// Plain PUBLISH/SUBSCRIBE works the same on every deployment Open
// supports: one server; Sentinel (the subscription follows the master
// when its connection is re-established; a subscriber left on a demoted
// master still receives, since replicas propagate PUBLISH); and Redis
// Cluster, where PUBLISH is broadcast to every node, so the subscription
// may live on any node (sharded SSUBSCRIBE would not be).
//
// Pub/sub delivers at most once: a message published while a subscriber
// is disconnected is lost. go-redis re-establishes a dropped subscription
// by itself (it pings an idle one every few seconds to notice a dead
// connection), and every confirmation of the SUBSCRIBE, the first one
// included, is reported to the subscriber as permiso.ChangeResync, so it
// drops everything it may have missed.
//
// Messages are small JSON objects, {"kind":"user","user_id":"..."}. A
// message that cannot be read is delivered as permiso.ChangeAll.
type ChangeBus struct {
	rdb     goredis.UniversalClient
	channel string
}

var _ permiso.ChangeBus = (*ChangeBus)(nil)

// changeBufferSize is the go-redis channel buffer between the connection
// reader and the subscriber; it is drained by a callback that only takes
// a lock, so it never fills in practice (go-redis drops a message only
// after the buffer has stayed full for a minute).
const changeBufferSize = 1024

// NewChangeBus returns the bus over c on the channel prefix+"changes".
func NewChangeBus(c *Client, prefix string) *ChangeBus {
	return &ChangeBus{rdb: c.rdb, channel: prefix + "changes"}
}

// Channel returns the pub/sub channel name.
func (b *ChangeBus) Channel() string { return b.channel }

type wireChange struct {
	Kind   permiso.ChangeKind `json:"kind"`
	UserID *uuid.UUID         `json:"user_id,omitempty"`
}

func encodeChange(c permiso.Change) ([]byte, error) {
	w := wireChange{Kind: c.Kind}
	if c.Kind == permiso.ChangeUser {
		w.UserID = &c.UserID
	}
	return json.Marshal(w)
}

// decodeChange reads a message; anything it cannot make sense of becomes
// ChangeAll, so a bad or newer message drops too much, never too little.
func decodeChange(payload string) permiso.Change {
	var w wireChange
	if err := json.Unmarshal([]byte(payload), &w); err != nil {
		return permiso.Change{Kind: permiso.ChangeAll}
	}
	switch w.Kind {
	case permiso.ChangeUser:
		if w.UserID == nil {
			return permiso.Change{Kind: permiso.ChangeAll}
		}
		return permiso.Change{Kind: permiso.ChangeUser, UserID: *w.UserID}
	case permiso.ChangeAllUsers, permiso.ChangeAllClients, permiso.ChangeAll:
		return permiso.Change{Kind: w.Kind}
	default:
		// ChangeResync is never published; unknown kinds come from a
		// newer version.
		return permiso.Change{Kind: permiso.ChangeAll}
	}
}

// Publish PUBLISHes c. Errors are EUNAVAILABLE *permiso.Error values that
// wrap the driver error.
func (b *ChangeBus) Publish(ctx context.Context, c permiso.Change) error {
	msg, err := encodeChange(c)
	if err != nil {
		return permiso.Wrap(permiso.EINTERNAL, "cache invalidation: encode change", err)
	}
	if err := b.rdb.Publish(ctx, b.channel, msg).Err(); err != nil {
		return permiso.Wrap(permiso.EUNAVAILABLE, "cache invalidation: Redis is unavailable", err)
	}
	return nil
}

// Subscribe SUBSCRIBEs to the channel and calls fn from one goroutine, in
// order: ChangeResync on every subscription confirmation, and each change
// received. It does not wait for the first confirmation: when Redis cannot
// be reached, go-redis keeps retrying and fn gets ChangeResync once it
// succeeds. stop closes the subscription and waits (at most 5 s) for the
// goroutine.
func (b *ChangeBus) Subscribe(ctx context.Context, fn func(permiso.Change)) (func(), error) {
	// The error of the first SUBSCRIBE is deliberately ignored by
	// go-redis: the channel below reconnects and resubscribes.
	ps := b.rdb.Subscribe(ctx, b.channel)
	ch := ps.ChannelWithSubscriptions(
		goredis.WithChannelSize(changeBufferSize),
		goredis.WithChannelHealthCheckInterval(3*time.Second),
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ch {
			switch m := m.(type) {
			case *goredis.Subscription:
				if m.Kind == "subscribe" && m.Channel == b.channel {
					fn(permiso.Change{Kind: permiso.ChangeResync})
				}
			case *goredis.Message:
				if m.Channel == b.channel {
					fn(decodeChange(m.Payload))
				}
			}
		}
	}()
	stop := sync.OnceFunc(func() {
		_ = ps.Close()
		// go-redis closes the channel once the subscription is closed;
		// the wait is bounded all the same, so that a shutdown can never
		// hang on it.
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	})
	return stop, nil
}
