package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testrace"
)

var tokenTests = []test{
	{"RefreshTokens/CRUD", testRefreshCRUD},
	{"RefreshTokens/Use", testRefreshUse},
	{"RefreshTokens/RevokeFamily", testRefreshRevokeFamily},
	{"RefreshTokens/DeleteExpired", testRefreshDeleteExpired},
	{"RefreshTokens/ConcurrentUse", testRefreshConcurrentUse},
	{"RefreshTokens/RotationRacesSessionRevocation", testRefreshRotationVsRevokeSession},
	{"RefreshTokens/WithSession", testRefreshWithSession},
	{"RefreshTokens/RotateChecked", testRotateChecked},
	{"RefreshTokens/RotateCheckedRefusals", testRotateCheckedRefusals},
	{"RefreshTokens/RotateCheckedUndo", testRotateCheckedUndo},
	{"RefreshTokens/RotateCheckedConcurrentUse", func(h *harness) { rotator(h); testRefreshConcurrentUseBy(h, rotateChecked) }},
	{"RefreshTokens/RotateCheckedRacesSessionRevocation", func(h *harness) { rotator(h); testRefreshRotationVsRevokeSessionBy(h, rotateChecked) }},
}

// rotation rotates the token with hash at now, storing repl: the store's
// UseRefreshToken, or its RotateRefreshToken (rotateChecked).
type rotation func(h *harness, hash string, repl permiso.RefreshToken, now time.Time) error

func useRefresh(h *harness, hash string, repl permiso.RefreshToken, now time.Time) error {
	return h.s.UseRefreshToken(h.ctx, hash, repl, now)
}

// rotateChecked is RotateRefreshToken of repl's session and client, the
// session's lifetime a day; a rotation refused is ErrConflict.
func rotateChecked(h *harness, hash string, repl permiso.RefreshToken, now time.Time) error {
	_, _, ok, err := rotator(h).RotateRefreshToken(h.ctx, permiso.RefreshRotation{Hash: hash, Now: now,
		ClientID: repl.ClientID, SessionLifetime: 24 * time.Hour, Replacement: repl})
	if err == nil && !ok {
		err = permiso.ErrConflict
	}
	return err
}

// rotator is the store as a permiso.RefreshRotator; a store that is not
// one (SQLite: its refresh grant reads the token first) skips the test.
func rotator(h *harness) permiso.RefreshRotator {
	h.Helper()
	r, ok := h.s.(permiso.RefreshRotator)
	if !ok {
		h.Skip("the store makes no checked rotation (permiso.RefreshRotator)")
	}
	return r
}

var keyTests = []test{
	{"SigningKeys/CreateListRetire", testSigningKeys},
}

