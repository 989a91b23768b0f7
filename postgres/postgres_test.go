package postgres

import (
	"strings"
	"testing"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/storetest"
)

// TestConformance runs the storage conformance suite against PostgreSQL;
// every subtest gets a migrated schema of its own (see newTestDB).
func TestConformance(t *testing.T) {
	testURL(t)
	storetest.Run(t, func(t *testing.T) permiso.Store { return newTestDB(t) })
}

// TestConformanceRotationsTogether runs the suite's refresh-token cases
// with every checked rotation sent through batchRotationSQL, the statement
// that rotates the refreshes queued together under load
// (rotation_batch.go), a batch of one included: it must answer and write
// what checkedRotationSQL does.
func TestConformanceRotationsTogether(t *testing.T) {
	testURL(t)
	storetest.Run(t, func(t *testing.T) permiso.Store {
		if !strings.Contains(t.Name(), "/RefreshTokens/") {
			t.Skip("not a refresh-token case")
		}
		db := newTestDB(t)
		db.together = true
		return db
	})
}
