package postgres

import (
	"testing"

	"github.com/google/uuid"
)

// TestUUIDBinary: with registerUUID, uuid.UUID values travel as
// PostgreSQL's binary uuid both ways, NULL included, and one sent to a text
// parameter is still its canonical string.
func TestUUIDBinary(t *testing.T) {
	db := newTestDB(t)
	ctx := t.Context()
	id := uuid.New()
	var (
		back     uuid.UUID
		null     *uuid.UUID
		notNull  *uuid.UUID
		kept     = id
		asText   string
		fromText uuid.UUID
	)
	err := db.pool.QueryRow(ctx, `SELECT $1::uuid, NULL::uuid, $1::uuid, NULL::uuid, $2::text, $3::text::uuid`,
		id, id, id.String()).Scan(&back, &null, &notNull, &kept, &asText, &fromText)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case back != id:
		t.Errorf("round trip: %s, want %s", back, id)
	case null != nil:
		t.Errorf("NULL into *uuid.UUID: %v, want nil", null)
	case notNull == nil || *notNull != id:
		t.Errorf("into *uuid.UUID: %v, want %s", notNull, id)
	case kept != id:
		t.Errorf("NULL into uuid.UUID changed it to %s (uuid.UUID.Scan leaves it)", kept)
	case asText != id.String():
		t.Errorf("as text: %q, want %q", asText, id.String())
	case fromText != id:
		t.Errorf("from text: %s, want %s", fromText, id)
	}
}
