package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"runtime"
)

// ExecForTest runs raw SQL on the writer, for tests only.
func (db *DB) ExecForTest(ctx context.Context, query string) error {
	_, err := db.w().exec(ctx, query)
	return err
}

// PragmaForTest returns the value of a pragma on the writer and on a reader.
func (db *DB) PragmaForTest(ctx context.Context, name string) (writer, reader string, err error) {
	if err = db.w().queryRow(ctx, "PRAGMA "+name).Scan(&writer); err != nil {
		return
	}
	err = db.r().queryRow(ctx, "PRAGMA "+name).Scan(&reader)
	return
}

// CutOffCommitForTest runs a write transaction whose context is cancelled
// (as net/http cancels a request's when its client goes away) after its
// statement ran and before its commit, once database/sql has rolled it
// back, and returns the transaction's error.
func (db *DB) CutOffCommitForTest(ctx context.Context, query string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	return db.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, query); err != nil {
			return err
		}
		cancel()
		// database/sql rolls the transaction back in a goroutine of its
		// own when ctx ends; a statement on another context finds the
		// transaction done once it has.
		for {
			if _, err := c.tx.ExecContext(context.Background(), "SELECT 1"); errors.Is(err, sql.ErrTxDone) {
				return nil
			}
			runtime.Gosched()
		}
	})
}
