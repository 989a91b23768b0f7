package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/jsonappend"
)

// AuditEvents describes the audit_events table. Details are stored as a
// JSON object (SQLite: text; PostgreSQL: jsonb, which takes the text).
var AuditEvents = NewTable("audit_events", "a", append(Fields[permiso.AuditEvent]([]string{"id"},
	"id", "occurred_at", "actor_type", "actor_id", "action", "target_type", "target_id", "result",
	"ip_address", "user_agent", "request_id"),
	Col[permiso.AuditEvent]{Name: "details", Field: func(e *permiso.AuditEvent) any { return &e.Details },
		Arg:  func(_ Dialect, e *permiso.AuditEvent) any { return detailsJSON(e.Details) },
		Dest: func(_ Dialect, e *permiso.AuditEvent) any { return &jsonCol{&e.Details} }},
)...)

// detailsJSON encodes details as a JSON object ("{}" when empty), or
// returns a badDetails, which AppendAuditEvents refuses before any write.
// Details of strings, lists, booleans and integers, as most events' are,
// are encoded without reflection (jsonappend.Value: json.Marshal's bytes);
// any other through json.Marshal.
func detailsJSON(d map[string]any) any {
	if len(d) == 0 {
		return "{}"
	}
	if b, ok := jsonappend.Value(make([]byte, 0, 128), d); ok {
		return string(b)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return badDetails{err}
	}
	return string(b)
}

// badDetails is the argument of details that cannot be encoded.
type badDetails struct{ err error }

// jsonCol scans a JSON object column into a map (never nil).
type jsonCol struct{ p *map[string]any }

func (c *jsonCol) Scan(src any) error {
	m := map[string]any{}
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	case map[string]any:
		m = v
	case nil:
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into audit details", src)
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("sqlstore: decode audit details: %w", err)
		}
	}
	*c.p = m
	return nil
}

// dayCol scans a day (Dialect.Day): "YYYY-MM-DD" text or a date.
type dayCol struct{ p *time.Time }

func (c *dayCol) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		*c.p = time.Date(v.Year(), v.Month(), v.Day(), 0, 0, 0, 0, time.UTC)
		return nil
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	}
	return fmt.Errorf("sqlstore: cannot scan %T into a day", src)
}

func (c *dayCol) parse(s string) error {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return fmt.Errorf("sqlstore: bad day %q: %w", s, err)
	}
	*c.p = d.UTC()
	return nil
}

func (s *Store) auditErr(op string, err error) error {
	return s.errOf(err, op, AuditEventMessages, false, "")
}

// execAll runs stmts in order on q, as one batch where q has them.
func (s *Store) execAll(ctx context.Context, q Querier, stmts []Stmt) ([]int64, int, error) {
	if b, ok := q.(Batcher); ok {
		return b.ExecBatch(ctx, stmts)
	}
	out := make([]int64, len(stmts))
	for i, st := range stmts {
		n, err := q.Exec(ctx, st.SQL, st.Args...)
		if err != nil {
			return nil, i, err
		}
		out[i] = n
	}
	return out, -1, nil
}

// AppendAuditEvents writes the batch in one transaction (sent as one
// batch where the backend has them). IDs are generated when zero
// (time-ordered), OccurredAt defaults to now, nil Details are stored as {}.
// The events go in multi-row INSERTs of auditRowChunks rows (a batch of
// 256 is four statements, not 256): the database parses, plans and runs
// one statement per chunk rather than per event (docs/benchmarks.md,
// "Client credentials: the audit insert"). The batch is stored whole or
// not at all, as before.
func (s *Store) AppendAuditEvents(ctx context.Context, events []permiso.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	args := make([]any, 0, len(events)*len(AuditEvents.Cols))
	for _, e := range events {
		if e.ID == uuid.Nil {
			e.ID = newID()
		}
		e.OccurredAt = orNow(e.OccurredAt)
		row := AuditEvents.Args(s.d, &e)
		for _, a := range row {
			if bad, ok := a.(badDetails); ok {
				return permiso.Wrap(permiso.EINVALID, "Audit details are not valid JSON", bad.err)
			}
		}
		args = append(args, row...)
	}
	var stmts []Stmt
	cols := len(AuditEvents.Cols)
	for rest := len(events); rest > 0; {
		n := auditRowChunk(rest)
		stmts = append(stmts, Stmt{SQL: s.q(AuditEvents.InsertRows(n)), Args: args[: n*cols : n*cols]})
		args, rest = args[n*cols:], rest-n
	}
	return s.c.Write(ctx, func(q Querier) error {
		_, _, err := s.execAll(ctx, q, stmts)
		return s.auditErr("append audit events", err)
	})
}

// auditRowChunks are the row counts of the audit INSERTs, largest first.
// A few fixed sizes keep the statements few, so that the backends'
// statement caches hold them; 64 rows of 12 columns stay far below
// either backend's limit of parameters per statement.
var auditRowChunks = [...]int{64, 16, 4, 1}

