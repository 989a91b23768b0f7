package sqlite

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// cached reports how many statements are prepared in db's cache.
func cached(db *DB) int {
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	return len(db.stmts.stmts)
}

// TestStmtCache: a statement is prepared in the background after its first
// run and used from then on, inside transactions too, on the one
// connection of ":memory:" (where preparing on the caller's path would
// wait for the connection the transaction holds) and on a file database's
// writer and readers; the cache is bounded and closed with the DB.
func TestStmtCache(t *testing.T) {
	for _, path := range []string{Memory, filepath.Join(t.TempDir(), "c.db")} {
		ctx := context.Background()
		db, err := Open(ctx, path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		const q = "SELECT COUNT(*) FROM sqlite_master WHERE type = ?"
		run := func() {
			t.Helper()
			var n int
			if err := db.inTx(ctx, func(c conn) error { return c.queryRow(ctx, q, "table").Scan(&n) }); err != nil {
				t.Fatalf("%s: in a transaction: %v", path, err)
			}
			if err := db.r().queryRow(ctx, q, "table").Scan(&n); err != nil {
				t.Fatalf("%s: on the read pool: %v", path, err)
			}
		}
		run()
		deadline := time.Now().Add(10 * time.Second)
		want := 2 // one per pool
		if path == Memory {
			want = 1 // read and write are one pool
		}
		for cached(db) < want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d statements cached after the first run, want %d", path, cached(db), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		for range 3 {
			run()
		}
		if n := cached(db); n != want {
			t.Errorf("%s: %d statements cached, want %d (one per pool and query)", path, n, want)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if db.stmts.get(db.write, q) != nil || cached(db) != 0 {
			t.Errorf("%s: the cache still serves after Close", path)
		}
	}
}

// TestStmtCacheBounded: past maxCachedStmts distinct queries run uncached.
func TestStmtCacheBounded(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Memory, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := range maxCachedStmts + 50 {
		var n int
		if err := db.r().queryRow(ctx, "SELECT ? + "+strconv.Itoa(i), 1).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("query %d: %d, %v", i, n, err)
		}
	}
	db.stmts.wg.Wait()
	if n := cached(db); n > maxCachedStmts {
		t.Errorf("%d statements cached, bound %d", n, maxCachedStmts)
	}
}
