package storetest

import (
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// raceTests are the checks of writes that race with each other or with a
// retry: the one grace retry of a rotated refresh token, the password
// compare-and-swap, RevokeSession of a session already revoked (tokens
// issued after the first revocation), and the login lookup's trimming.
var raceTests = []test{
	{"Tokens/RefreshGraceRetryOnce", testRefreshGraceOnce},
	{"Tokens/RefreshGraceRetryConcurrent", testRefreshGraceConcurrent},
	{"Tokens/RefreshGraceRefusedAfterReplacementUsed", testRefreshGraceReplacementUsed},
	{"Users/ChangePasswordIfCurrent", testChangePasswordIfCurrent},
	{"Sessions/RevokeRevokedSessionRevokesLateTokens", testRevokeRevokedSessionTokens},
	{"Users/GetUserByLoginTrims", testGetUserByLoginTrims},
}

func testRefreshGraceOnce(h *harness) {
	sess, first := h.firstRefresh("gracie", "g-1")
	usedAt := h.at(time.Minute)

	// Grace on an unused token is refused: only a rotated token has a retry.
	early := h.newRefresh(sess, first.FamilyID, "g-early")
	h.wantErr(h.s.UseRefreshTokenGrace(h.ctx, hashOf("g-1"), early, h.now, usedAt), permiso.ErrConflict, "UseRefreshTokenGrace on an unused token")

	// The rotation's replacement, unused: it does not stand in the way of
	// the retry below.
	next := h.newRefresh(sess, first.FamilyID, "g-2")
	next.ParentID = &first.ID
	h.must(h.s.UseRefreshToken(h.ctx, hashOf("g-1"), next, usedAt), "UseRefreshToken")

	// Window closed: used before usedSince.
	late := h.newRefresh(sess, first.FamilyID, "g-late")
	h.wantErr(h.s.UseRefreshTokenGrace(h.ctx, hashOf("g-1"), late, usedAt.Add(time.Second), usedAt.Add(2*time.Second)),
		permiso.ErrConflict, "UseRefreshTokenGrace after the window")
	_, err := h.s.GetRefreshTokenByHash(h.ctx, hashOf("g-late"))
	h.wantErr(err, permiso.ErrNotFound, "replacement of a refused grace retry must not be written")

	at := usedAt.Add(time.Second)
	sib := h.newRefresh(sess, first.FamilyID, "g-3")
	sib.ParentID = &first.ID
	h.must(h.s.UseRefreshTokenGrace(h.ctx, hashOf("g-1"), sib, usedAt, at), "UseRefreshTokenGrace")
	old := h.getRefresh("g-1")
	eqTimePtr(h, "used_at after the grace retry", old.UsedAt, &usedAt)
	eqTimePtr(h, "revoked_at after the grace retry", old.RevokedAt, &at)
	eqPtr(h, "revocation_reason after the grace retry", old.RevocationReason, ptr(permiso.RevocationGraceUsed))
	got := h.getRefresh("g-3")
	eqPtr(h, "grace replacement parent", got.ParentID, &first.ID)
	eqTimePtr(h, "grace replacement revoked_at", got.RevokedAt, nil)

	// The retry is spent: a second one is refused and writes nothing.
	again := h.newRefresh(sess, first.FamilyID, "g-4")
	h.wantErr(h.s.UseRefreshTokenGrace(h.ctx, hashOf("g-1"), again, usedAt, at), permiso.ErrConflict, "second UseRefreshTokenGrace")
	_, err = h.s.GetRefreshTokenByHash(h.ctx, hashOf("g-4"))
	h.wantErr(err, permiso.ErrNotFound, "replacement of a second grace retry must not be written")

	h.wantErr(h.s.UseRefreshTokenGrace(h.ctx, hashOf("g-unknown"), again, usedAt, at), permiso.ErrNotFound, "UseRefreshTokenGrace on an unknown token")

	// A replacement that cannot be written leaves the retry unspent.
	f := h.refresh(sess, uuid.Nil, "g-5")
	h.must(h.s.UseRefreshToken(h.ctx, hashOf("g-5"), h.newRefresh(sess, f.FamilyID, "g-6"), usedAt), "UseRefreshToken g-5")
	clash := h.newRefresh(sess, f.FamilyID, "g-6")
	h.wantErr(h.s.UseRefreshTokenGrace(h.ctx, hashOf("g-5"), clash, usedAt, at), permiso.ErrAlreadyExists, "UseRefreshTokenGrace with a taken replacement hash")
	eqTimePtr(h, "revoked_at after a failed grace retry (must be transactional)", h.getRefresh("g-5").RevokedAt, nil)
}

func testRefreshGraceConcurrent(h *harness) {
	u := h.user("gail")
	sess := h.session(u.ID, nil)
	first := h.refresh(sess, uuid.Nil, "gc-0")
	usedAt := h.at(time.Second)
	h.must(h.s.UseRefreshToken(h.ctx, hashOf("gc-0"), h.newRefresh(sess, first.FamilyID, "gc-next"), usedAt), "UseRefreshToken")
	const n = 8
	exactlyOne(h, n, permiso.ErrConflict, "grace retries", func(i int) error {
		repl := h.newRefresh(sess, first.FamilyID, "gc-sib-"+string(rune('a'+i)))
		return h.s.UseRefreshTokenGrace(h.ctx, hashOf("gc-0"), repl, usedAt, h.at(2*time.Second))
	})
}

// Once the replacement of a rotated token was used, the client that
// rotated it evidently received its answer: a grace retry of the rotated
// token is refused (the caller takes it for reuse) and writes nothing.
func testRefreshGraceReplacementUsed(h *harness) {
	sess, first := h.firstRefresh("grady", "gu-0")
	usedAt := h.at(time.Minute)
	next := h.newRefresh(sess, first.FamilyID, "gu-1")
	next.ParentID = &first.ID
	h.must(h.s.UseRefreshToken(h.ctx, hashOf("gu-0"), next, usedAt), "UseRefreshToken gu-0")
	third := h.newRefresh(sess, first.FamilyID, "gu-2")
	third.ParentID = &next.ID
	h.must(h.s.UseRefreshToken(h.ctx, hashOf("gu-1"), third, usedAt.Add(time.Second)), "UseRefreshToken gu-1")
	before, err := h.s.GetSession(h.ctx, sess.ID)
	h.must(err, "GetSession")

	retry := h.newRefresh(sess, first.FamilyID, "gu-retry")
	retry.ParentID = &first.ID
	at := usedAt.Add(2 * time.Second)
	h.wantErr(h.s.UseRefreshTokenGrace(h.ctx, hashOf("gu-0"), retry, usedAt, at), permiso.ErrConflict,
		"UseRefreshTokenGrace after the replacement was used")
	_, err = h.s.GetRefreshTokenByHash(h.ctx, hashOf("gu-retry"))
	h.wantErr(err, permiso.ErrNotFound, "replacement of a refused grace retry must not be written")
	old := h.getRefresh("gu-0")
	eqTimePtr(h, "revoked_at of the refused token", old.RevokedAt, nil)
	eqTimePtr(h, "used_at of the refused token", old.UsedAt, &usedAt)
	after, err := h.s.GetSession(h.ctx, sess.ID)
	h.must(err, "GetSession")
	eqTime(h, "session last_activity after a refused grace retry", after.LastActivity, before.LastActivity)
	eqTime(h, "session expires_at after a refused grace retry", after.ExpiresAt, before.ExpiresAt)

	// The used replacement's own retry, its replacement unused, is granted.
	sib := h.newRefresh(sess, first.FamilyID, "gu-1b")
	sib.ParentID = &next.ID
	h.must(h.s.UseRefreshTokenGrace(h.ctx, hashOf("gu-1"), sib, usedAt, at), "UseRefreshTokenGrace gu-1")
}

func testChangePasswordIfCurrent(h *harness) {
	u := h.user("cas")
	orig := u.PasswordHash
	h.must(h.s.ChangePasswordIfCurrent(h.ctx, u.ID, orig, "hash-a", h.at(time.Second), 5), "ChangePasswordIfCurrent")
	got, err := h.s.GetUser(h.ctx, u.ID)
	h.must(err, "GetUser")
	eq(h, "password hash after the swap", got.PasswordHash, "hash-a")
	eqTime(h, "password_changed_at after the swap", got.PasswordChangedAt, h.at(time.Second))
	hist, err := h.s.PasswordHistory(h.ctx, u.ID, 10)
	h.must(err, "PasswordHistory")
	if len(hist) != 1 || hist[0].PasswordHash != orig {
		h.Fatalf("history after the swap = %+v, want the original hash", hist)
	}

	// A request that verified the original hash loses to the change above.
	h.wantErr(h.s.ChangePasswordIfCurrent(h.ctx, u.ID, orig, "hash-b", h.at(2*time.Second), 5), permiso.ErrConflict, "ChangePasswordIfCurrent with a stale hash")
	got, _ = h.s.GetUser(h.ctx, u.ID)
	eq(h, "password hash after a refused swap", got.PasswordHash, "hash-a")
	hist, _ = h.s.PasswordHistory(h.ctx, u.ID, 10)
	eq(h, "history entries after a refused swap", len(hist), 1)

	h.wantErr(h.s.ChangePasswordIfCurrent(h.ctx, uuid.New(), orig, "x", h.now, 5), permiso.ErrNotFound, "ChangePasswordIfCurrent of an unknown user")

	// Concurrent swaps from the same verified hash: exactly one wins.
	exactlyOne(h, 6, permiso.ErrConflict, "password swaps", func(i int) error {
		return h.s.ChangePasswordIfCurrent(h.ctx, u.ID, "hash-a", "hash-c-"+string(rune('a'+i)), h.at(3*time.Second), 5)
	})
}

// RevokeSession of a session revoked earlier still revokes a refresh token
// of it left unrevoked, keeping the session's revoked_at.
func testRevokeRevokedSessionTokens(h *harness) {
	u := h.user("late")
	sess := h.session(u.ID, nil)
	first, err := h.s.RevokeSession(h.ctx, sess.ID, "logout", h.at(time.Minute))
	h.must(err, "RevokeSession")
	late := h.refresh(sess, uuid.Nil, "late-token") // issued after (a racing login)
	again, err := h.s.RevokeSession(h.ctx, sess.ID, "reuse_detected", h.at(2*time.Minute))
	h.must(err, "RevokeSession of a revoked session")
	eqTimePtr(h, "revoked_at of a session revoked twice", again.RevokedAt, first.RevokedAt)
	got := h.getRefresh("late-token")
	eqTimePtr(h, "revoked_at of a token issued after the session's revocation", got.RevokedAt, ptr(h.at(2*time.Minute)))
	eqPtr(h, "revocation_reason of that token", got.RevocationReason, ptr("reuse_detected"))
	_ = late
}

// GetUserByLogin trims surrounding spaces like NormalizeUsername, in every
// backend.
func testGetUserByLoginTrims(h *harness) {
	u := h.user("Trimmed")
	for _, login := range []string{"  trimmed ", "\ttrimmed@example.com\n", "TRIMMED"} {
		got, err := h.s.GetUserByLogin(h.ctx, login)
		h.must(err, "GetUserByLogin(%q)", login)
		eq(h, "user found by "+login, got.ID, u.ID)
	}
}
