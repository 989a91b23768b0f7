package sqlite

import "context"

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
