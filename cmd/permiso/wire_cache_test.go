package main

import (
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/redis"
)

// TestOpenPutsTheCacheInFront: every subcommand's store is the cached one,
// and it keeps what the wiring needs from the database (Backup, and the
// PostgreSQL pool for the metrics).
func TestOpenPutsTheCacheInFront(t *testing.T) {
	env := baseEnv(t)
	e := &environment{getenv: env.get, envFile: writeEmptyEnvFile(t), stderr: io.Discard}
	a, err := e.open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cs, ok := a.db.(*cachedStore)
	if !ok {
		t.Fatalf("a.db is %T, want *cachedStore", a.db)
	}
	if _, err := a.db.MigrateUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "backup.db")
	if err := a.db.Backup(t.Context(), out); err != nil {
		t.Fatalf("Backup through the cache: %v", err)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	if cs.Stats().Resyncs != 1 {
		t.Errorf("the cache is not subscribed to the in-process bus: %+v", cs.Stats())
	}
	if _, ok := a.db.(interface{ Pool() *pgxpool.Pool }); ok {
		t.Error("an SQLite store claims a PostgreSQL pool")
	}
	if permiso.RefreshRotatorOf(a.db) != nil {
		t.Error("an SQLite store claims the checked refresh rotation")
	}

	if os.Getenv("PERMISO_TEST_DATABASE_URL") == "" {
		return
	}
	env["DATABASE_URL"] = pgDatabase(t)
	pa, err := e.open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	pg, ok := pa.db.(interface{ Pool() *pgxpool.Pool })
	if !ok || pg.Pool() == nil {
		t.Fatalf("the cached PostgreSQL store (%T) hides its pool from the metrics", pa.db)
	}
	// The refresh grant finds PostgreSQL's checked rotation through the
	// cache (docs/benchmarks.md, "The refresh path").
	if permiso.RefreshRotatorOf(pa.db) == nil {
		t.Errorf("the cached PostgreSQL store (%T) hides its checked refresh rotation", pa.db)
	}
}

// TestCLIWritesPublish: a CLI command that writes users (create-admin)
// publishes the invalidation on Redis, so running servers drop their
// cached copies.
func TestCLIWritesPublish(t *testing.T) {
	redisURL := testdb.RedisURL(t)
	env := baseEnv(t)
	prefix := "permiso-test-cli:" + rand.Text()[:12] + ":"
	env["REDIS_URL"] = redisURL
	env["CACHE_TOKEN_PREFIX"] = prefix + "token:"
	env["CACHE_SESSION_PREFIX"] = prefix + "session:"
	env["CACHE_RATE_LIMIT_PREFIX"] = prefix + "rate:"
	env["CACHE_USER_PREFIX"] = prefix + "user:"

	rc, err := redis.Open(redisURL, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var mu sync.Mutex
	var got []permiso.Change
	stop, err := redis.NewChangeBus(rc, prefix+"user:").Subscribe(t.Context(), func(c permiso.Change) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	seen := func(kind permiso.ChangeKind) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range got {
			if c.Kind == kind {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for !seen(permiso.ChangeResync) {
		if time.Now().After(deadline) {
			t.Fatal("no subscription")
		}
		time.Sleep(10 * time.Millisecond)
	}

	if out, stderr, err := runCmd(t, env, "Adm1n-Passw0rd!x\n", "create-admin", "--username", "admin",
		"--email", "admin@example.com", "--password-stdin"); err != nil {
		t.Fatalf("create-admin: %v\n%s%s", err, out, stderr)
	}
	for !seen(permiso.ChangeUser) || !seen(permiso.ChangeAll) { // the migrations, then the user
		if time.Now().After(deadline) {
			t.Fatalf("create-admin published %v; want the migrations' and the user's changes", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
