package storetest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

var actionTokenTests = []test{
	{"ActionTokens/CreateAndConsume", testActionTokens},
	{"ActionTokens/DeleteExpired", testActionTokenDeleteExpired},
	{"ActionTokens/ConcurrentConsume", testActionTokenConcurrent},
	{"ActionTokens/Get", testActionTokenGet},
}

var auditTests = []test{
	{"Audit/AppendAndList", testAuditAppend},
	{"Audit/LargeBatch", testAuditLargeBatch},
	{"Audit/Pagination", testAuditPagination},
	{"Audit/Filters", testAuditFilters},
	{"Audit/DeleteBefore", testAuditDeleteBefore},
}

func (h *harness) actionToken(userID uuid.UUID, purpose, token string, exp time.Duration) permiso.ActionToken {
	h.Helper()
	t, err := h.s.CreateActionToken(h.ctx, permiso.ActionToken{
		UserID: userID, Purpose: purpose, TokenHash: hashOf(token), CreatedAt: h.now, ExpiresAt: h.at(exp),
	})
	h.must(err, "CreateActionToken(%s)", token)
	return t
}

// noActionToken checks that find (op, a lookup by purpose and hash at an
// instant) answers ErrNotFound for the password reset token live (valid for
// an hour from now) asked with the wrong purpose or at its expiry instant
// (expired exactly at now counts as expired), for the expired password
// reset token expired, and for an unknown token.
func (h *harness) noActionToken(op string, find func(ctx context.Context, purpose, hash string, now time.Time) (permiso.ActionToken, error), live, expired string) {
	h.Helper()
	for _, c := range []struct {
		purpose, token string
		at             time.Time
		why            string
	}{
		{permiso.PurposeEmailVerification, live, h.now, "with the wrong purpose"},
		{permiso.PurposePasswordReset, expired, h.now, "of an expired token"},
		{permiso.PurposePasswordReset, "unknown-" + live, h.now, "of an unknown token"},
		{permiso.PurposePasswordReset, live, h.at(time.Hour), "at its expiry instant"},
	} {
		_, err := find(h.ctx, c.purpose, hashOf(c.token), c.at)
		h.wantErr(err, permiso.ErrNotFound, "%s %s", op, c.why)
	}
}

func testActionTokens(h *harness) {
	u := h.user("abe")
	id := uuid.New()
	created, err := h.s.CreateActionToken(h.ctx, permiso.ActionToken{
		ID: id, UserID: u.ID, Purpose: permiso.PurposePasswordReset, TokenHash: hashOf("reset-1"),
		CreatedAt: h.now, ExpiresAt: h.at(time.Hour),
	})
	h.must(err, "CreateActionToken")
	eq(h, "created id", created.ID, id)
	gen := h.actionToken(u.ID, permiso.PurposeEmailVerification, "verify-1", time.Hour)
	if gen.ID == uuid.Nil {
		h.Error("CreateActionToken returned a zero id")
	}
	h.actionToken(u.ID, permiso.PurposePasswordReset, "reset-expired", -time.Second)

	_, err = h.s.CreateActionToken(h.ctx, permiso.ActionToken{
		UserID: u.ID, Purpose: permiso.PurposePasswordReset, TokenHash: hashOf("reset-1"),
		CreatedAt: h.now, ExpiresAt: h.at(time.Hour),
	})
	h.wantErr(err, permiso.ErrAlreadyExists, "CreateActionToken with a taken hash")
	_, err = h.s.CreateActionToken(h.ctx, permiso.ActionToken{
		UserID: uuid.New(), Purpose: permiso.PurposePasswordReset, TokenHash: hashOf("orphan"),
		CreatedAt: h.now, ExpiresAt: h.at(time.Hour),
	})
	h.wantErr(err, permiso.ErrNotFound, "CreateActionToken for an unknown user")

	h.noActionToken("ConsumeActionToken", h.s.ConsumeActionToken, "reset-1", "reset-expired")

	usedAt := h.at(time.Minute)
	got, err := h.s.ConsumeActionToken(h.ctx, permiso.PurposePasswordReset, hashOf("reset-1"), usedAt)
	h.must(err, "ConsumeActionToken")
	eq(h, "consumed id", got.ID, id)
	eq(h, "consumed user", got.UserID, u.ID)
	eq(h, "consumed purpose", got.Purpose, permiso.PurposePasswordReset)
	eq(h, "consumed hash", got.TokenHash, hashOf("reset-1"))
	eqTime(h, "consumed created_at", got.CreatedAt, h.now)
	eqTime(h, "consumed expires_at", got.ExpiresAt, h.at(time.Hour))
	eqTimePtr(h, "consumed used_at", got.UsedAt, &usedAt)
	_, err = h.s.ConsumeActionToken(h.ctx, permiso.PurposePasswordReset, hashOf("reset-1"), usedAt)
	h.wantErr(err, permiso.ErrNotFound, "ConsumeActionToken twice")

	v, err := h.s.ConsumeActionToken(h.ctx, permiso.PurposeEmailVerification, hashOf("verify-1"), h.now)
	h.must(err, "ConsumeActionToken(email_verification)")
	eq(h, "consumed verification id", v.ID, gen.ID)
}

