package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/permiso/permiso/sqlstore"
)

// shared is the SQL implementation common to both backends; DB embeds it
// and defines only what is PostgreSQL's own.
type shared = sqlstore.Store

// dialect is PostgreSQL's side of sqlstore.Dialect: "$N" placeholders,
// timestamptz times (microseconds), uuid[] id lists and SELECT ... FOR
// UPDATE row locks.
type dialect struct {
	bound sync.Map // statement with "?" -> statement with "$N"
}

var _ sqlstore.Dialect = (*dialect)(nil)

func (*dialect) Name() string { return "postgres" }

// Bind numbers the placeholders: "?" is the next argument, "?N" the N-th
// (and later plain ones continue after the highest N seen), as SQLite
// reads them.
func (d *dialect) Bind(query string) string {
	if b, ok := d.bound.Load(query); ok {
		return b.(string)
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	next := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' {
			b.WriteByte(query[i])
			continue
		}
		j := i + 1
		for j < len(query) && query[j] >= '0' && query[j] <= '9' {
			j++
		}
		n := next + 1
		if j > i+1 {
			n, _ = strconv.Atoi(query[i+1 : j])
		}
		next = max(next, n)
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
		i = j - 1
	}
	out := b.String()
	d.bound.Store(query, out)
	return out
}

func (*dialect) Time(t time.Time) any           { return ts(t) }
func (*dialect) ScanTime(p *time.Time) any      { return p }
func (*dialect) ScanNullTime(p **time.Time) any { return p }
func (*dialect) InIDs(col string) string        { return col + " = ANY(?)" }
func (*dialect) IDs(ids []uuid.UUID) any        { return ids }
func (*dialect) ForUpdate() string              { return " FOR UPDATE" }
func (*dialect) Day(col string) string          { return "(" + col + " AT TIME ZONE 'UTC')::date" }

func (*dialect) Classify(err error) (sqlstore.ErrKind, string) {
	if errors.Is(err, pgx.ErrNoRows) {
		return sqlstore.ErrNoRows, ""
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return sqlstore.ErrUnique, pgErr.ConstraintName
		case "23503":
			return sqlstore.ErrForeignKey, pgErr.ConstraintName
		}
	}
	return sqlstore.ErrOther, ""
}

func (*dialect) Other(err error, op string) error { return mapErr(err, op, opRead) }

// conns is the DB's sqlstore.Conn: single statements on the pool (a read
// is sent again when its connection turns out lost), writes in one
// transaction whose BEGIN is retried the same way.
type conns struct{ db *DB }

func (c conns) Pool() sqlstore.Querier { return pgQuerier{c.db.q} }

func (c conns) Reader() sqlstore.Querier { return pgQuerier{c.db.q} }

func (c conns) Read(_ context.Context, fn func(sqlstore.Querier) error) error {
	return fn(pgQuerier{c.db.q})
}

func (c conns) Write(ctx context.Context, fn func(sqlstore.Querier) error) error {
	return c.db.inTx(ctx, func(tx pgx.Tx) error { return fn(pgTxQuerier{pgQuerier{tx}, tx}) })
}

// pgQuerier adapts a querier (the retrying pool or a transaction) to
// sqlstore.Querier.
type pgQuerier struct{ q querier }

func (q pgQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (q pgQuerier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return q.q.Query(ctx, query, args...)
}

func (q pgQuerier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return q.q.QueryRow(ctx, query, args...)
}

// pgTxQuerier is the querier of a transaction, which can also send a
// batch of statements in one round trip (sqlstore.Batcher).
type pgTxQuerier struct {
	pgQuerier
	tx pgx.Tx
}

// ExecBatch sends stmts in one pgx batch (one round trip), for the
// import.
func (q pgTxQuerier) ExecBatch(ctx context.Context, stmts []sqlstore.Stmt) ([]int64, int, error) {
	var b pgx.Batch
	for _, st := range stmts {
		b.Queue(st.SQL, st.Args...)
	}
	res := q.tx.SendBatch(ctx, &b)
	affected := make([]int64, len(stmts))
	for i := range stmts {
		tag, err := res.Exec()
		if err != nil {
			_ = res.Close()
			return nil, i, err
		}
		affected[i] = tag.RowsAffected()
	}
	return affected, -1, res.Close()
}
