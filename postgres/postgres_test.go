package postgres

import (
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
