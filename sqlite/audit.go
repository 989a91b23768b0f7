package sqlite

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// AppendAuditEvents writes the batch in one transaction. IDs are generated
// when zero and OccurredAt defaults to now.
func (db *DB) AppendAuditEvents(ctx context.Context, events []permiso.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	return db.inTx(ctx, func(c conn) error {
		for _, e := range events {
			if e.ID == uuid.Nil {
				e.ID = newID()
			}
			details := "{}"
			if len(e.Details) > 0 {
				b, err := json.Marshal(e.Details)
				if err != nil {
					return permiso.Wrap(permiso.EINVALID, "Audit details are not valid JSON", err)
				}
				details = string(b)
			}
			if _, err := c.exec(ctx, `INSERT INTO audit_events (id, occurred_at, actor_type,
				actor_id, action, target_type, target_id, result, ip_address, user_agent,
				request_id, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				e.ID, ts(orNow(e.OccurredAt)), e.ActorType, e.ActorID, e.Action,
				e.TargetType, e.TargetID, e.Result, e.IPAddress, e.UserAgent,
				e.RequestID, details); err != nil {
				return errMap{op: "append audit events", exists: "Audit event already exists"}.wrap(err)
			}
		}
		return nil
	})
}

// ListAuditEvents returns one page of the events matching f, newest first
// (occurred_at desc, id desc), and the number of all matching events. An
// Action ending in '.' matches every action with that prefix; Since is
// inclusive and Until exclusive.
func (db *DB) ListAuditEvents(ctx context.Context, f permiso.AuditFilter) ([]permiso.AuditEvent, int, error) {
	cond, args := auditWhere(f)
	var out []permiso.AuditEvent
	var total int
	err := db.readTx(ctx, func(c conn) error {
		if err := c.queryRow(ctx, "SELECT count(*) FROM audit_events"+cond, args...).Scan(&total); err != nil {
			return errMap{op: "count audit events"}.wrap(err)
		}
		q, qargs := page(`SELECT id, occurred_at, actor_type, actor_id, action, target_type,
			target_id, result, ip_address, user_agent, request_id, details
			FROM audit_events`+cond+" ORDER BY occurred_at DESC, id DESC", args, f.Offset, f.Limit)
		rows, err := c.query(ctx, q, qargs...)
		if err != nil {
			return errMap{op: "list audit events"}.wrap(err)
		}
		defer rows.Close()
		for rows.Next() {
			var e permiso.AuditEvent
			var details string
			if err := rows.Scan(&e.ID, timeCol{&e.OccurredAt}, &e.ActorType, &e.ActorID,
				&e.Action, &e.TargetType, &e.TargetID, &e.Result, &e.IPAddress,
				&e.UserAgent, &e.RequestID, &details); err != nil {
				return errMap{op: "list audit events"}.wrap(err)
			}
			e.Details = map[string]any{}
			if details != "" {
				if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
					return errMap{op: "decode audit details"}.wrap(err)
				}
			}
			out = append(out, e)
		}
		return errMap{op: "list audit events"}.wrap(rows.Err())
	})
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// DeleteAuditEventsBefore removes events that occurred before t.
func (db *DB) DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int, error) {
	n, err := db.w().execN(ctx, "DELETE FROM audit_events WHERE occurred_at < ?", ts(t))
	return n, errMap{op: "delete audit events"}.wrap(err)
}

// auditWhere builds the WHERE clause (with its leading " WHERE ", or
// empty) and arguments of an AuditFilter; Offset and Limit are not used.
func auditWhere(f permiso.AuditFilter) (string, []any) {
	var where []string
	var args []any
	action := func(a string) string {
		if strings.HasSuffix(a, ".") {
			args = append(args, a, a)
			return "substr(action, 1, length(?)) = ?"
		}
		args = append(args, a)
		return "action = ?"
	}
	if f.Action != "" {
		where = append(where, action(f.Action))
	}
	if len(f.Actions) > 0 {
		var ors []string
		for _, a := range f.Actions {
			ors = append(ors, action(a))
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	if f.ActorID != "" {
		where = append(where, "actor_id = ?")
		args = append(args, f.ActorID)
	}
	if f.Subject != "" {
		where = append(where, "(actor_id = ? OR target_id = ?)")
		args = append(args, f.Subject, f.Subject)
	}
	if f.Result != "" {
		where = append(where, "result = ?")
		args = append(args, f.Result)
	}
	if f.Since != nil {
		where = append(where, "occurred_at >= ?")
		args = append(args, ts(*f.Since))
	}
	if f.Until != nil {
		where = append(where, "occurred_at < ?")
		args = append(args, ts(*f.Until))
	}
	if len(where) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(where, " AND "), args
}