func testActionTokenGet(h *harness) {
	u := h.user("gil")
	created := h.actionToken(u.ID, permiso.PurposePasswordReset, "peek", time.Hour)
	h.actionToken(u.ID, permiso.PurposePasswordReset, "peek-expired", -time.Second)

	got, err := h.s.GetActionToken(h.ctx, permiso.PurposePasswordReset, hashOf("peek"), h.now)
	h.must(err, "GetActionToken")
	eq(h, "got id", got.ID, created.ID)
	eq(h, "got user", got.UserID, u.ID)
	eqTime(h, "got expires_at", got.ExpiresAt, h.at(time.Hour))
	if got.UsedAt != nil {
		h.Errorf("GetActionToken: used_at %v, want nil", got.UsedAt)
	}
	// Getting does not consume: the token is still there, and still usable.
	_, err = h.s.GetActionToken(h.ctx, permiso.PurposePasswordReset, hashOf("peek"), h.now)
	h.must(err, "GetActionToken twice")

	h.noActionToken("GetActionToken", h.s.GetActionToken, "peek", "peek-expired")

	_, err = h.s.ConsumeActionToken(h.ctx, permiso.PurposePasswordReset, hashOf("peek"), h.now)
	h.must(err, "ConsumeActionToken after GetActionToken")
	_, err = h.s.GetActionToken(h.ctx, permiso.PurposePasswordReset, hashOf("peek"), h.now)
	h.wantErr(err, permiso.ErrNotFound, "GetActionToken of a used token")
}

func testActionTokenDeleteExpired(h *harness) {
	u := h.user("bea")
	h.actionToken(u.ID, permiso.PurposePasswordReset, "d-expired", -time.Minute)
	h.actionToken(u.ID, permiso.PurposePasswordReset, "d-used", time.Hour)
	h.actionToken(u.ID, permiso.PurposePasswordReset, "d-valid", time.Hour)
	_, err := h.s.ConsumeActionToken(h.ctx, permiso.PurposePasswordReset, hashOf("d-used"), h.now)
	h.must(err, "ConsumeActionToken")
	n, err := h.s.DeleteExpiredActionTokens(h.ctx, h.now)
	h.must(err, "DeleteExpiredActionTokens")
	eq(h, "expired or used action tokens deleted", n, 2)
	// The hashes are free again, and the valid token still works.
	h.actionToken(u.ID, permiso.PurposePasswordReset, "d-used", time.Hour)
	_, err = h.s.ConsumeActionToken(h.ctx, permiso.PurposePasswordReset, hashOf("d-valid"), h.now)
	h.must(err, "ConsumeActionToken(valid) after cleanup")
}

