package cache

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Defaults of Options.
const (
	DefaultMaxUsers       = 10000
	DefaultMaxClients     = 1000
	DefaultPublishTimeout = 2 * time.Second
	// publishErrorLogInterval is the shortest time between two warnings
	// about failed publishes.
	publishErrorLogInterval = 30 * time.Second
)

// userShards is the number of user epochs (see the package comment).
const userShards = 256

// Options configure New.
type Options struct {
	// TTL is how long an entry is served after the read that filled it
	// began (CACHE_LOCAL_TTL). Zero or negative disables caching: reads
	// go to the wrapped store, but writes still publish their changes,
	// so that the instances that do cache hear about them.
	TTL time.Duration
	// MaxUsers and MaxClients bound the number of entries (0: the
	// defaults).
	MaxUsers   int
	MaxClients int
	// Bus carries changes to and from the other instances; nil keeps
	// them in this Store. When caching is enabled, New subscribes to it.
	Bus permiso.ChangeBus
	// PublishTimeout bounds one Publish (0: DefaultPublishTimeout). It is
	// applied to a context detached from the writer's cancellation, so a
	// client that goes away after the commit does not skip the publish.
	PublishTimeout time.Duration
	// Logger receives a warning (at most one per 30 s) while publishes
	// fail; nil logs nothing.
	Logger *slog.Logger
	// Now is the clock (nil: time.Now), for tests.
	Now func() time.Time
}

// Stats are counters since New, for metrics and tests.
type Stats struct {
	Hits   uint64
	Misses uint64
	// DroppedFills counts database reads whose result was not cached
	// because an invalidation happened while they ran.
	DroppedFills uint64
	// Invalidations counts changes applied (local writes and messages,
	// resyncs included).
	Invalidations uint64
	// Resyncs counts ChangeResync deliveries: bus (re)subscriptions.
	Resyncs uint64
	// Evictions counts entries dropped to stay within the size bounds.
	Evictions uint64
	// PublishErrors counts changes that could not be published.
	PublishErrors uint64
	// Users and Clients are the current numbers of entries (expired ones
	// included until they are read or evicted).
	Users   int
	Clients int
}

// entry is a cached user or client, served until expires.
type entry[V any] struct {
	v       V
	expires time.Time
}

// Store is a permiso.Store whose GetUser and GetServiceClientByClientID
// are answered from memory (see the package comment). It is safe for
// concurrent use. Build it with New.
type Store struct {
	permiso.Store

	ttl            time.Duration
	maxUsers       int
	maxClients     int
	bus            permiso.ChangeBus
	publishTimeout time.Duration
	log            *slog.Logger
	now            func() time.Time
	stop           func()

	mu      sync.Mutex
	users   map[uuid.UUID]entry[permiso.User]
	clients map[string]entry[permiso.ServiceClient]
	// userEpoch[shard] moves on every invalidation of a user of that
	// shard, allUsersEpoch on every flush of all users, clientEpoch on
	// every flush of the clients. A fill stores its value only when the
	// epochs it saw before reading are unchanged.
	userEpoch     [userShards]uint64
	allUsersEpoch uint64
	clientEpoch   uint64

	hits, misses, dropped, invalidations, resyncs, evictions, publishErrors atomic.Uint64
	lastPublishLog                                                          atomic.Int64
}

var _ permiso.Store = (*Store)(nil)

// New wraps inner. When opts.TTL > 0 and opts.Bus is set it subscribes to
// the bus; Close ends the subscription (and closes inner).
func New(ctx context.Context, inner permiso.Store, opts Options) (*Store, error) {
	s := &Store{
		Store:          inner,
		ttl:            opts.TTL,
		maxUsers:       cmp.Or(max(opts.MaxUsers, 0), DefaultMaxUsers),
		maxClients:     cmp.Or(max(opts.MaxClients, 0), DefaultMaxClients),
		bus:            opts.Bus,
		publishTimeout: cmp.Or(opts.PublishTimeout, DefaultPublishTimeout),
		log:            opts.Logger,
		now:            opts.Now,
		users:          map[uuid.UUID]entry[permiso.User]{},
		clients:        map[string]entry[permiso.ServiceClient]{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.enabled() && s.bus != nil {
		stop, err := s.bus.Subscribe(ctx, s.apply)
		if err != nil {
			return nil, err
		}
		s.stop = stop
	}
	return s, nil
}

// Close ends the bus subscription, then closes the wrapped store.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stop()
	}
	return s.Store.Close()
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	nu, nc := len(s.users), len(s.clients)
	s.mu.Unlock()
	return Stats{
		Hits:          s.hits.Load(),
		Misses:        s.misses.Load(),
		DroppedFills:  s.dropped.Load(),
		Invalidations: s.invalidations.Load(),
		Resyncs:       s.resyncs.Load(),
		Evictions:     s.evictions.Load(),
		PublishErrors: s.publishErrors.Load(),
		Users:         nu,
		Clients:       nc,
	}
}

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() permiso.Store { return s.Store }

