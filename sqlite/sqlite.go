// Package sqlite implements permiso.Store on SQLite through the pure-Go
// modernc.org/sqlite driver (database/sql, driver name "sqlite"). The
// statements are sqlstore's, shared with PostgreSQL; this package holds
// the connections, the migrations, the backup and SQLite's sqlstore.Dialect
// (docs/architecture.md, "Storage: one shape over two dialects").
//
// One writer: every write runs on a pool of exactly one connection, inside a
// transaction started with BEGIN IMMEDIATE, so read-modify-write operations
// (UpdateUser, UseRefreshToken, ...) are serialized within the process and,
// through SQLite's own locking and busy_timeout, across processes. Reads use
// a separate pool of several connections, which WAL mode lets run alongside
// the writer. An in-memory database (":memory:") uses a single shared
// connection for both, since every new connection would open a new, empty
// database.
//
// Times are stored as fixed-width RFC 3339 UTC text
// ("2006-01-02T15:04:05.000000000Z") so that text order is time order, UUIDs
// as canonical lower-case text and booleans as 0/1, as docs/data-model.md
// describes. Driver errors are classified for sqlstore, which maps them to
// permiso's sentinel errors.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlstore"
)

// Memory is the path that opens a private in-memory database.
const Memory = ":memory:"

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Logger receives the statement log when Echo is set. Nil discards.
	Logger *slog.Logger
	// Echo logs every SQL statement at debug level (DATABASE_ECHO). Only
	// the statement text is logged, never its arguments.
	Echo bool
	// MaxReadConns bounds the read pool of a file database; zero means
	// max(4, GOMAXPROCS).
	MaxReadConns int
}

// DB is a permiso.Store backed by one SQLite database.
type DB struct {
	*shared
	write  *sql.DB // exactly one connection; every transaction is BEGIN IMMEDIATE
	read   *sql.DB // several connections; equal to write for ":memory:"
	path   string
	memory bool
	log    *slog.Logger
	echo   bool
	stmts  stmtCache
}

var _ permiso.Store = (*DB)(nil)

// Open opens (creating if needed) the database at path, a relative or
// absolute file path or ":memory:", and checks that it answers. It does not
// apply migrations; call MigrateUp for that.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	if strings.Contains(path, "?") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: database path %q must be a plain file path or %s", path, Memory)
	}
	db := &DB{path: path, memory: path == Memory, log: opts.Logger, echo: opts.Echo}
	db.shared = sqlstore.New(conns{db}, dialect{})
	if db.log == nil {
		db.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	var err error
	db.write, err = sql.Open("sqlite", dsn(path, db.memory, "immediate", false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	db.write.SetConnMaxIdleTime(0)
	// The writer connection is opened first so that it switches the file to
	// WAL before any reader connects.
	if err := db.write.PingContext(ctx); err != nil {
		db.write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if db.memory {
		db.read = db.write
		return db, nil
	}

	db.read, err = sql.Open("sqlite", dsn(path, false, "deferred", true))
	if err != nil {
		db.write.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	n := opts.MaxReadConns
	if n <= 0 {
		n = max(4, runtime.GOMAXPROCS(0))
	}
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)
	if err := db.read.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return db, nil
}

// dsn builds the driver's data source name with the connection pragmas.
func dsn(path string, memory bool, txlock string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "foreign_keys(1)")
	if !memory && !readOnly {
		// WAL is a property of the file: the writer sets it once, first.
		q.Add("_pragma", "journal_mode(WAL)")
	}
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	}
	q.Set("_txlock", txlock)
	return path + "?" + q.Encode()
}

// Backend returns "sqlite".
func (db *DB) Backend() string { return "sqlite" }

// Path returns the path the database was opened with.
func (db *DB) Path() string { return db.path }

// Ping checks that both pools answer.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if db.read != db.write {
		if err := db.read.PingContext(ctx); err != nil {
			return fmt.Errorf("sqlite: ping: %w", err)
		}
	}
	return nil
}

// Close closes both pools. For ":memory:" the data is gone afterwards.
func (db *DB) Close() error {
	err := db.stmts.close()
	if db.read != nil && db.read != db.write {
		err = db.read.Close()
	}
	if db.write != nil {
		err = errors.Join(err, db.write.Close())
	}
	return err
}

