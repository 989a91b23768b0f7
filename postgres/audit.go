package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/permiso/permiso"
)

const auditColumns = `id, occurred_at, actor_type, actor_id, action, target_type, target_id,
	result, ip_address, user_agent, request_id, details`

// AppendAuditEvents writes a batch of events in one transaction (IDs are
// generated when zero, time-ordered; OccurredAt defaults to the current
// time; nil Details are stored as {}).
func (db *DB) AppendAuditEvents(ctx context.Context, events []permiso.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return db.inTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, e := range events {
			if e.ID == [16]byte{} {
				e.ID = newV7()
			}
			if e.OccurredAt.IsZero() {
				e.OccurredAt = time.Now()
			}
			details := e.Details
			if details == nil {
				details = map[string]any{}
			}
			b.Queue(`INSERT INTO audit_events (`+auditColumns+`)
				VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
				e.ID, ts(e.OccurredAt), e.ActorType, e.ActorID, e.Action, e.TargetType, e.TargetID,
				e.Result, e.IPAddress, e.UserAgent, e.RequestID, details)
		}
		return mapErr(tx.SendBatch(ctx, b).Close(), "audit event", opWrite)
	})
}

// ListAuditEvents returns one page of the events matching f, newest first
// (occurred_at desc, id desc), and the total number of matches. An Action
// ending in '.' matches every action with that prefix; Since is inclusive,
// Until exclusive.
func (db *DB) ListAuditEvents(ctx context.Context, f permiso.AuditFilter) ([]permiso.AuditEvent, int, error) {
	w := auditWhere(f)
	var total int
	if err := db.q.QueryRow(ctx, `SELECT count(*) FROM audit_events`+w.sql(), w.args...).Scan(&total); err != nil {
		return nil, 0, mapErr(err, "audit events", opRead)
	}
	lim, args := page(f.Offset, f.Limit, w.args)
	rows, err := db.q.Query(ctx, `SELECT `+auditColumns+` FROM audit_events`+w.sql()+
		` ORDER BY occurred_at DESC, id DESC`+lim, args...)
	if err != nil {
		return nil, 0, mapErr(err, "audit events", opRead)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (permiso.AuditEvent, error) {
		var e permiso.AuditEvent
		err := r.Scan(&e.ID, &e.OccurredAt, &e.ActorType, &e.ActorID, &e.Action, &e.TargetType,
			&e.TargetID, &e.Result, &e.IPAddress, &e.UserAgent, &e.RequestID, &e.Details)
		e.OccurredAt = utc(e.OccurredAt)
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		return e, err
	})
	if err != nil {
		return nil, 0, mapErr(err, "audit events", opRead)
	}
	return out, total, nil
}

// DeleteAuditEventsBefore prunes events that occurred before t.
func (db *DB) DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int, error) {
	tag, err := db.q.Exec(ctx, `DELETE FROM audit_events WHERE occurred_at < $1`, ts(t))
	if err != nil {
		return 0, mapErr(err, "audit events", opDelete)
	}
	return int(tag.RowsAffected()), nil
}

// auditWhere builds the WHERE clause of an AuditFilter; Offset and Limit
// are not used.
func auditWhere(f permiso.AuditFilter) where {
	var w where
	if f.Action != "" {
		if strings.HasSuffix(f.Action, ".") {
			w.add(`starts_with(action, ?)`, f.Action)
		} else {
			w.add(`action = ?`, f.Action)
		}
	}
	if len(f.Actions) > 0 {
		var exact, prefixes []string
		for _, a := range f.Actions {
			if strings.HasSuffix(a, ".") {
				prefixes = append(prefixes, a)
			} else {
				exact = append(exact, a)
			}
		}
		if exact == nil {
			exact = []string{}
		}
		if prefixes == nil {
			prefixes = []string{}
		}
		w.add(`(action = ANY(?) OR EXISTS (SELECT 1 FROM unnest(?::text[]) p WHERE starts_with(action, p)))`, exact, prefixes)
	}
	if f.ActorID != "" {
		w.add(`actor_id = ?`, f.ActorID)
	}
	if f.Subject != "" {
		w.add(`(actor_id = ? OR target_id = ?)`, f.Subject, f.Subject)
	}
	if f.Result != "" {
		w.add(`result = ?`, f.Result)
	}
	if f.Since != nil {
		w.add(`occurred_at >= ?`, ts(*f.Since))
	}
	if f.Until != nil {
		w.add(`occurred_at < ?`, ts(*f.Until))
	}
	return w
}
