package cache_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/cache"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/internal/testwait"
	"github.com/permiso/permiso/postgres"
	"github.com/permiso/permiso/sqlite"
)

// wrap puts a cache in front of inner and closes both when t ends.
func wrap(t *testing.T, inner permiso.Store, opts cache.Options) *cache.Store {
	t.Helper()
	cs, err := cache.New(t.Context(), inner, opts)
	if err != nil {
		inner.Close()
		t.Fatalf("cache.New: %v", err)
	}
	t.Cleanup(func() {
		if err := cs.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return cs
}

// postgresStore returns a migrated PostgreSQL store in a schema of its own,
// or skips without PERMISO_TEST_DATABASE_URL.
func postgresStore(t *testing.T) *postgres.DB { return testdb.Postgres(t, "cache") }

// fixture is a user and a client in a fresh SQLite file, with two handles
// on it: inner (behind the cache under test) and other (a second
// connection, for writes the cache does not see).
type fixture struct {
	path   string
	inner  *sqlite.DB
	other  *sqlite.DB
	user   permiso.User
	client permiso.ServiceClient
	// scope is a scope the client holds.
	scope permiso.Scope
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{path: filepath.Join(t.TempDir(), "permiso.db")}
	f.inner = testdb.SQLiteAt(t, f.path)
	f.other = testdb.SQLiteAt(t, f.path)
	ctx := t.Context()
	role, err := f.other.GetRoleByName(ctx, permiso.RoleUser)
	if err != nil {
		t.Fatal(err)
	}
	f.user = f.newUser(t, "alice", role.ID)
	f.scope, err = f.other.GetScopeByName(ctx, "read:profile")
	if err != nil {
		t.Fatal(err)
	}
	f.client, err = f.other.CreateServiceClient(ctx, permiso.ServiceClient{
		ClientID: "svc-a", SecretHash: permiso.HashToken("secret-a"), Name: "A",
		ClientType: "confidential", IsActive: true, RateLimitPerMinute: 60, RateLimitPerHour: 1000,
		CreatedAt: now(), UpdatedAt: now(),
	}, []uuid.UUID{f.scope.ID})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func ptr[T any](v T) *T { return &v }

func (f *fixture) newUser(t *testing.T, name string, roleIDs ...uuid.UUID) permiso.User {
	t.Helper()
	u, err := f.other.CreateUser(t.Context(), permiso.User{
		Username: name, Email: name + "@example.com", PasswordHash: "hash-" + name,
		IsActive: true, PasswordChangedAt: now(), CreatedAt: now(), UpdatedAt: now(),
	}, roleIDs)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// mark changes the user's bio and the client's description through the
// second handle, so the database differs from what a cache holds.
func (f *fixture) mark(t *testing.T, v string) {
	t.Helper()
	ctx := t.Context()
	if _, err := f.other.UpdateUser(ctx, f.user.ID, func(u *permiso.User) error { u.Bio = ptr(v); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.other.UpdateServiceClient(ctx, f.client.ID, func(c *permiso.ServiceClient) error { c.Description = ptr(v); return nil }); err != nil {
		t.Fatal(err)
	}
}

// load reads the fixture's user and client through s: it fills a cache,
// or hits one already filled.
func (f *fixture) load(t *testing.T, ctx context.Context, s *cache.Store) {
	t.Helper()
	f.userIn(t, ctx, s)
	f.clientIn(t, ctx, s)
}

// userIn reads the fixture's user through s.
func (f *fixture) userIn(t *testing.T, ctx context.Context, s *cache.Store) permiso.User {
	t.Helper()
	u, err := s.GetUser(ctx, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// clientIn reads the fixture's client (by client_id) through s.
func (f *fixture) clientIn(t *testing.T, ctx context.Context, s *cache.Store) permiso.ServiceClient {
	t.Helper()
	c, err := s.GetServiceClientByClientID(ctx, f.client.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// marks returns the user's bio and the client's description as s answers
// them (each "" when its read fails), to tell what mark wrote from what a
// cache held before.
func (f *fixture) marks(ctx context.Context, s *cache.Store) (userBio, clientDesc string) {
	u, _ := s.GetUser(ctx, f.user.ID)
	c, _ := s.GetServiceClientByClientID(ctx, f.client.ClientID)
	return bio(u), desc(c)
}

func bio(u permiso.User) string {
	if u.Bio == nil {
		return ""
	}
	return *u.Bio
}

func desc(c permiso.ServiceClient) string {
	if c.Description == nil {
		return ""
	}
	return *c.Description
}

// gatedStore holds a GetUser or GetServiceClientByClientID of one key
// after it has read the database, until released: the reader of the
// stale-fill race.
type gatedStore struct {
	permiso.Store
	mu      sync.Mutex
	key     string
	reached chan struct{}
	release chan struct{}
}

// arm makes the next read of key stop after its database read; it returns
// the channel closed when it got there and the one that lets it go.
func (g *gatedStore) arm(key string) (reached <-chan struct{}, release chan<- struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.key = key
	g.reached, g.release = make(chan struct{}), make(chan struct{})
	return g.reached, g.release
}

func (g *gatedStore) hold(key string) {
	g.mu.Lock()
	if g.key != key || g.reached == nil {
		g.mu.Unlock()
		return
	}
	reached, release := g.reached, g.release
	g.key, g.reached, g.release = "", nil, nil
	g.mu.Unlock()
	close(reached)
	<-release
}

func (g *gatedStore) GetUser(ctx context.Context, id uuid.UUID) (permiso.User, error) {
	u, err := g.Store.GetUser(ctx, id)
	g.hold(id.String())
	return u, err
}

func (g *gatedStore) GetServiceClientByClientID(ctx context.Context, clientID string) (permiso.ServiceClient, error) {
	c, err := g.Store.GetServiceClientByClientID(ctx, clientID)
	g.hold(clientID)
	return c, err
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.Until(t, 10*time.Second, what, cond)
}