func (s *Store) enabled() bool { return s.ttl > 0 }

func userShard(id uuid.UUID) int { return int(id[15]) % userShards }

// GetUser answers from the cache while the entry is fresh; otherwise it
// reads the wrapped store and caches the result.
func (s *Store) GetUser(ctx context.Context, id uuid.UUID) (permiso.User, error) {
	shard := userShard(id)
	return cached(ctx, s, s.users, s.maxUsers, id, s.Store.GetUser, cloneUser, func() [2]uint64 {
		return [2]uint64{s.userEpoch[shard], s.allUsersEpoch}
	})
}

// GetServiceClientByClientID answers from the cache while the entry is
// fresh; otherwise it reads the wrapped store and caches the result.
func (s *Store) GetServiceClientByClientID(ctx context.Context, clientID string) (permiso.ServiceClient, error) {
	return cached(ctx, s, s.clients, s.maxClients, clientID, s.Store.GetServiceClientByClientID, cloneClient, func() [2]uint64 {
		return [2]uint64{s.clientEpoch}
	})
}

// cached answers key from m (a copy of the entry, by clone) while its
// entry is fresh; otherwise it reads key with load and stores a copy of
// what it read, unless the epochs of key (epoch, read under s.mu) moved
// while load ran: an invalidation meanwhile may have dropped a newer
// value. A new entry beyond limit evicts an arbitrary one.
func cached[K comparable, V any](ctx context.Context, s *Store, m map[K]entry[V], limit int, key K,
	load func(context.Context, K) (V, error), clone func(V) V, epoch func() [2]uint64) (V, error) {
	if !s.enabled() || permiso.FreshRead(ctx) {
		return load(ctx, key)
	}
	start := s.now()
	s.mu.Lock()
	if e, ok := m[key]; ok && start.Before(e.expires) {
		s.mu.Unlock()
		s.hits.Add(1)
		return clone(e.v), nil
	}
	seen := epoch()
	s.mu.Unlock()
	s.misses.Add(1)

	v, err := load(ctx, key)
	if err != nil {
		return v, err
	}
	c := clone(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch() != seen {
		s.dropped.Add(1)
		return v, nil
	}
	if _, ok := m[key]; !ok && len(m) >= limit {
		for k := range m {
			delete(m, k)
			s.evictions.Add(1)
			break
		}
	}
	m[key] = entry[V]{v: c, expires: start.Add(s.ttl)}
	return v, nil
}

// apply evicts what c makes stale and moves the epochs, so that reads
// already running do not store what they read. It is the bus subscriber
// and the local half of every write.
func (s *Store) apply(c permiso.Change) {
	s.invalidations.Add(1)
	if c.Kind == permiso.ChangeResync {
		s.resyncs.Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch c.Kind {
	case permiso.ChangeUser:
		s.userEpoch[userShard(c.UserID)]++
		delete(s.users, c.UserID)
	case permiso.ChangeAllUsers:
		s.allUsersEpoch++
		clear(s.users)
	case permiso.ChangeAllClients:
		s.clientEpoch++
		clear(s.clients)
	default: // ChangeAll, ChangeResync and kinds this version does not know
		s.allUsersEpoch++
		s.clientEpoch++
		clear(s.users)
		clear(s.clients)
	}
}

// changed is called after every write: it evicts locally, then tells the
// other instances. A publish that fails is counted and logged, not
// returned: the write itself happened, and the other instances' entries
// expire within the TTL.
func (s *Store) changed(ctx context.Context, c permiso.Change) {
	s.apply(c)
	if s.bus == nil {
		return
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.publishTimeout)
	defer cancel()
	if err := s.bus.Publish(pctx, c); err != nil {
		s.publishErrors.Add(1)
		s.logPublishError(ctx, c, err)
	}
}

func (s *Store) logPublishError(ctx context.Context, c permiso.Change, err error) {
	if s.log == nil {
		return
	}
	now := time.Now().UnixNano()
	last := s.lastPublishLog.Load()
	if last != 0 && now-last < int64(publishErrorLogInterval) {
		return
	}
	if !s.lastPublishLog.CompareAndSwap(last, now) {
		return
	}
	s.log.LogAttrs(ctx, slog.LevelWarn, "cache invalidation could not be published: other instances may serve the old value until their CACHE_LOCAL_TTL expires",
		slog.String("change", string(c.Kind)), slog.String("error", err.Error()),
		slog.Uint64("publish_errors_total", s.publishErrors.Load()))
}

func userChange(id uuid.UUID) permiso.Change {
	return permiso.Change{Kind: permiso.ChangeUser, UserID: id}
}

var (
	allUsers   = permiso.Change{Kind: permiso.ChangeAllUsers}
	allClients = permiso.Change{Kind: permiso.ChangeAllClients}
	everything = permiso.Change{Kind: permiso.ChangeAll}
)