// Backup writes a consistent copy of the live database to outPath with
// VACUUM INTO, without stopping writers. outPath must not exist yet.
func (db *DB) Backup(ctx context.Context, outPath string) error {
	if outPath == "" {
		return permiso.Errorf(permiso.EINVALID, "backup path is empty")
	}
	if _, err := os.Stat(outPath); err == nil {
		return permiso.Errorf(permiso.EEXISTS, "backup file %s already exists", outPath)
	}
	// VACUUM INTO reads the source in one read transaction (a consistent
	// snapshot) and writes only the new file. The readers are query_only,
	// which forbids it, and the writer must stay free for writes, so a
	// one-off connection does the copy; ":memory:" has only its one
	// connection.
	c := db.w()
	if !db.memory {
		bp, err := sql.Open("sqlite", dsn(db.path, false, "deferred", false))
		if err != nil {
			return fmt.Errorf("sqlite: backup: %w", err)
		}
		defer bp.Close()
		bp.SetMaxOpenConns(1)
		c = conn{q: bp, db: db}
	}
	if _, err := c.exec(ctx, "VACUUM INTO ?", outPath); err != nil {
		return fmt.Errorf("sqlite: backup to %s: %w", outPath, err)
	}
	return nil
}

// queryer is what *sql.DB and *sql.Tx have in common.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs statements on a pool or a transaction and echoes them when the
// DB was opened with Echo. Statements of the read and write pools go
// through the DB's statement cache (stmtcache.go): SQLite spends more time
// compiling a statement than running the small ones permiso's hot paths
// make. A conn without pool (the backup's own connection) runs them
// directly.
type conn struct {
	q    queryer
	db   *DB
	pool *sql.DB // the pool q belongs to, nil when not cached
	tx   *sql.Tx // the transaction q is, if any
}

// prepared returns the cached statement for query on c's pool, bound to
// c's transaction, or nil when the statement is not to be cached.
func (c conn) prepared(ctx context.Context, query string) *sql.Stmt {
	if c.pool == nil {
		return nil
	}
	st := c.db.stmts.get(c.pool, query)
	if st == nil || c.tx == nil {
		return st
	}
	// Closed with the transaction; prepared once per connection.
	return c.tx.StmtContext(ctx, st)
}

func (c conn) echo(ctx context.Context, query string) {
	if c.db.echo {
		c.db.log.DebugContext(ctx, "sql", "backend", "sqlite", "statement", query)
	}
}

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	c.echo(ctx, query)
	if st := c.prepared(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.q.ExecContext(ctx, query, args...)
}

func (c conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	c.echo(ctx, query)
	if st := c.prepared(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.q.QueryContext(ctx, query, args...)
}

func (c conn) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	c.echo(ctx, query)
	if st := c.prepared(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.q.QueryRowContext(ctx, query, args...)
}

// execN runs an exec and returns the number of affected rows.
func (c conn) execN(ctx context.Context, query string, args ...any) (int, error) {
	res, err := c.exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// r returns a conn on the read pool (outside any transaction).
func (db *DB) r() conn { return conn{q: db.read, db: db, pool: db.read} }

// w returns a conn on the write pool (outside any transaction).
func (db *DB) w() conn { return conn{q: db.write, db: db, pool: db.write} }

// inTx runs fn in a write transaction (BEGIN IMMEDIATE on the single writer
// connection), committing when fn returns nil. fn must use only the conn it
// is given: the writer has one connection, which the transaction holds.
func (db *DB) inTx(ctx context.Context, fn func(c conn) error) error {
	return db.tx(ctx, db.write, fn)
}

// readTx runs fn in a read transaction so that several queries see one
// snapshot of the database.
func (db *DB) readTx(ctx context.Context, fn func(c conn) error) error {
	return db.tx(ctx, db.read, fn)
}

func (db *DB) tx(ctx context.Context, pool *sql.DB, fn func(c conn) error) (err error) {
	if db.echo {
		db.log.DebugContext(ctx, "sql", "backend", "sqlite", "statement", "BEGIN")
	}
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(conn{q: tx, db: db, pool: pool, tx: tx}); err != nil {
		_ = tx.Rollback()
		return cutOff(ctx, err)
	}
	if db.echo {
		db.log.DebugContext(ctx, "sql", "backend", "sqlite", "statement", "COMMIT")
	}
	if err := tx.Commit(); err != nil {
		return cutOff(ctx, fmt.Errorf("sqlite: commit: %w", err))
	}
	return nil
}

// cutOff returns the error err of a transaction on ctx, or ctx's own
// error when err is sql.ErrTxDone and ctx has ended: database/sql rolls a
// transaction back as soon as its context ends, and a COMMIT (or a
// statement) that comes after it finds the transaction done. Nothing was
// committed; the request was cut off, by its client going away
// (permiso.ClientGone: answered 499, not 500) or by its deadline, and
// that is what the caller is told.
func cutOff(ctx context.Context, err error) error {
	if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
		return fmt.Errorf("sqlite: transaction rolled back as its request ended: %w", ctx.Err())
	}
	return err
}
