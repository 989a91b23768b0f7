// Package postgres is the PostgreSQL backend of permiso: it implements
// permiso.Store with native pgx v5 (pgxpool, no database/sql) and ships its
// own embedded, numbered migrations (see docs/data-model.md). The
// statements are sqlstore's, shared with SQLite; this package holds the
// pool (and the retry of statements whose connection was lost), the
// migrations, the backup, PostgreSQL's sqlstore.Dialect and the pipelined
// refresh rotation (docs/architecture.md, "Storage: one shape over two
// dialects").
//
// Driver errors become the domain sentinels (ErrNotFound,
// ErrAlreadyExists, ErrConflict) so that no driver type or SQL text leaves
// the package in a caller-visible message. Read-modify-write methods run in
// one transaction with SELECT ... FOR UPDATE; single-use tokens are consumed
// with one conditional UPDATE so that of any number of concurrent callers
// exactly one wins.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/sqlstore"
)

// Options tunes the connection pool and logging of a DB.
type Options struct {
	// MaxConns is the pool's maximum size (DATABASE_POOL_SIZE +
	// DATABASE_MAX_OVERFLOW, computed by the caller); 0 keeps pgx's default.
	MaxConns int
	// MinConns is the number of idle connections kept open; 0 keeps none.
	MinConns int
	// Logger receives the pool's diagnostics and, with Echo, every SQL
	// statement. Nil discards them.
	Logger *slog.Logger
	// Echo logs every SQL statement (never its arguments) at debug level
	// (DATABASE_ECHO).
	Echo bool
	// SearchPath, when set, becomes the session's search_path, so that every
	// table (schema_migrations included) lives in that schema. Tests use it
	// to isolate themselves in a schema of their own.
	SearchPath string
}

// DB is a PostgreSQL-backed permiso.Store. It is safe for concurrent use.
type DB struct {
	*shared
	d      *dialect
	pool   *pgxpool.Pool
	q      pooled // single statements on pool, retried where safe
	logger *slog.Logger
	cfg    *pgxpool.Config
	url    string // normalized; holds the password, never logged
	search string
	rot    rotations // RotateRefreshToken's statements (rotation_batch.go)
	// together sends every rotation through batchRotationSQL, a batch of
	// one included, without the fallback to checkedRotationSQL: set by
	// tests only, to run the conformance suite on that statement.
	together bool
}

var _ permiso.Store = (*DB)(nil)

// NormalizeURL turns a DATABASE_URL into a URL pgx accepts: the schemes
// postgresql://, postgres:// and any "+driver" variant of them
// (postgresql+asyncpg://, as in the original service) are accepted, with
// the driver suffix stripped. Other schemes are refused.
func NormalizeURL(url string) (string, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return "", permiso.Errorf(permiso.EINVALID, "database URL must start with postgresql:// or postgres://")
	}
	base, _, _ := strings.Cut(scheme, "+")
	switch strings.ToLower(base) {
	case "postgresql", "postgres":
		return "postgresql://" + rest, nil
	}
	return "", permiso.Errorf(permiso.EINVALID, "database URL scheme %q is not PostgreSQL", base)
}

// Open connects a pool to the database at url (see NormalizeURL), checks
// that the server answers, and returns the DB. It does not apply
// migrations; call MigrateUp for that.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	norm, err := NormalizeURL(url)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(norm)
	if err != nil {
		// pgconn redacts the password in ParseConfigError.
		return nil, permiso.Wrap(permiso.EINVALID, "invalid PostgreSQL database URL", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = int32(opts.MaxConns)
	}
	if opts.MinConns > 0 {
		cfg.MinConns = int32(opts.MinConns)
		if cfg.MinConns > cfg.MaxConns {
			cfg.MinConns = cfg.MaxConns
		}
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.SearchPath != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = opts.SearchPath
	}
	if opts.Echo {
		cfg.ConnConfig.Tracer = &echoTracer{logger: logger}
	}
	cfg.AfterConnect = registerTypes
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, permiso.Wrap(permiso.EUNAVAILABLE, "cannot connect to PostgreSQL", err)
	}
	db := &DB{pool: pool, q: pooled{pool}, d: &dialect{}, logger: logger, cfg: cfg, url: norm, search: opts.SearchPath}
	db.shared = sqlstore.New(conns{db}, db.d)
	if err := db.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Pool returns the underlying pgx pool, for callers (tests, health checks)
// that need raw access.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return permiso.Wrap(permiso.EUNAVAILABLE, "database unavailable", err)
	}
	return nil
}

// Backend returns "postgres".
func (db *DB) Backend() string { return "postgres" }

// Close closes every connection of the pool. It waits for acquired
// connections to be released.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// echoTracer logs each statement (SQL text only, never the arguments, which
// hold password and token hashes) at debug level, for DATABASE_ECHO.
type echoTracer struct {
	logger *slog.Logger
}

type echoKey struct{}

type echoStart struct {
	sql   string
	start time.Time
}