func testRefreshCRUD(h *harness) {
	u := h.user("olga")
	c := h.client("svc-rt")
	sess := h.session(u.ID, &c.ID)
	parent := uuid.New()
	rt := permiso.RefreshToken{
		ID: uuid.New(), TokenHash: hashOf("rt-1"), UserID: u.ID, ClientID: &c.ID,
		SessionID: sess.ID, FamilyID: uuid.New(), ParentID: &parent,
		Scopes:   []string{"write:profile", "read:profile"},
		IssuedAt: h.now, ExpiresAt: h.at(time.Hour),
		ClientIP: ptr("198.51.100.4"), UserAgent: ptr("curl/8"),
	}
	_, err := h.s.CreateRefreshToken(h.ctx, rt)
	h.must(err, "CreateRefreshToken")
	got := h.getRefresh("rt-1")
	eq(h, "id", got.ID, rt.ID)
	eq(h, "token_hash", got.TokenHash, rt.TokenHash)
	eq(h, "user_id", got.UserID, u.ID)
	eqPtr(h, "client_id", got.ClientID, &c.ID)
	eq(h, "session_id", got.SessionID, sess.ID)
	eq(h, "family_id", got.FamilyID, rt.FamilyID)
	eqPtr(h, "parent_id", got.ParentID, &parent)
	eqStrings(h, "scopes (sorted)", got.Scopes, []string{"read:profile", "write:profile"})
	eqTime(h, "issued_at", got.IssuedAt, h.now)
	eqTime(h, "expires_at", got.ExpiresAt, h.at(time.Hour))
	eqTimePtr(h, "used_at", got.UsedAt, nil)
	eqTimePtr(h, "revoked_at", got.RevokedAt, nil)
	eqPtr(h, "revocation_reason", got.RevocationReason, nil)
	eqPtr(h, "client_ip", got.ClientIP, ptr("198.51.100.4"))
	eqPtr(h, "user_agent", got.UserAgent, ptr("curl/8"))

	// A first-party token: no client, no parent, no scopes.
	plain := h.newRefresh(h.session(u.ID, nil), uuid.New(), "rt-plain")
	plain.ClientID, plain.Scopes = nil, nil
	_, err = h.s.CreateRefreshToken(h.ctx, plain)
	h.must(err, "CreateRefreshToken without client")
	gp := h.getRefresh("rt-plain")
	eqPtr(h, "client_id of a first-party token", gp.ClientID, nil)
	eqPtr(h, "parent_id of a first token", gp.ParentID, nil)
	eq(h, "scopes of a token without scopes", len(gp.Scopes), 0)

	dup := h.newRefresh(sess, uuid.New(), "rt-1")
	_, err = h.s.CreateRefreshToken(h.ctx, dup)
	h.wantErr(err, permiso.ErrAlreadyExists, "CreateRefreshToken with a taken hash")

	_, err = h.s.GetRefreshTokenByHash(h.ctx, hashOf("unknown"))
	h.wantErr(err, permiso.ErrNotFound, "GetRefreshTokenByHash(unknown)")

	bad := h.newRefresh(sess, uuid.New(), "rt-bad-session")
	bad.SessionID = uuid.New()
	_, err = h.s.CreateRefreshToken(h.ctx, bad)
	h.wantErr(err, permiso.ErrNotFound, "CreateRefreshToken for an unknown session")
	bad = h.newRefresh(sess, uuid.New(), "rt-bad-user")
	bad.UserID = uuid.New()
	_, err = h.s.CreateRefreshToken(h.ctx, bad)
	h.wantErr(err, permiso.ErrNotFound, "CreateRefreshToken for an unknown user")
}

func testRefreshUse(h *harness) {
	sess, first := h.firstRefresh("pia", "use-1")
	usedAt := h.at(time.Minute)

	next := h.newRefresh(sess, first.FamilyID, "use-2")
	next.ParentID = &first.ID
	next.IssuedAt = usedAt
	h.must(h.s.UseRefreshToken(h.ctx, hashOf("use-1"), next, usedAt), "UseRefreshToken")
	old := h.getRefresh("use-1")
	eqTimePtr(h, "used_at of the rotated token", old.UsedAt, &usedAt)
	eqTimePtr(h, "revoked_at of the rotated token", old.RevokedAt, nil)
	repl := h.getRefresh("use-2")
	eq(h, "replacement id", repl.ID, next.ID)
	eq(h, "replacement family", repl.FamilyID, first.FamilyID)
	eqPtr(h, "replacement parent", repl.ParentID, &first.ID)
	eqTimePtr(h, "replacement used_at", repl.UsedAt, nil)
	// The rotation touched the session in its transaction: activity now,
	// expiry moved forward to the replacement's (permiso.TouchSession).
	got, err := h.s.GetSession(h.ctx, sess.ID)
	h.must(err, "GetSession")
	eqTime(h, "session last_activity after a rotation", got.LastActivity, usedAt)
	eqTime(h, "session expires_at after a rotation", got.ExpiresAt, next.ExpiresAt)
	// ... and never moves the expiry back.
	shorter := h.newRefresh(sess, first.FamilyID, "use-2b")
	shorter.ParentID = &next.ID
	shorter.ExpiresAt = h.at(2 * time.Hour)
	h.must(h.s.UseRefreshToken(h.ctx, hashOf("use-2"), shorter, h.at(90*time.Second)), "UseRefreshToken with a shorter expiry")
	got, err = h.s.GetSession(h.ctx, sess.ID)
	h.must(err, "GetSession")
	eqTime(h, "session last_activity after the second rotation", got.LastActivity, h.at(90*time.Second))
	eqTime(h, "session expires_at must not move back", got.ExpiresAt, next.ExpiresAt)

	again := h.newRefresh(sess, first.FamilyID, "use-3")
	h.wantErr(h.s.UseRefreshToken(h.ctx, hashOf("use-1"), again, h.at(2*time.Minute)), permiso.ErrConflict, "UseRefreshToken on a used token")
	_, err = h.s.GetRefreshTokenByHash(h.ctx, hashOf("use-3"))
	h.wantErr(err, permiso.ErrNotFound, "replacement of a refused rotation must not be written")
	old = h.getRefresh("use-1")
	eqTimePtr(h, "used_at unchanged by a refused rotation", old.UsedAt, &usedAt)
	// A refused rotation does not touch the session either.
	got, err = h.s.GetSession(h.ctx, sess.ID)
	h.must(err, "GetSession")
	eqTime(h, "session last_activity after a refused rotation", got.LastActivity, h.at(90*time.Second))

	_, err = h.s.RevokeRefreshFamily(h.ctx, first.FamilyID, "test", h.at(3*time.Minute))
	h.must(err, "RevokeRefreshFamily")
	h.wantErr(h.s.UseRefreshToken(h.ctx, hashOf("use-2b"), again, h.at(4*time.Minute)), permiso.ErrConflict, "UseRefreshToken on a revoked token")
	_, err = h.s.GetRefreshTokenByHash(h.ctx, hashOf("use-3"))
	h.wantErr(err, permiso.ErrNotFound, "replacement of a revoked token must not be written")

	h.wantErr(h.s.UseRefreshToken(h.ctx, hashOf("unknown"), again, h.now), permiso.ErrNotFound, "UseRefreshToken on an unknown token")

	// A replacement that cannot be written (taken hash) leaves the original unused.
	fresh := h.refresh(sess, uuid.Nil, "use-4")
	clash := h.newRefresh(sess, fresh.FamilyID, "use-2")
	h.wantErr(h.s.UseRefreshToken(h.ctx, hashOf("use-4"), clash, h.now), permiso.ErrAlreadyExists, "UseRefreshToken with a taken replacement hash")
	f := h.getRefresh("use-4")
	eqTimePtr(h, "used_at after a failed rotation (must be transactional)", f.UsedAt, nil)
}

