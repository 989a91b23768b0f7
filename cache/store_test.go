package cache_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/cache"
	"github.com/permiso/permiso/internal/testchange"
	"github.com/permiso/permiso/internal/testclock"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/storetest"
)

// The conformance suite through the cache: the wrapper changes no
// behaviour of the store it wraps.

func TestConformanceSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) permiso.Store {
		return wrap(t, testdb.SQLite(t), cache.Options{TTL: time.Hour, Bus: cache.NewLocalBus()})
	})
}

func TestConformancePostgres(t *testing.T) {
	postgresStore(t) // skips without PERMISO_TEST_DATABASE_URL
	storetest.Run(t, func(t *testing.T) permiso.Store {
		return wrap(t, postgresStore(t), cache.Options{TTL: time.Hour, Bus: cache.NewLocalBus()})
	})
}

func TestReadsAreCached(t *testing.T) {
	f := newFixture(t)
	cs := wrap(t, f.inner, cache.Options{TTL: time.Hour})
	ctx := t.Context()
	for range 3 {
		f.load(t, ctx, cs)
	}
	if st := cs.Stats(); st.Misses != 2 || st.Hits != 4 || st.Users != 1 || st.Clients != 1 {
		t.Fatalf("Stats = %+v, want 2 misses, 4 hits, one entry each", st)
	}
	// A write the cache does not see proves the answers come from memory.
	f.mark(t, "behind")
	if b, d := f.marks(ctx, cs); b != "" || d != "" {
		t.Fatalf("cached reads saw a write made behind the cache: bio %q, description %q", b, d)
	}
	// Misses are not cached.
	for range 2 {
		if _, err := cs.GetUser(ctx, uuid.New()); !errors.Is(err, permiso.ErrNotFound) {
			t.Fatalf("GetUser(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := cs.GetServiceClientByClientID(ctx, "nobody"); !errors.Is(err, permiso.ErrNotFound) {
			t.Fatalf("GetServiceClientByClientID(unknown) = %v, want ErrNotFound", err)
		}
	}
	if st := cs.Stats(); st.Users != 1 || st.Clients != 1 {
		t.Fatalf("misses were cached: %+v", st)
	}
}

// TestWritesInvalidate runs each kind of write through instance A and
// checks which cached records A and its peer B (another instance on the
// same database, connected by a bus) drop.
func TestWritesInvalidate(t *testing.T) {
	type env struct {
		f   *fixture
		a   *cache.Store
		ctx context.Context
	}
	cases := []struct {
		name             string
		write            func(t *testing.T, e env) error
		user, client     bool // the cached user / client must be dropped
		userGone, clGone bool // ... and are deleted
	}{
		{name: "UpdateUser", user: true, write: func(t *testing.T, e env) error {
			_, err := e.a.UpdateUser(e.ctx, e.f.user.ID, func(u *permiso.User) error { u.LastLogin = ptr(now()); return nil })
			return err
		}},
		{name: "UpdateUserDisable", user: true, write: func(t *testing.T, e env) error {
			_, err := e.a.UpdateUser(e.ctx, e.f.user.ID, func(u *permiso.User) error { u.IsActive = false; return nil })
			return err
		}},
		{name: "UpdateUserRevokeAll", user: true, write: func(t *testing.T, e env) error {
			_, err := e.a.UpdateUser(e.ctx, e.f.user.ID, func(u *permiso.User) error { u.TokensRevokedBefore = ptr(now()); return nil })
			return err
		}},
		{name: "UpdateUserWithRoles", user: true, write: func(t *testing.T, e env) error {
			admin, _ := e.f.other.GetRoleByName(e.ctx, permiso.RoleAdmin)
			_, err := e.a.UpdateUserWithRoles(e.ctx, e.f.user.ID, func(*permiso.User) error { return nil }, []uuid.UUID{admin.ID})
			return err
		}},
		{name: "SetUserRoles", user: true, write: func(t *testing.T, e env) error {
			admin, _ := e.f.other.GetRoleByName(e.ctx, permiso.RoleAdmin)
			return e.a.SetUserRoles(e.ctx, e.f.user.ID, []uuid.UUID{admin.ID})
		}},
		{name: "ChangePassword", user: true, write: func(t *testing.T, e env) error {
			return e.a.ChangePassword(e.ctx, e.f.user.ID, "new-hash", now(), 5)
		}},
		{name: "ChangePasswordIfCurrent", user: true, write: func(t *testing.T, e env) error {
			return e.a.ChangePasswordIfCurrent(e.ctx, e.f.user.ID, e.f.user.PasswordHash, "new-hash", now(), 5)
		}},
		{name: "FailedWriteStillInvalidates", user: true, write: func(t *testing.T, e env) error {
			err := e.a.ChangePasswordIfCurrent(e.ctx, e.f.user.ID, "not-the-hash", "new-hash", now(), 5)
			if !errors.Is(err, permiso.ErrConflict) {
				return fmt.Errorf("ChangePasswordIfCurrent with a wrong hash = %v, want ErrConflict", err)
			}
			return nil
		}},
		{name: "DeleteUser", user: true, userGone: true, write: func(t *testing.T, e env) error {
			return e.a.DeleteUser(e.ctx, e.f.user.ID)
		}},
		{name: "CreateOtherUserKeepsThisOne", write: func(t *testing.T, e env) error {
			_, err := e.a.CreateUser(e.ctx, permiso.User{Username: "bob", Email: "bob@example.com", PasswordHash: "h",
				IsActive: true, PasswordChangedAt: now(), CreatedAt: now(), UpdatedAt: now()}, nil)
			return err
		}},
		{name: "ClearExpiredLocks", user: true, write: func(t *testing.T, e env) error {
			if _, err := e.f.other.UpdateUser(e.ctx, e.f.user.ID, func(u *permiso.User) error {
				u.FailedLoginAttempts, u.LockedUntil = 5, ptr(now().Add(-time.Minute))
				return nil
			}); err != nil {
				return err
			}
			n, err := e.a.ClearExpiredLocks(e.ctx, now())
			if err == nil && n != 1 {
				err = fmt.Errorf("ClearExpiredLocks = %d, want 1", n)
			}
			return err
		}},
		{name: "CreateRole", user: true, client: true, write: func(t *testing.T, e env) error {
			_, err := e.a.CreateRole(e.ctx, permiso.Role{Name: "auditor", CreatedAt: now(), UpdatedAt: now()}, []uuid.UUID{e.f.scope.ID})
			return err
		}},
		{name: "UpdateRole", user: true, client: true, write: func(t *testing.T, e env) error {
			r, _ := e.f.other.GetRoleByName(e.ctx, permiso.RoleUser)
			_, err := e.a.UpdateRole(e.ctx, r.ID, func(r *permiso.Role) error { r.Description = ptr("d"); return nil })
			return err
		}},
		{name: "UpdateRoleWithScopes", user: true, client: true, write: func(t *testing.T, e env) error {
			r, _ := e.f.other.GetRoleByName(e.ctx, permiso.RoleUser)
			_, err := e.a.UpdateRoleWithScopes(e.ctx, r.ID, func(*permiso.Role) error { return nil }, []uuid.UUID{e.f.scope.ID})
			return err
		}},
		{name: "SetRoleScopes", user: true, client: true, write: func(t *testing.T, e env) error {
			r, _ := e.f.other.GetRoleByName(e.ctx, permiso.RoleUser)
			return e.a.SetRoleScopes(e.ctx, r.ID, nil)
		}},
		{name: "DeleteRole", user: true, client: true, write: func(t *testing.T, e env) error {
			r, err := e.f.other.CreateRole(e.ctx, permiso.Role{Name: "temp", CreatedAt: now(), UpdatedAt: now()}, nil)
			if err != nil {
				return err
			}
			return e.a.DeleteRole(e.ctx, r.ID)
		}},
		{name: "CreateScope", user: true, client: true, write: func(t *testing.T, e env) error {
			_, err := e.a.CreateScope(e.ctx, permiso.Scope{Name: "read:things", CreatedAt: now(), UpdatedAt: now()})
			return err
		}},
		{name: "UpdateScopeRename", user: true, client: true, write: func(t *testing.T, e env) error {
			_, err := e.a.UpdateScope(e.ctx, e.f.scope.ID, func(s *permiso.Scope) error { s.Name = "read:profile2"; return nil })
			return err
		}},
		{name: "DeleteScope", user: true, client: true, write: func(t *testing.T, e env) error {
			s, err := e.f.other.CreateScope(e.ctx, permiso.Scope{Name: "temp:scope", CreatedAt: now(), UpdatedAt: now()})
			if err != nil {
				return err
			}
			return e.a.DeleteScope(e.ctx, s.ID)
		}},
		{name: "CreateServiceClient", client: true, write: func(t *testing.T, e env) error {
			_, err := e.a.CreateServiceClient(e.ctx, permiso.ServiceClient{ClientID: "svc-b", SecretHash: "h", Name: "B",
				ClientType: "confidential", IsActive: true, CreatedAt: now(), UpdatedAt: now()}, nil)
			return err
		}},
		{name: "UpdateServiceClientRotate", client: true, write: func(t *testing.T, e env) error {
			_, err := e.a.UpdateServiceClient(e.ctx, e.f.client.ID, func(c *permiso.ServiceClient) error {
				c.PreviousSecretHash, c.SecretHash = ptr(c.SecretHash), permiso.HashToken("secret-a2")
				return nil
			})
			return err
		}},
		{name: "SetServiceClientScopes", client: true, write: func(t *testing.T, e env) error {
			return e.a.SetServiceClientScopes(e.ctx, e.f.client.ID, nil)
		}},
		{name: "UpdateServiceClientWithScopes", client: true, write: func(t *testing.T, e env) error {
			_, err := e.a.UpdateServiceClientWithScopes(e.ctx, e.f.client.ID, func(c *permiso.ServiceClient) error { c.IsTrusted = true; return nil }, nil)
			return err
		}},
		{name: "DeleteServiceClient", client: true, clGone: true, write: func(t *testing.T, e env) error {
			return e.a.DeleteServiceClient(e.ctx, e.f.client.ID)
		}},
		{name: "AddClientUsageKeepsClient", write: func(t *testing.T, e env) error {
			return e.a.AddClientUsage(e.ctx, map[uuid.UUID]permiso.ClientUsage{e.f.client.ID: {Requests: 3, LastUsed: now()}})
		}},
		{name: "SessionWriteKeepsBoth", write: func(t *testing.T, e env) error {
			_, err := e.a.RevokeUserSessions(e.ctx, e.f.user.ID, nil, "test", now())
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			bus := cache.NewLocalBus()
			a := wrap(t, f.inner, cache.Options{TTL: time.Hour, Bus: bus})
			b := wrap(t, testdb.SQLiteAt(t, f.path), cache.Options{TTL: time.Hour, Bus: bus})
			ctx := t.Context()
			for _, s := range []*cache.Store{a, b} {
				f.load(t, ctx, s)
			}
			f.mark(t, "marked")
			if err := tc.write(t, env{f: f, a: a, ctx: ctx}); err != nil {
				t.Fatalf("write: %v", err)
			}
			for name, s := range map[string]*cache.Store{"A (writer)": a, "B (peer)": b} {
				u, err := s.GetUser(ctx, f.user.ID)
				afterWrite(t, name+": GetUser", bio(u), err, tc.userGone, tc.user)
				c, err := s.GetServiceClientByClientID(ctx, f.client.ClientID)
				afterWrite(t, name+": GetServiceClientByClientID", desc(c), err, tc.clGone, tc.client)
			}
		})
	}
}

// TestStaleFillRace: a reader that read the old row before a write must
// not store it in the cache after the write's invalidation, whether the
// invalidation is local (a write through the same Store) or comes from
// another instance over the bus.
func TestStaleFillRace(t *testing.T) {
	for _, remote := range []bool{false, true} {
		t.Run(fmt.Sprintf("remote=%v", remote), func(t *testing.T) {
			f := newFixture(t)
			bus := cache.NewLocalBus()
			gate := &gatedStore{Store: f.inner}
			a := wrap(t, gate, cache.Options{TTL: time.Hour, Bus: bus})
			writer := a
			if remote {
				writer = wrap(t, testdb.SQLiteAt(t, f.path), cache.Options{TTL: time.Hour, Bus: bus})
			}
			ctx := t.Context()

			staleFill(t, gate, f.user.ID.String(), "GetUser",
				func() (permiso.User, error) { return a.GetUser(ctx, f.user.ID) },
				func() error {
					_, err := writer.UpdateUser(ctx, f.user.ID, func(u *permiso.User) error { u.IsActive = false; return nil })
					return err
				},
				func(u permiso.User) bool { return u.IsActive })
			staleFill(t, gate, f.client.ClientID, "GetServiceClientByClientID",
				func() (permiso.ServiceClient, error) { return a.GetServiceClientByClientID(ctx, f.client.ClientID) },
				func() error {
					_, err := writer.UpdateServiceClient(ctx, f.client.ID, func(c *permiso.ServiceClient) error { c.IsActive = false; return nil })
					return err
				},
				func(c permiso.ServiceClient) bool { return c.IsActive })
			if st := a.Stats(); st.DroppedFills != 2 {
				t.Errorf("DroppedFills = %d, want 2", st.DroppedFills)
			}
		})
	}
}

// TestUnrelatedInvalidationKeepsFill: invalidating another user (in
// another epoch shard) does not discard a fill in flight.
func TestUnrelatedInvalidationKeepsFill(t *testing.T) {
	f := newFixture(t)
	gate := &gatedStore{Store: f.inner}
	a := wrap(t, gate, cache.Options{TTL: time.Hour})
	ctx := t.Context()
	var other permiso.User
	for i := 0; ; i++ {
		other = f.newUser(t, fmt.Sprintf("other%d", i))
		if other.ID[15] != f.user.ID[15] {
			break
		}
	}
	reached, release := gate.arm(f.user.ID.String())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := a.GetUser(ctx, f.user.ID); err != nil {
			t.Error(err)
		}
	}()
	<-reached
	if _, err := a.UpdateUser(ctx, other.ID, func(u *permiso.User) error { u.Bio = ptr("x"); return nil }); err != nil {
		t.Fatal(err)
	}
	close(release)
	<-done
	if st := a.Stats(); st.DroppedFills != 0 || st.Users != 1 {
		t.Fatalf("Stats = %+v: a write of another user discarded the fill", st)
	}
}