// TraceQueryStart implements pgx.QueryTracer.
func (t *echoTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, echoKey{}, echoStart{sql: data.SQL, start: time.Now()})
}

// TraceQueryEnd implements pgx.QueryTracer.
func (t *echoTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	s, _ := ctx.Value(echoKey{}).(echoStart)
	attrs := []slog.Attr{
		slog.String("sql", s.sql),
		slog.Duration("duration", time.Since(s.start)),
		slog.String("command_tag", data.CommandTag.String()),
	}
	if data.Err != nil {
		attrs = append(attrs, slog.String("error", data.Err.Error()))
	}
	t.logger.LogAttrs(ctx, slog.LevelDebug, "sql", attrs...)
}

type echoBatchKey struct{}

// TraceBatchStart implements pgx.BatchTracer: a batch (the refresh
// rotation's) is one round trip and is logged as one record, its
// statements in order.
func (t *echoTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	var stmts []string
	if data.Batch != nil {
		for _, q := range data.Batch.QueuedQueries {
			stmts = append(stmts, q.SQL)
		}
	}
	return context.WithValue(ctx, echoBatchKey{}, echoStart{sql: strings.Join(stmts, ";\n"), start: time.Now()})
}

// TraceBatchQuery implements pgx.BatchTracer; the batch is logged at its end.
func (*echoTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd implements pgx.BatchTracer.
func (t *echoTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	s, _ := ctx.Value(echoBatchKey{}).(echoStart)
	attrs := []slog.Attr{
		slog.String("sql", s.sql),
		slog.Duration("duration", time.Since(s.start)),
		slog.Bool("batch", true),
	}
	if data.Err != nil {
		attrs = append(attrs, slog.String("error", data.Err.Error()))
	}
	t.logger.LogAttrs(ctx, slog.LevelDebug, "sql", attrs...)
}

// op tells mapErr what a foreign-key violation means for the statement.
type op int

const (
	opRead   op = iota
	opWrite     // insert or link: a missing referenced row is ErrNotFound
	opDelete    // delete: a row still referenced is ErrConflict
)

// mapErr converts a driver error to a domain error whose caller-safe message
// names only what (e.g. "user"), keeping the driver error as the cause.
func mapErr(err error, what string, o op) error {
	if err == nil {
		return nil
	}
	var pe *permiso.Error
	if errors.As(err, &pe) {
		return err
	}
	msgs := sqlstore.MessagesFor(what)
	if errors.Is(err, pgx.ErrNoRows) {
		return permiso.Wrap(permiso.ENOTFOUND, msgs.NotFound, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			switch pgErr.ConstraintName {
			case "idx_users_username":
				return permiso.Wrap(permiso.EEXISTS, sqlstore.UsernameTakenMessage, err)
			case "idx_users_email":
				return permiso.Wrap(permiso.EEXISTS, sqlstore.EmailTakenMessage, err)
			}
			return permiso.Wrap(permiso.EEXISTS, msgs.Exists, err)
		case "23503": // foreign_key_violation
			if o == opDelete {
				return permiso.Wrap(permiso.ECONFLICT, msgs.InUse, err)
			}
			return permiso.Wrap(permiso.ENOTFOUND, sqlstore.ReferenceMissingMessage, err)
		case "23514", "23502", "22001", "22P02": // check, not null, too long, bad text
			return permiso.Wrap(permiso.EINVALID, "invalid "+what, err)
		case "40001", "40P01": // serialization failure, deadlock
			return permiso.Wrap(permiso.ECONFLICT, "concurrent update of "+what+", retry", err)
		}
	}
	if unavailable(err) {
		return permiso.Wrap(permiso.EUNAVAILABLE, "database unavailable", err)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// connectionLost reports whether err says that an established connection
// is gone: the server ended it (pg_terminate_backend, a restart, a
// failover: SQLSTATE 57P01, 57P02 or class 08) or it broke (EOF, reset,
// closed). Nothing more can happen on that connection; pgxpool drops it
// when it is released, so the next statement gets another one. A
// connection that could not be made at all is not "lost": trying again at
// once would wait for the same server.
func connectionLost(err error) bool {
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02": // admin_shutdown, crash_shutdown
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	return errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// unavailable reports whether err means that the database cannot answer
// now, so that the caller should retry later (EUNAVAILABLE, answered 503
// with Retry-After): the connection is lost or cannot be made, the server
// is starting or shutting down (57P03), has no connection slot left
// (53300) or cancelled the statement (57014, statement_timeout), or the
// network or the statement timed out.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "53300", "57014", "57P03":
			return true
		}
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return connectionLost(err) || errors.As(err, &connErr) || errors.As(err, &netErr) ||
		pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded)
}

// sentTimeout bounds a statement sent without its request's cancellation
// (sent).
const sentTimeout = 5 * time.Second

// sent returns the context of a write whose outcome the caller must know
// whatever becomes of the request ctx: ctx's values without its
// cancellation, bounded by sentTimeout. pgx cannot take back a statement
// it has sent: cancelling its context makes it stop reading the answer
// (and, at most, asks the server to cancel), while PostgreSQL may run the
// statement to its commit all the same (an attack measured most of the
// rotations whose clients hung up within milliseconds as committed). A
// write on the request's context could thus end with the cancellation
// and yet have committed, and what the caller takes back when its
// request ended (undoAbandoned, the service's compensations) would not
// be taken back. Sent on this context, the write answers what it did; the
// caller reads ctx afterwards.
func sent(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), sentTimeout)
}