func testRefreshRevokeFamily(h *harness) {
	u := h.user("quinn")
	sess := h.session(u.ID, nil)
	fam, otherFam := uuid.New(), uuid.New()
	h.refresh(sess, fam, "fam-1")
	h.refresh(sess, fam, "fam-2")
	h.refresh(sess, fam, "fam-3")
	h.refresh(sess, otherFam, "other-1")
	earlier := h.at(-time.Minute)
	n, err := h.s.RevokeRefreshFamily(h.ctx, fam, "earlier", earlier)
	h.must(err, "RevokeRefreshFamily (first)")
	eq(h, "revoked in first call", n, 3)
	h.refresh(sess, fam, "fam-4")

	n, err = h.s.RevokeRefreshFamily(h.ctx, fam, "reuse_detected", h.now)
	h.must(err, "RevokeRefreshFamily")
	eq(h, "revoked count (only unrevoked tokens)", n, 1)
	for _, tok := range []string{"fam-1", "fam-2", "fam-3"} {
		rt := h.getRefresh(tok)
		eqTimePtr(h, tok+" revoked_at keeps the first revocation", rt.RevokedAt, &earlier)
		eqPtr(h, tok+" revocation_reason", rt.RevocationReason, ptr("earlier"))
	}
	rt := h.getRefresh("fam-4")
	eqTimePtr(h, "fam-4 revoked_at", rt.RevokedAt, &h.now)
	eqPtr(h, "fam-4 revocation_reason", rt.RevocationReason, ptr("reuse_detected"))
	other := h.getRefresh("other-1")
	eqTimePtr(h, "other family untouched", other.RevokedAt, nil)

	n, err = h.s.RevokeRefreshFamily(h.ctx, fam, "again", h.at(time.Minute))
	h.must(err, "RevokeRefreshFamily (again)")
	eq(h, "revoked count of an already revoked family", n, 0)
	n, err = h.s.RevokeRefreshFamily(h.ctx, uuid.New(), "none", h.now)
	h.must(err, "RevokeRefreshFamily(unknown family)")
	eq(h, "revoked count of an unknown family", n, 0)
}

