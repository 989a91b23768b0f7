package storetest

import (
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

var mfaTests = []test{
	{"MFA/PendingReplaced", testMFAPendingReplaced},
	{"MFA/ConfirmOnce", testMFAConfirmOnce},
	{"MFA/RecoveryCodes", testMFARecoveryCodes},
	{"MFA/Delete", testMFADelete},
	{"MFA/UnknownUser", testMFAUnknownUser},
	{"MFA/WalkAndReseal", testMFAWalkAndReseal},
	{"RoundTrip/MFAFactor", testRoundTripMFAFactor},
}

// testRoundTripMFAFactor: every field of a factor, filled by reflection,
// is stored and read back (ConfirmedAt by ConfirmMFAFactor).
func testRoundTripMFAFactor(h *harness) {
	u := h.user("mfa-rt")
	var f permiso.MFAFactor
	fillAll(h, &f, "created")
	f.UserID = u.ID
	confirmed := *f.ConfirmedAt
	got, err := h.s.PutPendingMFAFactor(h.ctx, f)
	h.must(err, "PutPendingMFAFactor")
	f.ConfirmedAt = nil
	diff(h, "pending factor", got, f)
	got, err = h.s.ConfirmMFAFactor(h.ctx, u.ID, f.Kind, confirmed, []string{hashOf("a")})
	h.must(err, "ConfirmMFAFactor")
	f.ConfirmedAt = &confirmed
	diff(h, "confirmed factor", got, f)
	read, err := h.s.GetMFAFactor(h.ctx, u.ID, f.Kind)
	h.must(err, "GetMFAFactor")
	diff(h, "confirmed factor read back", read, f)
}

// testMFAPendingReplaced: a second enrollment replaces a pending one; once
// confirmed, a new enrollment is ErrConflict and changes nothing.
func testMFAPendingReplaced(h *harness) {
	u := h.user("mfa-pending")
	_, err := h.s.PutPendingMFAFactor(h.ctx, permiso.MFAFactor{UserID: u.ID, Kind: "totp", Secret: "s1", CreatedAt: h.now})
	h.must(err, "first PutPendingMFAFactor")
	f, err := h.s.PutPendingMFAFactor(h.ctx, permiso.MFAFactor{UserID: u.ID, Kind: "totp", Secret: "s2", CreatedAt: h.at(time.Minute)})
	h.must(err, "second PutPendingMFAFactor")
	eq(h, "replaced secret", f.Secret, "s2")
	eqTime(h, "replaced CreatedAt", f.CreatedAt, h.at(time.Minute))
	eq(h, "pending", f.Confirmed(), false)
	_, err = h.s.ConfirmMFAFactor(h.ctx, u.ID, "totp", h.at(2*time.Minute), nil)
	h.must(err, "ConfirmMFAFactor")
	_, err = h.s.PutPendingMFAFactor(h.ctx, permiso.MFAFactor{UserID: u.ID, Kind: "totp", Secret: "s3"})
	h.wantErr(err, permiso.ErrConflict, "PutPendingMFAFactor over a confirmed factor")
	got, err := h.s.GetMFAFactor(h.ctx, u.ID, "totp")
	h.must(err, "GetMFAFactor")
	eq(h, "secret after refused enrollment", got.Secret, "s2")
	eq(h, "still confirmed", got.Confirmed(), true)
	list, err := h.s.ListMFAFactors(h.ctx, u.ID)
	h.must(err, "ListMFAFactors")
	eq(h, "factors listed", len(list), 1)
	n, err := h.s.CountConfirmedMFAFactors(h.ctx)
	h.must(err, "CountConfirmedMFAFactors")
	eq(h, "confirmed factors", n, 1)
}

// testMFAConfirmOnce: of concurrent confirmations exactly one succeeds,
// the others are ErrConflict; confirming nothing is ErrNotFound.
func testMFAConfirmOnce(h *harness) {
	u := h.user("mfa-confirm")
	_, err := h.s.ConfirmMFAFactor(h.ctx, u.ID, "totp", h.now, nil)
	h.wantErr(err, permiso.ErrNotFound, "ConfirmMFAFactor without a factor")
	_, err = h.s.PutPendingMFAFactor(h.ctx, permiso.MFAFactor{UserID: u.ID, Kind: "totp", Secret: "s"})
	h.must(err, "PutPendingMFAFactor")
	exactlyOne(h, 6, permiso.ErrConflict, "ConfirmMFAFactor", func(i int) error {
		_, err := h.s.ConfirmMFAFactor(h.ctx, u.ID, "totp", h.now, []string{hashOf(string(rune('a' + i)))})
		return err
	})
	left, err := h.s.CountRecoveryCodes(h.ctx, u.ID)
	h.must(err, "CountRecoveryCodes")
	eq(h, "recovery codes of the one confirmation", left, 1)
}

// testMFARecoveryCodes: each code is used once; a new set makes the old
// one stop working; concurrent uses of one code: exactly one succeeds.
func testMFARecoveryCodes(h *harness) {
	u := h.user("mfa-codes")
	other := h.user("mfa-codes-other")
	_, err := h.s.PutPendingMFAFactor(h.ctx, permiso.MFAFactor{UserID: u.ID, Kind: "totp", Secret: "s"})
	h.must(err, "PutPendingMFAFactor")
	_, err = h.s.ConfirmMFAFactor(h.ctx, u.ID, "totp", h.now, []string{hashOf("a"), hashOf("b"), hashOf("c")})
	h.must(err, "ConfirmMFAFactor")
	h.wantErr(h.s.UseRecoveryCode(h.ctx, other.ID, hashOf("a"), h.now), permiso.ErrNotFound, "another user's code")
	for _, c := range []struct {
		user uuid.UUID
		code string
		want bool
	}{{u.ID, "a", true}, {other.ID, "a", false}, {u.ID, "zz", false}} {
		usable, err := h.s.RecoveryCodeUsable(h.ctx, c.user, hashOf(c.code))
		h.must(err, "RecoveryCodeUsable")
		eq(h, "RecoveryCodeUsable "+c.code, usable, c.want)
	}
	h.must(h.s.UseRecoveryCode(h.ctx, u.ID, hashOf("a"), h.now), "UseRecoveryCode a")
	usable, err := h.s.RecoveryCodeUsable(h.ctx, u.ID, hashOf("a"))
	h.must(err, "RecoveryCodeUsable after use")
	eq(h, "RecoveryCodeUsable a after use", usable, false)
	h.wantErr(h.s.UseRecoveryCode(h.ctx, u.ID, hashOf("a"), h.now), permiso.ErrNotFound, "UseRecoveryCode a again")
	h.wantErr(h.s.UseRecoveryCode(h.ctx, u.ID, hashOf("zz"), h.now), permiso.ErrNotFound, "unknown code")
	left, err := h.s.CountRecoveryCodes(h.ctx, u.ID)
	h.must(err, "CountRecoveryCodes")
	eq(h, "codes left", left, 2)

	exactlyOne(h, 6, permiso.ErrNotFound, "UseRecoveryCode", func(int) error {
		return h.s.UseRecoveryCode(h.ctx, u.ID, hashOf("b"), h.now)
	})

	h.must(h.s.ReplaceRecoveryCodes(h.ctx, u.ID, []string{hashOf("d"), hashOf("e")}, h.now), "ReplaceRecoveryCodes")
	h.wantErr(h.s.UseRecoveryCode(h.ctx, u.ID, hashOf("c"), h.now), permiso.ErrNotFound, "code of the old set")
	h.must(h.s.UseRecoveryCode(h.ctx, u.ID, hashOf("d"), h.now), "code of the new set")
	left, err = h.s.CountRecoveryCodes(h.ctx, u.ID)
	h.must(err, "CountRecoveryCodes after replace")
	eq(h, "codes left after replace", left, 1)
}

// testMFADelete: deleting the confirmed factor removes the codes;
// DeleteUserMFA removes everything; deleting the user cascades.
func testMFADelete(h *harness) {
	u := h.user("mfa-del")
	_, err := h.s.PutPendingMFAFactor(h.ctx, permiso.MFAFactor{UserID: u.ID, Kind: "totp", Secret: "s"})
	h.must(err, "PutPendingMFAFactor")
	_, err = h.s.ConfirmMFAFactor(h.ctx, u.ID, "totp", h.now, []string{hashOf("a")})
	h.must(err, "ConfirmMFAFactor")
	h.must(h.s.DeleteMFAFactor(h.ctx, u.ID, "totp"), "DeleteMFAFactor")
	h.wantErr(h.s.DeleteMFAFactor(h.ctx, u.ID, "totp"), permiso.ErrNotFound, "DeleteMFAFactor again")
	_, err = h.s.GetMFAFactor(h.ctx, u.ID, "totp")
	h.wantErr(err, permiso.ErrNotFound, "GetMFAFactor after delete")
	left, err := h.s.CountRecoveryCodes(h.ctx, u.ID)
	h.must(err, "CountRecoveryCodes")
	eq(h, "codes left after the last factor went", left, 0)

	_, err = h.s.PutPendingMFAFactor(h.ctx, permiso.MFAFactor{UserID: u.ID, Kind: "totp", Secret: "s"})
	h.must(err, "PutPendingMFAFactor again")
	_, err = h.s.ConfirmMFAFactor(h.ctx, u.ID, "totp", h.now, []string{hashOf("b")})
	h.must(err, "ConfirmMFAFactor again")
	n, err := h.s.DeleteUserMFA(h.ctx, u.ID)
	h.must(err, "DeleteUserMFA")
	eq(h, "factors reset", n, 1)
	h.wantErr(h.s.UseRecoveryCode(h.ctx, u.ID, hashOf("b"), h.now), permiso.ErrNotFound, "code after reset")
	n, err = h.s.DeleteUserMFA(h.ctx, u.ID)
	h.must(err, "DeleteUserMFA with nothing")
	eq(h, "factors reset the second time", n, 0)

	_, err = h.s.PutPendingMFAFactor(h.ctx, permiso.MFAFactor{UserID: u.ID, Kind: "totp", Secret: "s"})
	h.must(err, "PutPendingMFAFactor before the user goes")
	h.must(h.s.DeleteUser(h.ctx, u.ID), "DeleteUser")
	list, err := h.s.ListMFAFactors(h.ctx, u.ID)
	h.must(err, "ListMFAFactors of a deleted user")
	eq(h, "factors of a deleted user", len(list), 0)
}

// testMFAUnknownUser: an enrollment for no user is ErrNotFound.
func testMFAUnknownUser(h *harness) {
	_, err := h.s.PutPendingMFAFactor(h.ctx, permiso.MFAFactor{UserID: uuid.New(), Kind: "totp", Secret: "s"})
	h.wantErr(err, permiso.ErrNotFound, "PutPendingMFAFactor for an unknown user")
	_, err = h.s.GetMFAFactor(h.ctx, uuid.New(), "totp")
	h.wantErr(err, permiso.ErrNotFound, "GetMFAFactor of an unknown user")
	h.wantErr(h.s.ReplaceRecoveryCodes(h.ctx, uuid.New(), []string{hashOf("a")}, h.now), permiso.ErrNotFound, "ReplaceRecoveryCodes for an unknown user")
}

// testMFAWalkAndReseal: ListMFAFactorsAfter visits every factor once, in
// (user id, kind) order, page by page; ReplaceMFASecret swaps a secret
// only while it is the expected one.
func testMFAWalkAndReseal(h *harness) {
	want := map[uuid.UUID]bool{}
	for i := range 5 {
		u := h.user("mfa-walk" + string(rune('a'+i)))
		_, err := h.s.PutPendingMFAFactor(h.ctx, permiso.MFAFactor{UserID: u.ID, Kind: "totp", Secret: "old"})
		h.must(err, "PutPendingMFAFactor")
		want[u.ID] = true
	}
	var after uuid.UUID
	var afterKind string
	seen := 0
	for {
		page, err := h.s.ListMFAFactorsAfter(h.ctx, after, afterKind, 2)
		h.must(err, "ListMFAFactorsAfter")
		if len(page) == 0 {
			break
		}
		for _, f := range page {
			if !want[f.UserID] {
				h.Fatalf("factor of %s visited twice or unknown", f.UserID)
			}
			delete(want, f.UserID)
			seen++
			h.must(h.s.ReplaceMFASecret(h.ctx, f.UserID, f.Kind, "old", "new"), "ReplaceMFASecret")
			h.wantErr(h.s.ReplaceMFASecret(h.ctx, f.UserID, f.Kind, "old", "newer"), permiso.ErrConflict, "ReplaceMFASecret of a changed secret")
			got, err := h.s.GetMFAFactor(h.ctx, f.UserID, f.Kind)
			h.must(err, "GetMFAFactor")
			eq(h, "re-sealed secret", got.Secret, "new")
		}
		last := page[len(page)-1]
		after, afterKind = last.UserID, last.Kind
	}
	eq(h, "factors visited", seen, 5)
	h.wantErr(h.s.ReplaceMFASecret(h.ctx, uuid.New(), "totp", "a", "b"), permiso.ErrNotFound, "ReplaceMFASecret of no factor")
}