func TestTTL(t *testing.T) {
	f := newFixture(t)
	clk := testclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	cs := wrap(t, f.inner, cache.Options{TTL: 30 * time.Second, Now: clk.Now})
	ctx := t.Context()
	f.load(t, ctx, cs)
	f.mark(t, "later")
	clk.Advance(30*time.Second - time.Nanosecond)
	if b, d := f.marks(ctx, cs); b != "" || d != "" {
		t.Fatal("entries expired before their TTL")
	}
	clk.Advance(time.Nanosecond) // exactly the TTL: expired
	if b, d := f.marks(ctx, cs); b != "later" || d != "later" {
		t.Fatalf("entries outlived their TTL: bio %q, description %q", b, d)
	}
}

func TestReturnsCopies(t *testing.T) {
	f := newFixture(t)
	cs := wrap(t, f.inner, cache.Options{TTL: time.Hour})
	ctx := t.Context()
	if _, err := f.other.UpdateUser(ctx, f.user.ID, func(u *permiso.User) error { u.Bio = ptr("orig"); return nil }); err != nil {
		t.Fatal(err)
	}
	scramble := func(u *permiso.User, c *permiso.ServiceClient) {
		*u.Bio = "mutated"
		u.Roles[0].Name = "mutated"
		u.Roles[0].Scopes[0].Name = "mutated"
		u.Roles = append(u.Roles[:0], permiso.Role{Name: "evil"})
		c.Scopes[0].Name = "mutated"
		c.SecretHash = "mutated"
	}
	// The value returned by a miss and the one returned by a hit.
	for i := range 2 {
		u, c := f.userIn(t, ctx, cs), f.clientIn(t, ctx, cs)
		scramble(&u, &c)
		u, c = f.userIn(t, ctx, cs), f.clientIn(t, ctx, cs)
		if bio(u) != "orig" || u.Roles[0].Name != permiso.RoleUser || u.ScopeNames()[0] == "mutated" ||
			c.Scopes[0].Name != "read:profile" || c.SecretHash != f.client.SecretHash {
			t.Fatalf("read %d: a caller's changes reached the cache: %+v %+v", i, u, c)
		}
	}
}