func testRefreshDeleteExpired(h *harness) {
	u := h.user("rosa")
	sess := h.session(u.ID, nil)
	for i, exp := range []time.Duration{-2 * time.Hour, -time.Minute, time.Minute, time.Hour} {
		rt := h.newRefresh(sess, uuid.New(), fmt.Sprintf("exp-%d", i))
		rt.ExpiresAt = h.at(exp)
		_, err := h.s.CreateRefreshToken(h.ctx, rt)
		h.must(err, "CreateRefreshToken")
	}
	n, err := h.s.DeleteExpiredRefreshTokens(h.ctx, h.now)
	h.must(err, "DeleteExpiredRefreshTokens")
	eq(h, "expired refresh tokens deleted", n, 2)
	for i, alive := range []bool{false, false, true, true} {
		_, err := h.s.GetRefreshTokenByHash(h.ctx, hashOf(fmt.Sprintf("exp-%d", i)))
		if alive {
			h.must(err, "GetRefreshTokenByHash(exp-%d)", i)
		} else {
			h.wantErr(err, permiso.ErrNotFound, "GetRefreshTokenByHash(exp-%d) after delete", i)
		}
	}
	n, err = h.s.DeleteExpiredRefreshTokens(h.ctx, h.now)
	h.must(err, "DeleteExpiredRefreshTokens (again)")
	eq(h, "expired refresh tokens deleted by a second call", n, 0)
	// The session itself is not touched.
	_, err = h.s.GetSession(h.ctx, sess.ID)
	h.must(err, "GetSession")
}

// testRefreshConcurrentUse races 20 rotations of one token: exactly one
// wins, the others get ErrConflict, and exactly one replacement exists.
func testRefreshConcurrentUse(h *harness) { testRefreshConcurrentUseBy(h, useRefresh) }

func testRefreshConcurrentUseBy(h *harness, rotate rotation) {
	sess, first := h.firstRefresh("sam", "race-0")
	const n = 20
	exactlyOne(h, n, permiso.ErrConflict, "rotations", func(i int) error {
		repl := h.newRefresh(sess, first.FamilyID, fmt.Sprintf("race-repl-%d", i))
		repl.ParentID = &first.ID
		return rotate(h, hashOf("race-0"), repl, h.at(time.Second))
	})
	replacements := 0
	for i := range n {
		if _, err := h.s.GetRefreshTokenByHash(h.ctx, hashOf(fmt.Sprintf("race-repl-%d", i))); err == nil {
			replacements++
		} else if !isErr(err, permiso.ErrNotFound) {
			h.Errorf("GetRefreshTokenByHash(race-repl-%d): %v", i, err)
		}
	}
	eq(h, "replacement rows written", replacements, 1)
}

// testRefreshRotationVsRevokeSession races rotations of a session's
// tokens with the revocation of the session (logout, reuse detection:
// RFC 9700 §4.14.2), which locks the session and then its refresh tokens.
// A rotation takes the same locks in the same order, so none deadlocks,
// and whichever wins, no refresh token of the session is left unrevoked:
// a replacement committed first is revoked with the session, a rotation
// after the revocation is refused.
func testRefreshRotationVsRevokeSession(h *harness) {
	testRefreshRotationVsRevokeSessionBy(h, useRefresh)
}

func testRefreshRotationVsRevokeSessionBy(h *harness, rotate rotation) {
	u := h.user("rex")
	const n = 8
	for round := range 4 {
		sess := h.session(u.ID, nil)
		family := uuid.New()
		for i := range n {
			h.refresh(sess, family, fmt.Sprintf("rvs-%d-%d", round, i))
		}
		errs := testrace.All(n+1, func(i int) error {
			if i == n {
				_, err := h.s.RevokeSession(h.ctx, sess.ID, permiso.RevocationReuseDetected, h.at(time.Second))
				return err
			}
			repl := h.newRefresh(sess, family, fmt.Sprintf("rvs-%d-%d-next", round, i))
			return rotate(h, hashOf(fmt.Sprintf("rvs-%d-%d", round, i)), repl, h.at(time.Second))
		})
		h.must(errs[n], "RevokeSession racing rotations")
		for i := range n {
			if errs[i] != nil {
				h.wantErr(errs[i], permiso.ErrConflict, "rotation %d racing the session's revocation", i)
			}
			for _, name := range []string{fmt.Sprintf("rvs-%d-%d", round, i), fmt.Sprintf("rvs-%d-%d-next", round, i)} {
				t, err := h.s.GetRefreshTokenByHash(h.ctx, hashOf(name))
				switch {
				case isErr(err, permiso.ErrNotFound) && errs[i] != nil && name != fmt.Sprintf("rvs-%d-%d", round, i):
				case err != nil:
					h.Errorf("GetRefreshTokenByHash(%s): %v", name, err)
				case t.RevokedAt == nil:
					h.Errorf("%s left unrevoked after its session was revoked (rotation error %v)", name, errs[i])
				}
			}
		}
	}
}

