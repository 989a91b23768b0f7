package postgres

import (
	"encoding/binary"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// TestUUIDBinary: with registerTypes, uuid.UUID values travel as
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

// TestScanPlans: a connection reads binary uuid and timestamptz values
// into *uuid.UUID, **uuid.UUID, *time.Time and **time.Time, and text into
// **string, with the plans of its registered codecs (uuidCodec,
// timestamptzCodec, textCodec), not with
// pgx's per-query ones (a uuid through uuid.UUID's sql.Scanner, as
// text), and reads exactly what pgx's default type map reads: the same
// value, NULL and the infinities and a wrong length included, an error
// where pgx gives one.
func TestScanPlans(t *testing.T) {
	db := newTestDB(t)
	conn, err := db.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	m, pgx := conn.Conn().TypeMap(), pgtype.NewMap()
	bin := int16(pgtype.BinaryFormatCode)
	var (
		u  uuid.UUID
		pu *uuid.UUID
		tm time.Time
		pt *time.Time
	)
	if plan := m.PlanScan(pgtype.UUIDOID, bin, &u); plan != (uuidBinaryScan{}) {
		t.Errorf("plan for *uuid.UUID: %T, want uuidBinaryScan", plan)
	}
	if plan := m.PlanScan(pgtype.UUIDOID, bin, &pu); plan != (uuidBinaryScanNullable{}) {
		t.Errorf("plan for **uuid.UUID: %T, want uuidBinaryScanNullable", plan)
	}
	for _, format := range []int16{pgtype.BinaryFormatCode, pgtype.TextFormatCode} {
		var ps *string
		if plan := m.PlanScan(pgtype.TextOID, format, &ps); plan != (stringScanNullable{}) {
			t.Errorf("plan for **string, format %d: %T, want stringScanNullable", format, plan)
		}
	}
	if _, ok := m.PlanScan(pgtype.TimestamptzOID, bin, &tm).(*timeScan); !ok {
		t.Errorf("plan for *time.Time: %T, want *timeScan", m.PlanScan(pgtype.TimestamptzOID, bin, &tm))
	}
	if _, ok := m.PlanScan(pgtype.TimestamptzOID, bin, &pt).(*timeScanNullable); !ok {
		t.Errorf("plan for **time.Time: %T, want *timeScanNullable", m.PlanScan(pgtype.TimestamptzOID, bin, &pt))
	}

	id := uuid.New()
	at := time.Date(2026, 12, 6, 23, 45, 1, 123456000, time.UTC)
	micros := func(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
	y2k := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, src := range [][]byte{id[:], nil, {1, 2, 3}, micros(at.Sub(y2k).Microseconds()), micros(math.MaxInt64), micros(math.MinInt64)} {
		for _, c := range []struct {
			oid    uint32
			target func() any
		}{
			{pgtype.UUIDOID, func() any { v := id; return &v }},
			{pgtype.UUIDOID, func() any { v := &id; return &v }},
			{pgtype.UUIDOID, func() any { var v *uuid.UUID; return &v }},
			{pgtype.TimestamptzOID, func() any { v := at; return &v }},
			{pgtype.TimestamptzOID, func() any { v := &at; return &v }},
			{pgtype.TextOID, func() any { v := "kept"; return &v }},
			{pgtype.TextOID, func() any { v := "kept"; p := &v; return &p }},
		} {
			if c.oid == pgtype.UUIDOID && len(src) == 8 || c.oid == pgtype.TimestamptzOID && len(src) == 16 {
				continue // not a value of the type
			}
			ours, theirs := c.target(), c.target()
			errOurs, errTheirs := m.Scan(c.oid, bin, src, ours), pgx.Scan(c.oid, bin, src, theirs)
			if (errOurs == nil) != (errTheirs == nil) {
				t.Errorf("%d %x into %T: error %v, pgx's %v", c.oid, src, ours, errOurs, errTheirs)
			}
			if errTheirs == nil && !equalDeref(ours, theirs) {
				t.Errorf("%d %x into %T: %v, pgx's %v", c.oid, src, ours, deref(ours), deref(theirs))
			}
		}
	}
}

// deref is what target points to, and what that points to when it is a
// pointer itself ("<nil>" for nil).
func deref(target any) any {
	v := reflect.ValueOf(target).Elem()
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "<nil>"
		}
		v = v.Elem()
	}
	return v.Interface()
}

func equalDeref(a, b any) bool {
	x, y := deref(a), deref(b)
	if tx, ok := x.(time.Time); ok {
		ty, ok := y.(time.Time)
		return ok && tx.Equal(ty)
	}
	return x == y
}