func testActionTokenConcurrent(h *harness) {
	u := h.user("cid")
	h.actionToken(u.ID, permiso.PurposePasswordReset, "race", time.Hour)
	exactlyOne(h, 20, permiso.ErrNotFound, "consumes", func(int) error {
		_, err := h.s.ConsumeActionToken(h.ctx, permiso.PurposePasswordReset, hashOf("race"), h.now)
		return err
	})
}

func testAuditAppend(h *harness) {
	id := uuid.New()
	ev := permiso.AuditEvent{
		ID: id, OccurredAt: h.now, ActorType: "user", ActorID: ptr("u-1"),
		Action: "login.success", TargetType: ptr("user"), TargetID: ptr("u-1"),
		Result: "success", IPAddress: ptr("192.0.2.5"), UserAgent: ptr("ua"),
		RequestID: ptr("req-1"),
		Details:   map[string]any{"method": "password", "attempt": 2, "mfa": false, "nested": map[string]any{"k": "v"}},
	}
	minimal := permiso.AuditEvent{OccurredAt: h.at(-time.Second), ActorType: "anonymous", Action: "login.failure", Result: "failure"}
	h.must(h.s.AppendAuditEvents(h.ctx, []permiso.AuditEvent{ev, minimal}), "AppendAuditEvents")
	h.must(h.s.AppendAuditEvents(h.ctx, nil), "AppendAuditEvents(nil)")

	evs, total, err := h.s.ListAuditEvents(h.ctx, permiso.AuditFilter{})
	h.must(err, "ListAuditEvents")
	eq(h, "total audit events", total, 2)
	if len(evs) != 2 {
		h.Fatalf("ListAuditEvents returned %d events, want 2", len(evs))
	}
	got := evs[0]
	eq(h, "newest event first", got.ID, id)
	eqTime(h, "occurred_at", got.OccurredAt, h.now)
	eq(h, "actor_type", got.ActorType, "user")
	eqPtr(h, "actor_id", got.ActorID, ptr("u-1"))
	eq(h, "action", got.Action, "login.success")
	eqPtr(h, "target_type", got.TargetType, ptr("user"))
	eqPtr(h, "target_id", got.TargetID, ptr("u-1"))
	eq(h, "result", got.Result, "success")
	eqPtr(h, "ip_address", got.IPAddress, ptr("192.0.2.5"))
	eqPtr(h, "user_agent", got.UserAgent, ptr("ua"))
	eqPtr(h, "request_id", got.RequestID, ptr("req-1"))
	eq(h, "details.method", fmt.Sprint(got.Details["method"]), "password")
	eq(h, "details.attempt", fmt.Sprint(got.Details["attempt"]), "2")
	eq(h, "details.mfa", fmt.Sprint(got.Details["mfa"]), "false")
	if nested, ok := got.Details["nested"].(map[string]any); !ok || nested["k"] != "v" {
		h.Errorf("details.nested = %#v, want map[k:v]", got.Details["nested"])
	}
	m := evs[1]
	if m.ID == uuid.Nil {
		h.Error("AppendAuditEvents did not generate an id")
	}
	eqPtr(h, "actor_id of a minimal event", m.ActorID, nil)
	eqPtr(h, "request_id of a minimal event", m.RequestID, nil)
	eq(h, "details of a minimal event", len(m.Details), 0)
}