// testRefreshWithSession: GetRefreshTokenSession reads what
// GetRefreshTokenByHash and GetSession read, in one statement, used,
// revoked or not; an unknown hash is ErrNotFound.
func testRefreshWithSession(h *harness) {
	u := h.user("wes")
	sess, err := h.s.CreateSession(h.ctx, permiso.Session{ID: uuid.New(), UserID: u.ID, IPAddress: "192.0.2.7",
		CreatedAt: h.now, LastActivity: h.now, ExpiresAt: h.at(time.Hour), AMR: []string{"pwd", "otp"}})
	h.must(err, "CreateSession")
	first := h.refresh(sess, uuid.Nil, "ws-1")
	next := h.newRefresh(sess, first.FamilyID, "ws-2")
	next.ParentID = &first.ID
	h.must(h.s.UseRefreshToken(h.ctx, hashOf("ws-1"), next, h.at(time.Minute)), "UseRefreshToken")
	for _, name := range []string{"ws-1", "ws-2"} {
		t, x, err := h.s.GetRefreshTokenSession(h.ctx, hashOf(name))
		h.must(err, "GetRefreshTokenSession(%s)", name)
		diff(h, "token of GetRefreshTokenSession("+name+")", t, h.getRefresh(name))
		want, err := h.s.GetSession(h.ctx, sess.ID)
		h.must(err, "GetSession")
		diff(h, "session of GetRefreshTokenSession("+name+")", x, want)
		eqStrings(h, "amr of the session read with the token", x.AMR, []string{"pwd", "otp"})
	}
	_, _, err = h.s.GetRefreshTokenSession(h.ctx, hashOf("ws-unknown"))
	h.wantErr(err, permiso.ErrNotFound, "GetRefreshTokenSession of an unknown hash")
}

// testRotateChecked: RotateRefreshToken rotates a token that passes every
// check as UseRefreshToken does (used now, session touched, replacement
// stored), builds the replacement from the presented token and caps its
// expiry at the end of the session's absolute lifetime; a second rotation
// of the token is refused and writes nothing.
func testRotateChecked(h *harness) {
	r := rotator(h)
	u := h.user("rc")
	c := h.client("rc-app")
	sess, err := h.s.CreateSession(h.ctx, permiso.Session{ID: uuid.New(), UserID: u.ID, ClientID: &c.ID, IPAddress: "192.0.2.7",
		CreatedAt: h.now, LastActivity: h.now, ExpiresAt: h.at(time.Hour), AMR: []string{"pwd", "otp"}})
	h.must(err, "CreateSession")
	first := h.refresh(sess, uuid.Nil, "rc-1")
	now := h.at(time.Minute)
	repl := permiso.RefreshToken{ID: uuid.New(), TokenHash: hashOf("rc-2"), ExpiresAt: h.at(24 * time.Hour),
		ClientIP: ptr("198.51.100.1"), UserAgent: ptr("rc-agent")}
	rot := permiso.RefreshRotation{Hash: hashOf("rc-1"), Now: now, ClientID: &c.ID, IssuedSince: h.now,
		SessionLifetime: 2 * time.Hour, Replacement: repl}
	got, gotSess, ok, err := r.RotateRefreshToken(h.ctx, rot)
	h.must(err, "RotateRefreshToken")
	if !ok {
		h.Fatal("RotateRefreshToken refused a token that passes every check")
	}
	want := first
	want.UsedAt = &now
	diff(h, "presented token of RotateRefreshToken", got, want)
	diff(h, "presented token as stored", h.getRefresh("rc-1"), want)
	wantSess := sess
	wantSess.LastActivity, wantSess.ExpiresAt = now, h.at(2*time.Hour)
	diff(h, "session of RotateRefreshToken", gotSess, wantSess)
	stored, err := h.s.GetSession(h.ctx, sess.ID)
	h.must(err, "GetSession")
	diff(h, "session as stored", stored, wantSess)
	wantRepl := permiso.RefreshToken{ID: repl.ID, TokenHash: repl.TokenHash, UserID: u.ID, ClientID: &c.ID,
		SessionID: sess.ID, FamilyID: first.FamilyID, ParentID: &first.ID, Scopes: first.Scopes,
		IssuedAt: now, ExpiresAt: h.at(2 * time.Hour), ClientIP: repl.ClientIP, UserAgent: repl.UserAgent}
	diff(h, "replacement (expiry capped at the session's end)", h.getRefresh("rc-2"), wantRepl)

	rot.Replacement.ID, rot.Replacement.TokenHash, rot.Now = uuid.New(), hashOf("rc-3"), h.at(2*time.Minute)
	_, _, ok, err = r.RotateRefreshToken(h.ctx, rot)
	h.must(err, "RotateRefreshToken of a used token")
	if ok {
		h.Error("RotateRefreshToken rotated a used token")
	}
	_, err = h.s.GetRefreshTokenByHash(h.ctx, hashOf("rc-3"))
	h.wantErr(err, permiso.ErrNotFound, "replacement of a refused rotation")
}