// inTx runs fn in one transaction, committing when it returns nil. A
// BEGIN that finds its connection lost (one the server ended while it sat
// in the pool) is sent again on another connection: nothing has run yet.
// Any later loss is answered EUNAVAILABLE and not retried here, since a
// COMMIT whose answer was lost may have been applied.
//
// The COMMIT is sent only while ctx lasts (a request that ended before it
// rolls back and gets ctx's error), and once sent it runs without ctx's
// cancellation (sent): cancelled on the way, it could be committed by
// PostgreSQL while its caller got the cancellation, and the caller, told
// that nothing was written, would not take back what was (an unconfirmed
// login's session, a rotation; docs/security-model.md, "Refresh token
// reuse"). Its answer is thus what PostgreSQL did; a caller whose request
// ended meanwhile finds that out from ctx, as when the client goes away
// just after the COMMIT's answer.
func (db *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := db.begin(ctx)
	if err != nil {
		return mapErr(err, "transaction", opRead)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		// Already mapped by the statement that failed (sqlstore), or the
		// caller's own error: returned as it is.
		return err
	}
	if err := ctx.Err(); err != nil {
		return mapErr(err, "transaction", opWrite)
	}
	cctx, cancel := sent(ctx)
	defer cancel()
	if err := tx.Commit(cctx); err != nil {
		return mapErr(err, "transaction", opWrite)
	}
	return nil
}

// begin starts a transaction, again on another connection while BEGIN
// finds its connection lost, at most as many times as the pool has
// connections (each lost one is dropped from the pool on release).
func (db *DB) begin(ctx context.Context) (pgx.Tx, error) {
	for attempt := 0; ; attempt++ {
		tx, err := db.pool.Begin(ctx)
		if err == nil || !connectionLost(err) || attempt >= int(db.cfg.MaxConns) || ctx.Err() != nil {
			return tx, err
		}
	}
}

// querier is what pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ts normalizes a time for storage: UTC, truncated to the microsecond
// precision of TIMESTAMPTZ, so the value returned by a create equals the
// value read back later.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// now returns the current time as stored.
func now() time.Time { return ts(time.Now()) }

// pooled runs single statements on the pool (the querier of every method
// that needs no transaction). A statement whose connection turns out lost
// (the server ended it while it sat idle in the pool) is sent again on
// another connection when that is safe: it is a SELECT, which changes
// nothing, or pgx knows that nothing reached the server. A write whose
// connection broke after it was sent is not repeated, since it may have
// been applied; the caller gets EUNAVAILABLE (503 with Retry-After).
type pooled struct {
	pool *pgxpool.Pool
}

var _ querier = pooled{}

// retry reports whether sql, failed with err on attempt (from 0), is sent
// again: at most once per connection the pool may hold.
func (p pooled) retry(ctx context.Context, sql string, err error, attempt int) bool {
	if !connectionLost(err) || ctx.Err() != nil || attempt >= int(p.pool.Config().MaxConns) {
		return false
	}
	return readOnly(sql) || pgconn.SafeToRetry(err)
}

// readOnly reports whether sql is a plain SELECT.
func readOnly(sql string) bool {
	s := strings.TrimLeft(sql, " \t\r\n")
	return len(s) > 6 && strings.EqualFold(s[:6], "SELECT") && strings.ContainsRune(" \t\r\n", rune(s[6]))
}

func (p pooled) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	for attempt := 0; ; attempt++ {
		tag, err := p.pool.Exec(ctx, sql, args...)
		if err == nil || !p.retry(ctx, sql, err, attempt) {
			return tag, err
		}
	}
}

func (p pooled) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	for attempt := 0; ; attempt++ {
		rows, err := p.pool.Query(ctx, sql, args...)
		if err == nil || !p.retry(ctx, sql, err, attempt) {
			return rows, err
		}
	}
}

func (p pooled) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return pooledRow{p: p, ctx: ctx, sql: sql, args: args}
}

// pooledRow runs its statement when scanned, so that a lost connection can
// be retried (pgx reports it only from Scan).
type pooledRow struct {
	p    pooled
	ctx  context.Context
	sql  string
	args []any
}

func (r pooledRow) Scan(dest ...any) error {
	for attempt := 0; ; attempt++ {
		err := r.p.pool.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
		if err == nil || !r.p.retry(r.ctx, r.sql, err, attempt) {
			return err
		}
	}
}
