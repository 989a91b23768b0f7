package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
)

// CountAuditEvents counts the events matching f, grouped as g says. Days
// are UTC calendar days.
func (db *DB) CountAuditEvents(ctx context.Context, f permiso.AuditFilter, g permiso.AuditGrouping) ([]permiso.AuditCount, error) {
	w := auditWhere(f)
	var cols []string
	if g.Day {
		cols = append(cols, "(occurred_at AT TIME ZONE 'UTC')::date")
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
	q += " FROM audit_events" + w.sql()
	if len(cols) > 0 {
		q += " GROUP BY " + strings.Join(cols, ", ") + " ORDER BY " + strings.Join(cols, ", ")
	}
	rows, err := db.q.Query(ctx, q, w.args...)
	if err != nil {
		return nil, mapErr(err, "audit events", opRead)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (permiso.AuditCount, error) {
		var c permiso.AuditCount
		var day time.Time
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
		err := r.Scan(dest...)
		if g.Day {
			c.Day = time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
		}
		return c, err
	})
	if err != nil {
		return nil, mapErr(err, "audit events", opRead)
	}
	return out, nil
}

// CountAuditActors counts the distinct actor ids of the events matching f.
func (db *DB) CountAuditActors(ctx context.Context, f permiso.AuditFilter) (int, error) {
	w := auditWhere(f)
	var n int
	if err := db.q.QueryRow(ctx, "SELECT count(DISTINCT actor_id) FROM audit_events"+w.sql(), w.args...).Scan(&n); err != nil {
		return 0, mapErr(err, "audit events", opRead)
	}
	return n, nil
}

// ClearExpiredLocks resets the lockout mirror of users whose lock ended at
// or before now.
func (db *DB) ClearExpiredLocks(ctx context.Context, now time.Time) (int, error) {
	tag, err := db.q.Exec(ctx, `UPDATE users SET locked_until = NULL, failed_login_attempts = 0
		WHERE locked_until IS NOT NULL AND locked_until <= $1`, ts(now))
	if err != nil {
		return 0, mapErr(err, "users", opWrite)
	}
	return int(tag.RowsAffected()), nil
}