// testRotateCheckedUndo: UndoRefreshRotation deletes the replacement and
// marks the presented token unused again, so that it rotates once more;
// an undo of a replacement that is gone changes nothing, and after the
// family's revocation it takes nothing back.
func testRotateCheckedUndo(h *harness) {
	r := rotator(h)
	u := h.user("ru")
	sess, err := h.s.CreateSession(h.ctx, permiso.Session{ID: uuid.New(), UserID: u.ID, IPAddress: "192.0.2.8",
		CreatedAt: h.now, LastActivity: h.now, ExpiresAt: h.at(time.Hour)})
	h.must(err, "CreateSession")
	first := h.refresh(sess, uuid.Nil, "ru-1")
	rotate := func(hash string, at time.Duration) (permiso.RefreshToken, bool) {
		h.Helper()
		repl := permiso.RefreshToken{ID: uuid.New(), TokenHash: hashOf(hash), ExpiresAt: h.at(24 * time.Hour)}
		_, _, ok, err := r.RotateRefreshToken(h.ctx, permiso.RefreshRotation{Hash: hashOf("ru-1"), Now: h.at(at),
			SessionLifetime: 2 * time.Hour, Replacement: repl})
		h.must(err, "RotateRefreshToken")
		return repl, ok
	}
	repl, ok := rotate("ru-2", time.Minute)
	if !ok {
		h.Fatal("RotateRefreshToken refused a token that passes every check")
	}
	h.must(r.UndoRefreshRotation(h.ctx, first.ID, repl.ID), "UndoRefreshRotation")
	diff(h, "presented token after the undo", h.getRefresh("ru-1"), first)
	_, err = h.s.GetRefreshTokenByHash(h.ctx, hashOf("ru-2"))
	h.wantErr(err, permiso.ErrNotFound, "replacement after the undo")
	// The undo of a replacement that is gone finds nothing to take back.
	h.must(r.UndoRefreshRotation(h.ctx, first.ID, repl.ID), "UndoRefreshRotation again")
	diff(h, "presented token after a second undo", h.getRefresh("ru-1"), first)

	repl, ok = rotate("ru-3", 2*time.Minute)
	if !ok {
		h.Fatal("RotateRefreshToken refused the token the undo gave back")
	}
	_, err = h.s.RevokeRefreshFamily(h.ctx, first.FamilyID, "test", h.at(3*time.Minute))
	h.must(err, "RevokeRefreshFamily")
	h.must(r.UndoRefreshRotation(h.ctx, first.ID, repl.ID), "UndoRefreshRotation of a revoked family")
	for _, hash := range []string{"ru-1", "ru-3"} {
		if got := h.getRefresh(hash); got.RevokedAt == nil {
			h.Errorf("undo after the family's revocation: token %s is no longer revoked", hash)
		}
	}
	if got := h.getRefresh("ru-1"); got.UsedAt == nil {
		h.Error("undo after the family's revocation marked the presented token unused")
	}
}

