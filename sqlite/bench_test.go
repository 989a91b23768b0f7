package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testdb"
	"github.com/permiso/permiso/storetest"
)

// BenchmarkStore runs the store benchmarks on a file database (WAL).
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) permiso.Store {
		return testdb.SQLiteAt(b, filepath.Join(b.TempDir(), "bench.db"))
	})
}
