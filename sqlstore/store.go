package sqlstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Store implements the parts of permiso.Store that are written once for
// every SQL backend. A backend embeds it and adds what is its own
// (opening, migrations, backup, and any path a benchmark showed to need
// the backend's own protocol).
type Store struct {
	c  Conn
	d  Dialect
	qs queries
}

// queries are the statements of the hot paths that depend on the dialect,
// built once.
type queries struct {
	clientScopes, roleScopes, userRoles string
}

// New returns the Store running its statements on c, in dialect d.
func New(c Conn, d Dialect) *Store {
	return &Store{c: c, d: d, qs: queries{
		clientScopes: linkedScopesSQL(d, "service_client_scopes", "service_client_id"),
		roleScopes:   linkedScopesSQL(d, "role_scopes", "role_id"),
		userRoles:    userRolesSQL(d),
	}}
}

// Dialect returns the Store's dialect.
func (s *Store) Dialect() Dialect { return s.d }

// q binds a statement written with "?" placeholders to the dialect.
func (s *Store) q(query string) string { return s.d.Bind(query) }

// exec, query and queryRow bind query and run it on q.
func (s *Store) exec(ctx context.Context, q Querier, query string, args ...any) (int64, error) {
	return q.Exec(ctx, s.q(query), args...)
}

func (s *Store) query(ctx context.Context, q Querier, query string, args ...any) (Rows, error) {
	return q.Query(ctx, s.q(query), args...)
}

// selectAll runs query, a select of t.List(), and scans every row; the
// rows are closed when it returns. Errors come back as the driver gave
// them, for the caller's errOf.
func selectAll[T any](ctx context.Context, s *Store, q Querier, t *Table[T], query string, args ...any) ([]T, error) {
	return scanAll(ctx, s, q, func(r Row) (T, error) { return t.Scan(s.d, r) }, query, args...)
}

// first returns the first of rows, what a select by key read (rows and
// err as the select returned them); none is ErrNotFound with msg.
func first[T any](rows []T, err error, msg string) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	if len(rows) == 0 {
		return zero, notFound(msg)
	}
	return rows[0], nil
}

// idsOf returns the id of each of vs (id reads it), in order.
func idsOf[T any](vs []T, id func(*T) uuid.UUID) []uuid.UUID {
	ids := make([]uuid.UUID, len(vs))
	for i := range vs {
		ids[i] = id(&vs[i])
	}
	return ids
}

