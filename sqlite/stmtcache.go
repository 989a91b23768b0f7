package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// maxCachedStmts bounds the statement cache. permiso's statements are a
// fixed set written in the code (a few hundred at most, counting the
// variants that list filters build); a query beyond the bound runs
// uncached, as it would without the cache.
const maxCachedStmts = 512

// stmtCache keeps one prepared *sql.Stmt per (pool, query text).
// database/sql prepares a Stmt lazily on each connection it runs on and
// keeps it there, and Tx.StmtContext reuses the connection's copy, so each
// statement is compiled once per connection instead of once per call.
// SQLite recompiles a prepared statement by itself when the schema changes
// (sqlite3_prepare_v2), so migrations need no invalidation.
type stmtCache struct {
	mu      sync.Mutex
	stmts   map[stmtKey]*sql.Stmt
	pending map[stmtKey]struct{}
	closed  bool
	wg      sync.WaitGroup
}

type stmtKey struct {
	pool  *sql.DB
	query string
}

// get returns the statement for query on pool, or nil on a miss: the
// caller then runs the query directly, and the statement is prepared in
// the background for the next call. It is never prepared on the caller's
// path because the caller may hold the pool's only connection (the
// writer, or the one connection of ":memory:") inside a transaction,
// and DB.PrepareContext waits for a free connection.
func (c *stmtCache) get(pool *sql.DB, query string) *sql.Stmt {
	k := stmtKey{pool, query}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[k]; ok {
		return st
	}
	if c.closed || len(c.stmts)+len(c.pending) >= maxCachedStmts {
		return nil
	}
	if _, ok := c.pending[k]; ok {
		return nil
	}
	if c.pending == nil {
		c.pending = make(map[stmtKey]struct{})
		c.stmts = make(map[stmtKey]*sql.Stmt)
	}
	c.pending[k] = struct{}{}
	c.wg.Go(func() { c.prepare(k) })
	return nil
}

// prepare prepares k's statement once a connection is free. A statement
// that fails to prepare (a syntax error shows on the caller's own run) is
// not retried.
func (c *stmtCache) prepare(k stmtKey) {
	st, err := k.pool.PrepareContext(context.Background(), k.query)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		return // stays pending: never retried
	}
	delete(c.pending, k)
	if c.closed {
		_ = st.Close()
		return
	}
	c.stmts[k] = st
}

// close closes every cached statement and waits for the preparations in
// flight; later gets return nil. It runs before the pools close, so no
// preparation is left waiting for a connection.
func (c *stmtCache) close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	for k, st := range c.stmts {
		err = errors.Join(err, st.Close())
		delete(c.stmts, k)
	}
	return err
}
