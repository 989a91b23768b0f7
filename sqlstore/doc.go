// Package sqlstore is the one SQL implementation of permiso.Store shared by
// the sqlite and postgres backends: what each entity's columns are, and the
// statements built from that description, over a Dialect that says how a
// backend writes placeholders, times, id lists, upserts and row locks.
// See docs/architecture.md, "Storage: one shape over two dialects".
package sqlstore
