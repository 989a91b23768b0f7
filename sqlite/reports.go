package sqlite

import (
	"context"
	"strings"
	"time"

	"github.com/permiso/permiso"
)

// CountAuditEvents counts the events matching f, grouped as g says. Days
// are the first ten characters of the stored UTC timestamp.
func (db *DB) CountAuditEvents(ctx context.Context, f permiso.AuditFilter, g permiso.AuditGrouping) ([]permiso.AuditCount, error) {
	cond, args := auditWhere(f)
	var cols []string
	if g.Day {
		cols = append(cols, "substr(occurred_at, 1, 10)")
	}
	if g.Action {
		cols = append(cols, "action")
	}
	if g.Result {
		cols = append(cols, "result")
	}
	if g.Actor {
		cols = append(cols, "actor_type", "coalesce(actor_id, '')")
	}
	q := "SELECT count(*)"
	if len(cols) > 0 {
		q += ", " + strings.Join(cols, ", ")
	}
	q += " FROM audit_events" + cond
	if len(cols) > 0 {
		q += " GROUP BY " + strings.Join(cols, ", ") + " ORDER BY " + strings.Join(cols, ", ")
	}
	rows, err := db.r().query(ctx, q, args...)
	if err != nil {
		return nil, errMap{op: "count audit events"}.wrap(err)
	}
	defer rows.Close()
	var out []permiso.AuditCount
	for rows.Next() {
		var c permiso.AuditCount
		var day string
		dest := []any{&c.Count}
		if g.Day {
			dest = append(dest, &day)
		}
		if g.Action {
			dest = append(dest, &c.Action)
		}
		if g.Result {
			dest = append(dest, &c.Result)
		}
		if g.Actor {
			dest = append(dest, &c.ActorType, &c.ActorID)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, errMap{op: "count audit events"}.wrap(err)
		}
		if g.Day {
			d, err := time.Parse(time.DateOnly, day)
			if err != nil {
				return nil, errMap{op: "count audit events"}.wrap(err)
			}
			c.Day = d.UTC()
		}
		out = append(out, c)
	}
	return out, errMap{op: "count audit events"}.wrap(rows.Err())
}

// CountAuditActors counts the distinct actor ids of the events matching f.
func (db *DB) CountAuditActors(ctx context.Context, f permiso.AuditFilter) (int, error) {
	cond, args := auditWhere(f)
	var n int
	err := db.r().queryRow(ctx, "SELECT count(DISTINCT actor_id) FROM audit_events"+cond, args...).Scan(&n)
	return n, errMap{op: "count audit actors"}.wrap(err)
}

// ClearExpiredLocks resets the lockout mirror of users whose lock ended at
// or before now.
func (db *DB) ClearExpiredLocks(ctx context.Context, now time.Time) (int, error) {
	n, err := db.w().execN(ctx, `UPDATE users SET locked_until = NULL, failed_login_attempts = 0
		WHERE locked_until IS NOT NULL AND locked_until <= ?`, ts(now))
	return n, errMap{op: "clear expired locks"}.wrap(err)
}