// testRotateCheckedRefusals: RotateRefreshToken refuses, writing nothing
// and leaving the session untouched, a token that differs from a usable
// one in any one thing it checks.
func testRotateCheckedRefusals(h *harness) {
	r := rotator(h)
	c := h.client("rcr-app")
	other := h.client("rcr-other")
	now := h.at(time.Minute)
	type stored struct {
		sess permiso.Session
		tok  permiso.RefreshToken
		user func(*permiso.User)
		rot  permiso.RefreshRotation
	}
	cases := []struct {
		name   string
		change func(*stored)
	}{
		{"usable", nil},
		{"unknown", func(s *stored) { s.rot.Hash = hashOf("rcr-unknown") }},
		{"expired", func(s *stored) { s.tok.ExpiresAt = now }},
		{"used", func(s *stored) { s.tok.UsedAt = ptr(h.now) }},
		{"revoked", func(s *stored) { s.tok.RevokedAt, s.tok.RevocationReason = ptr(h.now), ptr("logout") }},
		{"other client", func(s *stored) { s.rot.ClientID = &other.ID }},
		{"client token without a client", func(s *stored) { s.rot.ClientID = nil }},
		{"first-party token with a client", func(s *stored) { s.tok.ClientID, s.sess.ClientID = nil, nil }},
		{"issued before the client's cut-off", func(s *stored) { s.rot.IssuedSince = s.tok.IssuedAt.Add(time.Nanosecond) }},
		{"revoked session", func(s *stored) { s.sess.RevokedAt = ptr(h.now) }},
		{"expired session", func(s *stored) { s.sess.ExpiresAt = now }},
		{"session past its absolute lifetime", func(s *stored) { s.sess.CreatedAt = now.Add(-s.rot.SessionLifetime) }},
		{"inactive user", func(s *stored) { s.user = func(u *permiso.User) { u.IsActive = false } }},
		{"issued before the user's revoke-all", func(s *stored) {
			s.user = func(u *permiso.User) { u.TokensRevokedBefore = ptr(s.tok.IssuedAt.Add(time.Microsecond)) }
		}},
	}
	for i, tc := range cases {
		u := h.user(fmt.Sprintf("rcr%d", i))
		name := fmt.Sprintf("rcr-%d", i)
		s := stored{
			sess: permiso.Session{ID: uuid.New(), UserID: u.ID, ClientID: &c.ID, IPAddress: "192.0.2.1",
				CreatedAt: h.at(-time.Hour), LastActivity: h.at(-time.Hour), ExpiresAt: h.at(time.Hour)},
			rot: permiso.RefreshRotation{Hash: hashOf(name), Now: now, ClientID: &c.ID, IssuedSince: h.at(-time.Hour),
				SessionLifetime: 2 * time.Hour, Replacement: permiso.RefreshToken{ID: uuid.New(), TokenHash: hashOf(name + "-next"),
					ExpiresAt: h.at(time.Hour)}},
		}
		s.tok = permiso.RefreshToken{ID: uuid.New(), TokenHash: hashOf(name), UserID: u.ID, ClientID: &c.ID,
			SessionID: s.sess.ID, FamilyID: uuid.New(), Scopes: []string{"read:profile"},
			IssuedAt: h.at(-time.Hour), ExpiresAt: h.at(time.Hour)}
		if tc.change != nil {
			tc.change(&s)
		}
		_, _, err := h.s.CreateSessionWithToken(h.ctx, s.sess, s.tok)
		h.must(err, "CreateSessionWithToken (%s)", tc.name)
		if s.user != nil {
			_, err := h.s.UpdateUser(h.ctx, u.ID, func(x *permiso.User) error { s.user(x); return nil })
			h.must(err, "UpdateUser (%s)", tc.name)
		}
		_, _, ok, err := r.RotateRefreshToken(h.ctx, s.rot)
		h.must(err, "RotateRefreshToken (%s)", tc.name)
		_, rerr := h.s.GetRefreshTokenByHash(h.ctx, hashOf(name+"-next"))
		sess, serr := h.s.GetSession(h.ctx, s.sess.ID)
		h.must(serr, "GetSession (%s)", tc.name)
		if tc.change == nil {
			if !ok || rerr != nil {
				h.Fatalf("the usable token was not rotated: ok %v, replacement %v", ok, rerr)
			}
			continue
		}
		if ok {
			h.Errorf("RotateRefreshToken rotated a token: %s", tc.name)
		}
		h.wantErr(rerr, permiso.ErrNotFound, "replacement of a refused rotation (%s)", tc.name)
		eqTime(h, "session last activity after a refused rotation ("+tc.name+")", sess.LastActivity, s.sess.LastActivity)
		if t, err := h.s.GetRefreshTokenByHash(h.ctx, hashOf(name)); err == nil {
			eqTimePtr(h, "used_at after a refused rotation ("+tc.name+")", t.UsedAt, s.tok.UsedAt)
		}
	}
}