// scanAll runs query and reads every row with scan; the rows are closed
// when it returns, so the caller may query again in the same
// transaction. Errors come back as the driver gave them, for the caller's
// errOf.
func scanAll[T any](ctx context.Context, s *Store, q Querier, scan func(Row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := s.query(ctx, q, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *Store) queryRow(ctx context.Context, q Querier, query string, args ...any) Row {
	return q.QueryRow(ctx, s.q(query), args...)
}

// errOf maps a driver error of an operation on one kind of row to a
// permiso error with that kind's message (m), keeping the driver error
// as the cause. del says the statement deletes: a foreign-key violation
// then means the row is still referenced (ErrConflict) rather than that a
// referenced row is missing (ErrNotFound, with missing as the message).
func (s *Store) errOf(err error, op string, m Messages, del bool, missing string) error {
	if err == nil {
		return nil
	}
	var pe *permiso.Error
	if errors.As(err, &pe) {
		return err
	}
	kind, constraint := s.d.Classify(err)
	switch kind {
	case ErrNoRows:
		if m.NotFound != "" {
			return permiso.Wrap(permiso.ENOTFOUND, m.NotFound, err)
		}
	case ErrUnique:
		switch {
		case strings.Contains(constraint, "idx_users_username"):
			return permiso.Wrap(permiso.EEXISTS, UsernameTakenMessage, err)
		case strings.Contains(constraint, "idx_users_email"):
			return permiso.Wrap(permiso.EEXISTS, EmailTakenMessage, err)
		}
		if m.Exists != "" {
			return permiso.Wrap(permiso.EEXISTS, m.Exists, err)
		}
	case ErrForeignKey:
		if del && m.InUse != "" {
			return permiso.Wrap(permiso.ECONFLICT, m.InUse, err)
		}
		if missing == "" {
			missing = ReferenceMissingMessage
		}
		return permiso.Wrap(permiso.ENOTFOUND, missing, err)
	}
	return s.d.Other(err, op)
}

// notFound is the ErrNotFound with message msg.
func notFound(msg string) error { return permiso.Errorf(permiso.ENOTFOUND, "%s", msg) }

// checkAllExist returns ErrNotFound (msg) unless every id (without
// duplicates) is a row of table.
func (s *Store) checkAllExist(ctx context.Context, q Querier, table string, ids []uuid.UUID, msg string) error {
	if len(ids) == 0 {
		return nil
	}
	var n int
	if err := s.queryRow(ctx, q, "SELECT count(*) FROM "+table+" WHERE "+s.d.InIDs("id"), s.d.IDs(ids)).Scan(&n); err != nil {
		return s.errOf(err, "check "+table, Messages{}, false, "")
	}
	if n != len(ids) {
		return notFound(msg)
	}
	return nil
}

// uniqueIDs returns ids without duplicates, in first-seen order.
func uniqueIDs(ids []uuid.UUID) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(ids))
	seen := make(map[uuid.UUID]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// newID returns a new, time-ordered UUID (version 7).
func newID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}

// orNow returns t, or the current time when t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().UTC()
	}
	return t
}

// updateRow reads the row of t (keyed by a UUID) with key id through read
// in q's transaction, applies fn to it and writes it back (t.Update): the
// key stays id whatever fn did, and an updated_at that fn leaves zero
// becomes the current time. An error of the write is errOf(op, err).
func updateRow[T any](ctx context.Context, s *Store, q Querier, t *Table[T], id uuid.UUID, read func(q Querier) (T, error), fn func(*T) error, op string, errOf func(op string, err error) error) error {
	v, err := read(q)
	if err != nil {
		return err
	}
	if err := fn(&v); err != nil {
		return err
	}
	*t.Cols[0].Field(&v).(*uuid.UUID) = id
	if t.updatedAt >= 0 {
		at := t.Cols[t.updatedAt].Field(&v).(*time.Time)
		*at = orNow(*at)
	}
	if _, err := s.exec(ctx, q, t.Update(), t.UpdateArgs(s.d, &v)...); err != nil {
		return errOf(op, err)
	}
	return nil
}

// createdTimes fills zero creation and update times with the current time.
func createdTimes(created, updated *time.Time) {
	*created = orNow(*created)
	if updated.IsZero() {
		*updated = *created
	}
}

// likePattern returns a LIKE pattern (with ESCAPE '\') matching s as a
// lower-case substring: '%' and '_' in s are literal.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

// where accumulates the conditions of a list query and their arguments.
type where struct {
	conds []string
	args  []any
}

// add appends a condition whose "?" placeholders take vals in order. A
// condition that uses one value several times refers to it as "?N", N
// counted from 1 within the condition.
func (w *where) add(cond string, vals ...any) {
	if strings.Contains(cond, "?1") {
		base := len(w.args)
		for i := len(vals); i >= 1; i-- {
			cond = strings.ReplaceAll(cond, "?"+itoa(i), "?"+itoa(base+i))
		}
	}
	w.conds = append(w.conds, cond)
	w.args = append(w.args, vals...)
}

// search adds a case-insensitive substring match (likePattern) of text
// on any of cols; nothing when text is empty.
func (w *where) search(text string, cols ...string) {
	if text == "" {
		return
	}
	ors := make([]string, len(cols))
	for i, c := range cols {
		ors[i] = "lower(" + c + `) LIKE ?1 ESCAPE '\'`
	}
	w.add("("+strings.Join(ors, " OR ")+")", likePattern(text))
}