// auditRowChunk is the largest chunk of auditRowChunks that rest fills.
func auditRowChunk(rest int) int {
	for _, n := range auditRowChunks {
		if rest >= n {
			return n
		}
	}
	return 1
}

// ListAuditEvents returns one page of the events matching f, newest first
// (occurred_at desc, id desc), and the number of all matching events. An
// Action ending in '.' matches every action with that prefix; Since is
// inclusive and Until exclusive.
func (s *Store) ListAuditEvents(ctx context.Context, f permiso.AuditFilter) ([]permiso.AuditEvent, int, error) {
	w := s.auditWhere(f)
	return listPage(ctx, s, AuditEvents.From(), AuditEvents.Select(), w, "a.occurred_at DESC, a.id DESC", f.Offset, f.Limit,
		func(err error) error { return s.auditErr("count audit events", err) },
		func(ctx context.Context, q Querier, query string, args ...any) ([]permiso.AuditEvent, error) {
			out, err := selectAll(ctx, s, q, AuditEvents, query, args...)
			return out, s.auditErr("list audit events", err)
		})
}

// DeleteAuditEventsBefore removes events that occurred before t.
func (s *Store) DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int, error) {
	n, err := s.exec(ctx, s.c.Pool(), "DELETE FROM audit_events WHERE occurred_at < ?", s.d.Time(t))
	return int(n), s.auditErr("delete audit events", err)
}

// auditWhere builds the conditions (on alias a) of an AuditFilter; Offset
// and Limit are not used.
func (s *Store) auditWhere(f permiso.AuditFilter) where {
	var w where
	action := func(a string) (string, []any) {
		if strings.HasSuffix(a, ".") {
			return "substr(a.action, 1, ?) = ?", []any{utf8.RuneCountInString(a), a}
		}
		return "a.action = ?", []any{a}
	}
	if f.Action != "" {
		c, args := action(f.Action)
		w.add(c, args...)
	}
	if len(f.Actions) > 0 {
		var ors []string
		var args []any
		for _, a := range f.Actions {
			c, as := action(a)
			ors = append(ors, c)
			args = append(args, as...)
		}
		w.add("("+strings.Join(ors, " OR ")+")", args...)
	}
	if f.ActorID != "" {
		w.add("a.actor_id = ?", f.ActorID)
	}
	if f.Subject != "" {
		w.add("(a.actor_id = ?1 OR a.target_id = ?1)", f.Subject)
	}
	if f.Result != "" {
		w.add("a.result = ?", f.Result)
	}
	if f.Since != nil {
		w.add("a.occurred_at >= ?", s.d.Time(*f.Since))
	}
	if f.Until != nil {
		w.add("a.occurred_at < ?", s.d.Time(*f.Until))
	}
	return w
}

// CountAuditEvents counts the events matching f, grouped as g says. Days
// are UTC calendar days (Dialect.Day).
func (s *Store) CountAuditEvents(ctx context.Context, f permiso.AuditFilter, g permiso.AuditGrouping) ([]permiso.AuditCount, error) {
	w := s.auditWhere(f)
	var cols []string
	if g.Day {
		cols = append(cols, s.d.Day("a.occurred_at"))
	}
	if g.Action {
		cols = append(cols, "a.action")
	}
	if g.Result {
		cols = append(cols, "a.result")
	}
	if g.Actor {
		cols = append(cols, "a.actor_type", "coalesce(a.actor_id, '')")
	}
	query := "SELECT count(*)"
	if len(cols) > 0 {
		query += ", " + strings.Join(cols, ", ")
	}
	query += " FROM " + AuditEvents.From() + w.sql()
	if len(cols) > 0 {
		query += " GROUP BY " + strings.Join(cols, ", ") + " ORDER BY " + strings.Join(cols, ", ")
	}
	out, err := scanAll(ctx, s, s.c.Reader(), func(r Row) (permiso.AuditCount, error) {
		var c permiso.AuditCount
		dest := []any{&c.Count}
		if g.Day {
			dest = append(dest, &dayCol{&c.Day})
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
		return c, r.Scan(dest...)
	}, query, w.args...)
	return out, s.auditErr("count audit events", err)
}

// CountAuditActors counts the distinct actor ids of the events matching f.
func (s *Store) CountAuditActors(ctx context.Context, f permiso.AuditFilter) (int, error) {
	w := s.auditWhere(f)
	var n int
	err := s.queryRow(ctx, s.c.Reader(), "SELECT count(DISTINCT a.actor_id) FROM "+AuditEvents.From()+w.sql(), w.args...).Scan(&n)
	return n, s.auditErr("count audit actors", err)
}

// ClearExpiredLocks resets the lockout mirror of users whose lock ended at
// or before now.
func (s *Store) ClearExpiredLocks(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, s.c.Pool(), `UPDATE users SET locked_until = NULL, failed_login_attempts = 0
		WHERE locked_until IS NOT NULL AND locked_until <= ?`, s.d.Time(now))
	return int(n), s.userErr("clear expired locks", err)
}
