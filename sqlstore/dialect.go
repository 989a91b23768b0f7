package sqlstore

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Row is one result row (database/sql's *sql.Row, pgx.Row).
type Row interface {
	Scan(dest ...any) error
}

// Rows is a result set (pgx.Rows; *sql.Rows through an adapter).
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Querier runs statements, written in the dialect's own placeholders (the
// Store binds them first), on a pool or inside a transaction.
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Conn is how a backend runs statements: its pools, its transactions and
// what it retries are its own business.
type Conn interface {
	// Pool runs single statements outside any transaction.
	Pool() Querier
	// Reader runs single statements that only read, outside any
	// transaction: on SQLite the read pool, which does not wait for the
	// single writer connection (a refresh's token and session reads would
	// otherwise queue behind every rotation in flight; docs/benchmarks.md,
	// "The refresh path"); on PostgreSQL the same pool as Pool.
	Reader() Querier
	// Read runs fn for statements that only read and should see one
	// snapshot where the backend gives one cheaply (SQLite: a read
	// transaction; PostgreSQL: single statements on the pool, each
	// retried on a lost connection).
	Read(ctx context.Context, fn func(Querier) error) error
	// Write runs fn in one write transaction, committed when fn returns
	// nil. Rows read with Dialect.ForUpdate stay locked until the end.
	Write(ctx context.Context, fn func(Querier) error) error
}

// Dialect is what differs between the SQL of two backends. Statements in
// this package are written once, with "?" placeholders (the next argument)
// and "?N" (the N-th argument, for one used several times), and these
// hooks fill in the rest.
type Dialect interface {
	// Name is the backend's name ("sqlite", "postgres").
	Name() string
	// Bind turns a statement's "?" and "?N" placeholders into the
	// backend's own. It is called for every statement and may cache.
	Bind(query string) string
	// Time encodes a time argument (SQLite: fixed-width UTC text;
	// PostgreSQL: timestamptz, truncated to microseconds).
	Time(t time.Time) any
	// ScanTime returns the scan destination of a NOT NULL time column;
	// ScanNullTime that of a nullable one. The Store converts what they
	// read to UTC.
	ScanTime(p *time.Time) any
	ScanNullTime(p **time.Time) any
	// InIDs returns a condition "col is one of the ids" over one
	// placeholder, whose argument is IDs(ids).
	InIDs(col string) string
	IDs(ids []uuid.UUID) any
	// ForUpdate is the clause that locks the rows a SELECT reads inside a
	// write transaction ("" where the one writer already excludes others).
	ForUpdate() string
	// Day returns an expression truncating a time column to its UTC day,
	// as text "YYYY-MM-DD" or a date the driver scans as a time.
	Day(col string) string
	// Classify says what kind of failure a driver error is, with the name
	// (or the text) of the constraint it broke.
	Classify(err error) (kind ErrKind, constraint string)
	// Other maps a driver error that is none of the kinds Classify
	// names (unavailable, busy, cancelled, ...), for the operation op.
	Other(err error, op string) error
}

// ErrKind is a kind of driver error every backend can tell apart.
type ErrKind int

// The kinds of driver errors.
const (
	ErrOther      ErrKind = iota
	ErrNoRows             // the query returned no row
	ErrUnique             // a unique constraint or index was violated
	ErrForeignKey         // a foreign key was violated (missing parent on insert, child on delete)
)
