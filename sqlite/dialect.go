package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlstore"
)

// shared is the SQL implementation common to both backends; DB embeds it
// and defines only what is SQLite's own.
type shared = sqlstore.Store

// dialect is SQLite's side of sqlstore.Dialect: statements keep their "?"
// placeholders (SQLite takes "?" and "?N" as they are), times are
// fixed-width UTC text, id lists are one JSON array read by json_each,
// and no row lock is needed behind the single writer.
type dialect struct{}

var _ sqlstore.Dialect = dialect{}

func (dialect) Name() string                   { return "sqlite" }
func (dialect) Bind(query string) string       { return query }
func (dialect) Time(t time.Time) any           { return ts(t) }
func (dialect) ScanTime(p *time.Time) any      { return timeCol{p} }
func (dialect) ScanNullTime(p **time.Time) any { return nullTimeCol{p} }
func (dialect) InIDs(col string) string        { return col + " IN (SELECT value FROM json_each(?))" }
func (dialect) IDs(ids []uuid.UUID) any        { return idsJSON(ids) }
func (dialect) ForUpdate() string              { return "" }
func (dialect) Day(col string) string          { return "substr(" + col + ", 1, 10)" }

func (dialect) Classify(err error) (sqlstore.ErrKind, string) {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return sqlstore.ErrNoRows, ""
	case isUnique(err):
		return sqlstore.ErrUnique, err.Error()
	case isForeignKey(err):
		return sqlstore.ErrForeignKey, err.Error()
	}
	return sqlstore.ErrOther, ""
}

func (dialect) Other(err error, op string) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	case sqliteCode(err)&0xff == sqlite3.SQLITE_BUSY:
		return permiso.Wrap(permiso.EUNAVAILABLE, "The database is busy", err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// conns is the DB's sqlstore.Conn: writes on the single writer
// connection (BEGIN IMMEDIATE), reads in a read transaction of the read
// pool, every statement through the statement cache.
type conns struct{ db *DB }

func (c conns) Pool() sqlstore.Querier { return querier{c.db.w()} }

func (c conns) Reader() sqlstore.Querier { return querier{c.db.r()} }

func (c conns) Read(ctx context.Context, fn func(sqlstore.Querier) error) error {
	return c.db.readTx(ctx, func(cn conn) error { return fn(querier{cn}) })
}

func (c conns) Write(ctx context.Context, fn func(sqlstore.Querier) error) error {
	return c.db.inTx(ctx, func(cn conn) error { return fn(querier{cn}) })
}

// querier adapts a conn to sqlstore.Querier.
type querier struct{ c conn }

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	n, err := q.c.execN(ctx, query, args...)
	return int64(n), err
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	r, err := q.c.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows{r}, nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return q.c.queryRow(ctx, query, args...)
}

// rows gives *sql.Rows the Close of sqlstore.Rows.
type rows struct{ *sql.Rows }

func (r rows) Close() { _ = r.Rows.Close() }
