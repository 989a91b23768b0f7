package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/postgres"
	"github.com/permiso/permiso/storetest"
)

// BenchmarkStore runs the store benchmarks in a schema of their own
// (PERMISO_TEST_DATABASE_URL; skipped without it). The store's sessions
// run with synchronous_commit=off, so that the figures measure the
// statements and round trips rather than the shared machine's disk.
func BenchmarkStore(b *testing.B) {
	url := os.Getenv("PERMISO_TEST_DATABASE_URL")
	if url == "" {
		b.Skip("PERMISO_TEST_DATABASE_URL is not set")
	}
	admin := func(sql string) {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			b.Fatal(err)
		}
	}
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	storetest.Bench(b, func(b *testing.B) permiso.Store {
		r := make([]byte, 8)
		_, _ = rand.Read(r)
		schema := "permiso_bench_" + hex.EncodeToString(r)
		admin("CREATE SCHEMA " + schema)
		b.Cleanup(func() { admin("DROP SCHEMA IF EXISTS " + schema + " CASCADE") })
		db, err := postgres.Open(context.Background(), url+sep+"synchronous_commit=off", postgres.Options{MaxConns: 4, SearchPath: schema})
		if err != nil {
			b.Fatal(err)
		}
		testdb.Migrate(b, db)
		return db
	})
}