func testSigningKeys(h *harness) {
	k1 := permiso.SigningKey{ID: "rs-1", Algorithm: "RS256", PrivateKey: []byte{0x30, 0x82, 0, 1}, PublicKey: []byte{0x30, 0, 0xff},
		CreatedAt: h.at(-2 * time.Hour)}
	k2 := permiso.SigningKey{ID: "rs-2", Algorithm: "RS256", PrivateKey: []byte("priv-2"), PublicKey: []byte("pub-2"),
		CreatedAt: h.at(-time.Hour)}
	k3 := permiso.SigningKey{ID: "es-1", Algorithm: "ES256", PrivateKey: []byte("priv-3"), PublicKey: []byte("pub-3"),
		CreatedAt: h.at(-90 * time.Minute)}
	k4 := permiso.SigningKey{ID: "old", Algorithm: "EdDSA", PrivateKey: []byte("p"), PublicKey: []byte("q"),
		CreatedAt: h.at(-48 * time.Hour), RetiredAt: ptr(h.at(-47 * time.Hour)), ExpiresAt: ptr(h.at(-time.Hour))}
	for _, k := range []permiso.SigningKey{k1, k2, k3, k4} {
		_, err := h.s.CreateSigningKey(h.ctx, k)
		h.must(err, "CreateSigningKey(%s)", k.ID)
	}
	_, err := h.s.CreateSigningKey(h.ctx, k1)
	h.wantErr(err, permiso.ErrAlreadyExists, "CreateSigningKey with a taken kid")

	keys, err := h.s.ListSigningKeys(h.ctx, h.now)
	h.must(err, "ListSigningKeys")
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	eqStrings(h, "keys not expired, newest first", ids, []string{"rs-2", "es-1", "rs-1"})
	if len(keys) == 3 {
		got := keys[2]
		eq(h, "algorithm", got.Algorithm, "RS256")
		if !bytes.Equal(got.PrivateKey, k1.PrivateKey) || !bytes.Equal(got.PublicKey, k1.PublicKey) {
			h.Errorf("key bytes = %x / %x, want %x / %x", got.PrivateKey, got.PublicKey, k1.PrivateKey, k1.PublicKey)
		}
		eqTime(h, "created_at", got.CreatedAt, k1.CreatedAt)
		eqTimePtr(h, "retired_at", got.RetiredAt, nil)
		eqTimePtr(h, "expires_at", got.ExpiresAt, nil)
	}

	exp := h.at(24 * time.Hour)
	n, err := h.s.RetireSigningKeys(h.ctx, "RS256", "rs-2", h.now, exp)
	h.must(err, "RetireSigningKeys")
	eq(h, "keys retired", n, 1)
	n, err = h.s.RetireSigningKeys(h.ctx, "RS256", "rs-2", h.at(time.Minute), h.at(time.Hour))
	h.must(err, "RetireSigningKeys (again)")
	eq(h, "keys retired by a second call", n, 0)

	keys, err = h.s.ListSigningKeys(h.ctx, h.now)
	h.must(err, "ListSigningKeys")
	byID := map[string]permiso.SigningKey{}
	for _, k := range keys {
		byID[k.ID] = k
	}
	eq(h, "keys listed after retiring (retired keys still verify)", len(keys), 3)
	eqTimePtr(h, "rs-1 retired_at", byID["rs-1"].RetiredAt, &h.now)
	eqTimePtr(h, "rs-1 expires_at", byID["rs-1"].ExpiresAt, &exp)
	eqTimePtr(h, "rs-2 (kept) retired_at", byID["rs-2"].RetiredAt, nil)
	eqTimePtr(h, "es-1 (other algorithm) retired_at", byID["es-1"].RetiredAt, nil)

	keys, err = h.s.ListSigningKeys(h.ctx, exp.Add(time.Second))
	h.must(err, "ListSigningKeys after expiry")
	ids = ids[:0]
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	eqStrings(h, "keys after the retired key expired", ids, []string{"rs-2", "es-1"})
}

// isErr reports whether err matches target (for use off the test goroutine
// or where several outcomes are allowed).
func isErr(err, target error) bool { return err != nil && errors.Is(err, target) }