// testAuditLargeBatch writes a batch as large as the audit writer's
// (audit.DefaultBatchSize is 256) and an odd-sized one, which the store
// may split into several statements (docs/benchmarks.md, "Client
// credentials: the audit insert"): every event is stored with its own
// values, and a batch with one event whose id is taken, last, is refused
// whole (ErrAlreadyExists, which the audit writer relies on) and stores
// nothing.
func testAuditLargeBatch(h *harness) {
	event := func(i int) permiso.AuditEvent {
		return permiso.AuditEvent{ID: uuid.New(), OccurredAt: h.at(time.Duration(i) * time.Millisecond),
			ActorType: "client", ActorID: ptr(fmt.Sprint("client-", i)), Action: "token.issue", Result: "success",
			IPAddress: ptr("192.0.2.1"), UserAgent: ptr("ua"), RequestID: ptr(fmt.Sprint("req-", i)),
			Details: map[string]any{"grant_type": "client_credentials", "i": i}}
	}
	var all []permiso.AuditEvent
	for _, n := range []int{256, 151} {
		batch := make([]permiso.AuditEvent, n)
		for i := range batch {
			batch[i] = event(len(all) + i)
		}
		h.must(h.s.AppendAuditEvents(h.ctx, batch), "AppendAuditEvents of %d events", n)
		all = append(all, batch...)
	}
	refused := []permiso.AuditEvent{event(len(all)), event(len(all) + 1), all[7]}
	refused[2].Action = "token.issue.again"
	err := h.s.AppendAuditEvents(h.ctx, refused)
	h.wantErr(err, permiso.ErrAlreadyExists, "AppendAuditEvents with a taken id last")

	got, total, err := h.s.ListAuditEvents(h.ctx, permiso.AuditFilter{Limit: len(all) + 10})
	h.must(err, "ListAuditEvents")
	eq(h, "total audit events", total, len(all))
	byID := make(map[uuid.UUID]permiso.AuditEvent, len(got))
	for _, e := range got {
		byID[e.ID] = e
	}
	for i, want := range all {
		e, ok := byID[want.ID]
		if !ok {
			h.Fatalf("event %d (%s) not stored", i, want.ID)
		}
		eqTime(h, "occurred_at", e.OccurredAt, want.OccurredAt)
		eqPtr(h, "actor_id", e.ActorID, want.ActorID)
		eq(h, "action", e.Action, want.Action)
		eqPtr(h, "request_id", e.RequestID, want.RequestID)
		eq(h, "details.i", fmt.Sprint(e.Details["i"]), fmt.Sprint(i))
	}
}

func testAuditPagination(h *harness) {
	const n = 25
	var all []permiso.AuditEvent
	for i := range n {
		all = append(all, permiso.AuditEvent{
			ID: uuid.New(),
			// Groups of three share a time, so the id breaks ties.
			OccurredAt: h.at(time.Duration(i/3) * time.Second),
			ActorType:  "system", Action: "test.page", Result: "success",
		})
	}
	// Written in two batches, out of order.
	h.must(h.s.AppendAuditEvents(h.ctx, all[10:]), "AppendAuditEvents")
	h.must(h.s.AppendAuditEvents(h.ctx, all[:10]), "AppendAuditEvents")
	want := slices.Clone(all)
	slices.SortFunc(want, func(a, b permiso.AuditEvent) int {
		if c := b.OccurredAt.Compare(a.OccurredAt); c != 0 {
			return c
		}
		return slices.Compare(b.ID[:], a.ID[:])
	})
	pageThrough(h, "events", "occurred_at desc, id desc", want, n,
		func(off int) ([]permiso.AuditEvent, int, error) {
			return h.s.ListAuditEvents(h.ctx, permiso.AuditFilter{Offset: off, Limit: 10})
		},
		func(e permiso.AuditEvent) uuid.UUID { return e.ID },
		func(e permiso.AuditEvent) string { return fmt.Sprintf("%s at %v", e.ID, e.OccurredAt) })
}

