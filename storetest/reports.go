package storetest

import (
	"fmt"
	"time"

	"github.com/permiso/permiso"
)

var reportTests = []test{
	{"Reports/AuditFilterSetAndSubject", testAuditActionSetSubject},
	{"Reports/CountAuditEvents", testCountAuditEvents},
	{"Reports/CountAuditActors", testCountAuditActors},
	{"Reports/ClearExpiredLocks", testClearExpiredLocks},
}

func testAuditActionSetSubject(h *harness) {
	ev := func(action, actor, target string) permiso.AuditEvent {
		e := permiso.AuditEvent{OccurredAt: h.now, ActorType: "user", Action: action, Result: "success"}
		if actor != "" {
			e.ActorID = ptr(actor)
		}
		if target != "" {
			e.TargetID = ptr(target)
		}
		return e
	}
	h.must(h.s.AppendAuditEvents(h.ctx, []permiso.AuditEvent{
		ev("login.failure", "", "bob"),
		ev("login.success", "u1", "u1"),
		ev("client.auth_failure", "", "c1"),
		ev("token.reuse_detected", "u2", "s1"),
		ev("user.update", "admin", "u1"),
	}), "AppendAuditEvents")
	for _, tc := range []struct {
		name string
		f    permiso.AuditFilter
		want int
	}{
		{"set of exact and prefix", permiso.AuditFilter{Actions: []string{"token.reuse_detected", "login."}}, 3},
		{"set of prefixes", permiso.AuditFilter{Actions: []string{"client.", "user."}}, 2},
		{"set and action", permiso.AuditFilter{Actions: []string{"login."}, Action: "login.failure"}, 1},
		{"subject as actor or target", permiso.AuditFilter{Subject: "u1"}, 2},
		{"subject as target only", permiso.AuditFilter{Subject: "bob"}, 1},
		{"subject and set", permiso.AuditFilter{Subject: "u1", Actions: []string{"user."}}, 1},
	} {
		_, total, err := h.s.ListAuditEvents(h.ctx, tc.f)
		h.must(err, "ListAuditEvents(%s)", tc.name)
		eq(h, "total of ListAuditEvents("+tc.name+")", total, tc.want)
		counts, err := h.s.CountAuditEvents(h.ctx, tc.f, permiso.AuditGrouping{})
		h.must(err, "CountAuditEvents(%s)", tc.name)
		if len(counts) != 1 {
			h.Fatalf("CountAuditEvents(%s) without grouping: %d rows, want 1", tc.name, len(counts))
		}
		eq(h, "CountAuditEvents("+tc.name+")", counts[0].Count, tc.want)
	}
}

