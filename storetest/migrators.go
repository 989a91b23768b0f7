package storetest

import (
	"testing"

	"github.com/google/uuid"

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

// MigrationKeepsRefreshTokens checks migration 8 (one foreign key from
// refresh_tokens to user_sessions on (user_id, session_id);
// docs/data-model.md) over rows written before it: s, fully migrated,
// goes down to version 7, gets users, sessions and tokens, goes up again
// (the tokens and their sessions are kept; a user's deletion removes
// theirs), and down to 7 again (the tokens left are kept).
func MigrationKeepsRefreshTokens[S interface {
	permiso.Store
	permiso.Migrator
}](t *testing.T, s S) {
	t.Helper()
	h := newHarness(t, s)
	st, err := s.MigrationStatus(h.ctx)
	h.must(err, "MigrationStatus")
	down := st[len(st)-1].Version - 7 // down to version 7
	_, err = s.MigrateDown(h.ctx, down)
	h.must(err, "MigrateDown to 7")
	u := h.user("mig-user")
	sess := h.session(u.ID, nil)
	h.refresh(sess, uuid.Nil, "mig-token")
	other := h.session(h.user("mig-other").ID, nil)
	h.refresh(other, uuid.Nil, "mig-other-token")

	_, err = s.MigrateUp(h.ctx)
	h.must(err, "MigrateUp")
	eq(h, "session of the kept token", h.getRefresh("mig-token").SessionID, sess.ID)
	h.must(s.DeleteUser(h.ctx, u.ID), "DeleteUser")
	_, err = s.GetRefreshTokenByHash(h.ctx, hashOf("mig-token"))
	h.wantErr(err, permiso.ErrNotFound, "token of a deleted user after migration 8")
	h.getRefresh("mig-other-token")

	_, err = s.MigrateDown(h.ctx, down)
	h.must(err, "MigrateDown to 7 again")
	eq(h, "session of the token kept going down", h.getRefresh("mig-other-token").SessionID, other.ID)
}