func testAuditFilters(h *harness) {
	ev := func(action, actor, result string, d time.Duration) permiso.AuditEvent {
		return permiso.AuditEvent{OccurredAt: h.at(d), ActorType: "user", ActorID: ptr(actor), Action: action, Result: result}
	}
	h.must(h.s.AppendAuditEvents(h.ctx, []permiso.AuditEvent{
		ev("login.success", "u1", "success", -50*time.Minute),
		ev("login.failure", "u1", "failure", -40*time.Minute),
		ev("login.failure", "u2", "failure", -30*time.Minute),
		ev("logout", "u1", "success", -20*time.Minute),
		ev("loginx.other", "u2", "success", -10*time.Minute),
		ev("token.reuse_detected", "u2", "failure", -5*time.Minute),
		ev("login", "u3", "success", -2*time.Hour),
	}), "AppendAuditEvents")
	actions := func(evs []permiso.AuditEvent) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.Action+"/"+*e.ActorID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    permiso.AuditFilter
		want []string
	}{
		{"prefix login.", permiso.AuditFilter{Action: "login."},
			[]string{"login.failure/u2", "login.failure/u1", "login.success/u1"}},
		{"exact action", permiso.AuditFilter{Action: "login.failure"}, []string{"login.failure/u2", "login.failure/u1"}},
		{"exact action without dot", permiso.AuditFilter{Action: "login"}, []string{"login/u3"}},
		{"actor", permiso.AuditFilter{ActorID: "u2"}, []string{"token.reuse_detected/u2", "loginx.other/u2", "login.failure/u2"}},
		{"result", permiso.AuditFilter{Result: "failure"},
			[]string{"token.reuse_detected/u2", "login.failure/u2", "login.failure/u1"}},
		{"window", permiso.AuditFilter{Since: ptr(h.at(-45 * time.Minute)), Until: ptr(h.at(-15 * time.Minute))},
			[]string{"logout/u1", "login.failure/u2", "login.failure/u1"}},
		{"since only", permiso.AuditFilter{Since: ptr(h.at(-7 * time.Minute))}, []string{"token.reuse_detected/u2"}},
		{"until only", permiso.AuditFilter{Until: ptr(h.at(-time.Hour))}, []string{"login/u3"}},
		{"prefix and window and actor", permiso.AuditFilter{Action: "login.", ActorID: "u1",
			Since: ptr(h.at(-45 * time.Minute)), Until: ptr(h.now)}, []string{"login.failure/u1"}},
		{"prefix with no match", permiso.AuditFilter{Action: "admin."}, nil},
	} {
		evs, total, err := h.s.ListAuditEvents(h.ctx, tc.f)
		h.must(err, "ListAuditEvents(%s)", tc.name)
		eqStrings(h, "ListAuditEvents("+tc.name+")", actions(evs), tc.want)
		eq(h, "total of ListAuditEvents("+tc.name+")", total, len(tc.want))
	}
	evs, total, err := h.s.ListAuditEvents(h.ctx, permiso.AuditFilter{Action: "login.", Offset: 1, Limit: 1})
	h.must(err, "ListAuditEvents(prefix, page)")
	eq(h, "total of a filtered page", total, 3)
	eqStrings(h, "filtered page", actions(evs), []string{"login.failure/u1"})
}

func testAuditDeleteBefore(h *harness) {
	var evs []permiso.AuditEvent
	for _, d := range []time.Duration{-3 * time.Hour, -2 * time.Hour, -time.Minute, 0} {
		evs = append(evs, permiso.AuditEvent{OccurredAt: h.at(d), ActorType: "system", Action: "test.prune", Result: "success"})
	}
	h.must(h.s.AppendAuditEvents(h.ctx, evs), "AppendAuditEvents")
	n, err := h.s.DeleteAuditEventsBefore(h.ctx, h.at(-time.Hour))
	h.must(err, "DeleteAuditEventsBefore")
	eq(h, "audit events pruned", n, 2)
	left, total, err := h.s.ListAuditEvents(h.ctx, permiso.AuditFilter{})
	h.must(err, "ListAuditEvents")
	eq(h, "audit events left", total, 2)
	for _, e := range left {
		if e.OccurredAt.Before(h.at(-time.Hour)) {
			h.Errorf("event at %v survived pruning", e.OccurredAt)
		}
	}
}