func testCountAuditEvents(h *harness) {
	day := time.Date(h.now.Year(), h.now.Month(), h.now.Day(), 0, 0, 0, 0, time.UTC)
	prev := day.AddDate(0, 0, -1)
	ev := func(at time.Time, action, result, actor string) permiso.AuditEvent {
		return permiso.AuditEvent{OccurredAt: at, ActorType: "user", ActorID: ptr(actor), Action: action, Result: result}
	}
	h.must(h.s.AppendAuditEvents(h.ctx, []permiso.AuditEvent{
		ev(prev.Add(time.Hour), "login.failure", "failure", "a"),
		ev(prev.Add(23*time.Hour+59*time.Minute), "login.failure", "failure", "a"),
		ev(day, "login.failure", "failure", "b"), // midnight belongs to the new day
		ev(day.Add(time.Minute), "login.success", "success", "b"),
		ev(day.Add(2*time.Minute), "login.success", "success", "b"),
		ev(day.Add(3*time.Minute), "token.issue", "success", "c"),
	}), "AppendAuditEvents")

	got, err := h.s.CountAuditEvents(h.ctx, permiso.AuditFilter{Action: "login."}, permiso.AuditGrouping{Day: true, Action: true, Result: true})
	h.must(err, "CountAuditEvents by day, action, result")
	var rows []string
	for _, c := range got {
		if c.Day.Location() != time.UTC || c.Day.Hour() != 0 || c.Day.Minute() != 0 {
			h.Errorf("day %v is not midnight UTC", c.Day)
		}
		rows = append(rows, fmt.Sprintf("%s %s %s %d", c.Day.Format(time.DateOnly), c.Action, c.Result, c.Count))
	}
	eqStrings(h, "CountAuditEvents rows", rows, []string{
		prev.Format(time.DateOnly) + " login.failure failure 2",
		day.Format(time.DateOnly) + " login.failure failure 1",
		day.Format(time.DateOnly) + " login.success success 2",
	})

	got, err = h.s.CountAuditEvents(h.ctx, permiso.AuditFilter{Since: &day}, permiso.AuditGrouping{Actor: true})
	h.must(err, "CountAuditEvents by actor")
	rows = nil
	for _, c := range got {
		rows = append(rows, fmt.Sprintf("%s/%s %d", c.ActorType, c.ActorID, c.Count))
	}
	eqStrings(h, "CountAuditEvents by actor", rows, []string{"user/b 3", "user/c 1"})

	got, err = h.s.CountAuditEvents(h.ctx, permiso.AuditFilter{Action: "nothing."}, permiso.AuditGrouping{Day: true})
	h.must(err, "CountAuditEvents with no match")
	if len(got) != 0 {
		h.Errorf("CountAuditEvents grouped with no match: %v, want no rows", got)
	}
}

func testCountAuditActors(h *harness) {
	ev := func(action, actor string) permiso.AuditEvent {
		e := permiso.AuditEvent{OccurredAt: h.now, ActorType: "user", Action: action, Result: "success"}
		if actor != "" {
			e.ActorID = ptr(actor)
		}
		return e
	}
	h.must(h.s.AppendAuditEvents(h.ctx, []permiso.AuditEvent{
		ev("login.success", "a"), ev("login.success", "a"), ev("login.success", "b"),
		ev("token.refresh", "c"), ev("login.failure", ""),
	}), "AppendAuditEvents")
	n, err := h.s.CountAuditActors(h.ctx, permiso.AuditFilter{Actions: []string{"login.success", "token.refresh"}})
	h.must(err, "CountAuditActors")
	eq(h, "distinct actors", n, 3)
	n, err = h.s.CountAuditActors(h.ctx, permiso.AuditFilter{Action: "login.failure"})
	h.must(err, "CountAuditActors of anonymous events")
	eq(h, "distinct actors of anonymous events", n, 0)
}

func testClearExpiredLocks(h *harness) {
	lock := func(name string, until *time.Time) permiso.User {
		u := h.user(name)
		u, err := h.s.UpdateUser(h.ctx, u.ID, func(x *permiso.User) error {
			x.LockedUntil = until
			x.FailedLoginAttempts = 5
			return nil
		})
		h.must(err, "lock %s", name)
		return u
	}
	expired := lock("expired", ptr(h.at(-time.Minute)))
	exact := lock("exact", ptr(h.now))
	locked := lock("locked", ptr(h.at(time.Hour)))
	never := lock("never", nil)
	n, err := h.s.ClearExpiredLocks(h.ctx, h.now)
	h.must(err, "ClearExpiredLocks")
	eq(h, "locks cleared", n, 2)
	for _, tc := range []struct {
		u        permiso.User
		locked   bool
		failures int
	}{{expired, false, 0}, {exact, false, 0}, {locked, true, 5}, {never, false, 5}} {
		u, err := h.s.GetUser(h.ctx, tc.u.ID)
		h.must(err, "GetUser(%s)", tc.u.Username)
		eq(h, tc.u.Username+" locked", u.LockedUntil != nil, tc.locked)
		eq(h, tc.u.Username+" failed attempts", u.FailedLoginAttempts, tc.failures)
	}
	n, err = h.s.ClearExpiredLocks(h.ctx, h.now)
	h.must(err, "ClearExpiredLocks again")
	eq(h, "locks cleared again", n, 0)
}