func TestDisabledStillPublishes(t *testing.T) {
	f := newFixture(t)
	bus := cache.NewLocalBus()
	var rec testchange.Log
	stop, err := bus.Subscribe(t.Context(), rec.Add)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cs := wrap(t, f.inner, cache.Options{TTL: 0, Bus: bus})
	ctx := t.Context()
	f.userIn(t, ctx, cs)
	f.mark(t, "seen")
	if u, _ := cs.GetUser(ctx, f.user.ID); bio(u) != "seen" {
		t.Fatal("TTL 0 still cached")
	}
	if _, err := cs.UpdateUser(ctx, f.user.ID, func(*permiso.User) error { return nil }); err != nil {
		t.Fatal(err)
	}
	got := rec.All()
	want := []permiso.Change{{Kind: permiso.ChangeResync}, {Kind: permiso.ChangeUser, UserID: f.user.ID}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("bus got %v, want %v", got, want)
	}
	if st := cs.Stats(); st.Hits != 0 || st.Users != 0 || st.Resyncs != 0 {
		t.Fatalf("Stats = %+v: a disabled cache cached or subscribed", st)
	}
}

func TestBounded(t *testing.T) {
	f := newFixture(t)
	cs := wrap(t, f.inner, cache.Options{TTL: time.Hour, MaxUsers: 2, MaxClients: 1})
	ctx := t.Context()
	ids := []uuid.UUID{f.user.ID, f.newUser(t, "bob").ID, f.newUser(t, "carol").ID}
	for _, id := range ids {
		if _, err := cs.GetUser(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.other.CreateServiceClient(ctx, permiso.ServiceClient{ClientID: "svc-b", SecretHash: "h", Name: "B",
		ClientType: "confidential", IsActive: true, CreatedAt: now(), UpdatedAt: now()}, nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{f.client.ClientID, "svc-b"} {
		if _, err := cs.GetServiceClientByClientID(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if st := cs.Stats(); st.Users != 2 || st.Clients != 1 || st.Evictions != 2 {
		t.Fatalf("Stats = %+v, want 2 users, 1 client, 2 evictions", st)
	}
}

func TestFreshReadBypasses(t *testing.T) {
	f := newFixture(t)
	cs := wrap(t, f.inner, cache.Options{TTL: time.Hour})
	ctx := t.Context()
	f.load(t, ctx, cs)
	f.mark(t, "fresh")
	fresh := permiso.WithFreshRead(ctx)
	if b, d := f.marks(fresh, cs); b != "fresh" || d != "fresh" {
		t.Fatal("WithFreshRead was answered from the cache")
	}
}

func TestLocalBusStop(t *testing.T) {
	bus := cache.NewLocalBus()
	var rec testchange.Log
	stop, err := bus.Subscribe(t.Context(), rec.Add)
	if err != nil {
		t.Fatal(err)
	}
	c := permiso.Change{Kind: permiso.ChangeAllClients}
	if err := bus.Publish(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	stop()
	stop()
	if err := bus.Publish(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if got := rec.All(); len(got) != 2 || got[1] != c {
		t.Fatalf("got %v, want resync then one change", got)
	}
}

// afterWrite checks a read through a cache after a write that left the
// mark "marked" in the store: ErrNotFound when the write deleted the
// entity (gone), the mark when the write changes it (dropped: the cached
// copy must be gone), else no mark (the cached copy kept).
func afterWrite(t *testing.T, read, mark string, err error, gone, dropped bool) {
	t.Helper()
	switch {
	case gone:
		if !errors.Is(err, permiso.ErrNotFound) {
			t.Errorf("%s after delete = %v, want ErrNotFound", read, err)
		}
	case err != nil:
		t.Errorf("%s: %v", read, err)
	case dropped && mark != "marked":
		t.Errorf("%s: the cached copy was not dropped", read)
	case !dropped && mark != "":
		t.Errorf("%s: the cached copy was dropped by a write that cannot change it", read)
	}
}

// staleFill races a read with a write: the read (through gate, held at
// key) reads the old, active row; deactivate writes while it is held;
// then the read fills the cache. The next read must see the write, not
// the stale fill.
func staleFill[T any](t *testing.T, gate *gatedStore, key, what string, read func() (T, error), deactivate func() error, active func(T) bool) {
	t.Helper()
	reached, release := gate.arm(key)
	got := make(chan T, 1)
	go func() {
		v, err := read()
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	<-reached // the reader holds the old row
	if err := deactivate(); err != nil {
		t.Fatal(err)
	}
	close(release)
	if old := <-got; !active(old) {
		t.Fatalf("%s: the race was not set up: the reader saw the new row", what)
	}
	if v, err := read(); err != nil || active(v) {
		t.Fatalf("after the write, %s = active %v, %v: the stale read was cached", what, active(v), err)
	}
}
