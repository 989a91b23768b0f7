package storetest

import (
	"testing"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testrace"
)

// RaceMigrators runs MigrateUp at once on each of dbs, every one a
// connection of its own to the same empty database, as instances starting
// together do: none may fail, and each migration is applied by exactly
// one of them. It returns the status the first one reads afterwards.
func RaceMigrators[M permiso.Migrator](t *testing.T, dbs []M) []permiso.MigrationStatus {
	t.Helper()
	counts := make([]int, len(dbs))
	errs := testrace.All(len(dbs), func(i int) error {
		applied, err := dbs[i].MigrateUp(t.Context())
		counts[i] = len(applied)
		return err
	})
	total := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
		total += counts[i]
	}
	st, err := dbs[0].MigrationStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if total != len(st) {
		t.Errorf("migrations applied in total = %d (%v), want %d (each exactly once)", total, counts, len(st))
	}
	return st
}