// addSet adds cond with *v when v is set: a filter's optional field.
func addSet[T any](w *where, cond string, v *T) {
	if v != nil {
		w.add(cond, *v)
	}
}

// sql returns " WHERE ..." or "".
func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// listPage counts the rows of from matching w and reads one page of them
// (selectFrom with w, ordered by order) with read, in one read
// transaction: the List methods of every table. countErr maps a failure
// of the count.
func listPage[T any](ctx context.Context, s *Store, from, selectFrom string, w where, order string, offset, limit int,
	countErr func(error) error, read func(ctx context.Context, q Querier, query string, args ...any) ([]T, error)) ([]T, int, error) {
	var out []T
	var total int
	err := s.c.Read(ctx, func(q Querier) error {
		if err := s.queryRow(ctx, q, "SELECT count(*) FROM "+from+w.sql(), w.args...).Scan(&total); err != nil {
			return countErr(err)
		}
		query, args := page(selectFrom+w.sql()+" ORDER BY "+order, slices.Clone(w.args), offset, limit)
		var err error
		out, err = read(ctx, q, query, args...)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// createLinked inserts v, the row id of t, and links it through l to
// linkIDs, rows of l's target that must exist (else ErrNotFound, and
// nothing is written), in one transaction, and returns it as get reads it
// back.
func createLinked[T any](ctx context.Context, s *Store, t *Table[T], v *T, l links, id uuid.UUID, linkIDs []uuid.UUID,
	insertErr func(error) error, get func(q Querier) (T, error)) (T, error) {
	linkIDs = uniqueIDs(linkIDs)
	return writeRead(ctx, s, func(q Querier) error {
		if err := s.checkAllExist(ctx, q, l.target, linkIDs, l.targetMissing); err != nil {
			return err
		}
		if _, err := s.exec(ctx, q, t.Insert(), t.Args(s.d, v)...); err != nil {
			return insertErr(err)
		}
		return s.link(ctx, q, l, id, linkIDs)
	}, get)
}

// readOne reads one row with get (a Store's get method: the row and its
// links) in one read transaction, so that they come from one snapshot.
func readOne[T any](ctx context.Context, s *Store, get func(s *Store, ctx context.Context, q Querier, query string, args ...any) (T, error), query string, args ...any) (T, error) {
	var out T
	err := s.c.Read(ctx, func(q Querier) (err error) {
		out, err = get(s, ctx, q, query, args...)
		return err
	})
	return out, err
}

// writeRead runs write and then read in one write transaction and
// returns what read returns: a row as the transaction left it.
func writeRead[T any](ctx context.Context, s *Store, write func(q Querier) error, read func(q Querier) (T, error)) (T, error) {
	var out T
	err := s.c.Write(ctx, func(q Querier) error {
		if err := write(q); err != nil {
			return err
		}
		var err error
		out, err = read(q)
		return err
	})
	return out, err
}

// deleteByID deletes the row of table with id; op names the deletion in
// errors, m holds the table's messages (a missing row is m.NotFound).
func (s *Store) deleteByID(ctx context.Context, table, op string, m Messages, id uuid.UUID) error {
	n, err := s.exec(ctx, s.c.Pool(), "DELETE FROM "+table+" WHERE id = ?", id)
	if err != nil {
		return s.errOf(err, op, m, true, "")
	}
	if n == 0 {
		return notFound(m.NotFound)
	}
	return nil
}

// page appends LIMIT and OFFSET (limit 0: no limit) to query and args.
func page(query string, args []any, offset, limit int) (string, []any) {
	if limit > 0 {
		query += " LIMIT ?"
		args = append(args, limit)
	} else if offset > 0 {
		// Both dialects take a LIMIT before an OFFSET; this one is no limit.
		query += " LIMIT ?"
		args = append(args, int64(1)<<62)
	}
	if offset > 0 {
		query += " OFFSET ?"
		args = append(args, offset)
	}
	return query, args
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
