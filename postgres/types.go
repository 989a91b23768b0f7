package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// registerTypes makes a connection send and read uuid.UUID values as
// PostgreSQL's 16-byte binary uuid. Without it pgx takes uuid.UUID for a
// driver.Valuer and a sql.Scanner: every identifier argument became its
// 36-character string and was parsed back, and every identifier read
// went through text, which was about 7 % of the server's CPU on the
// refresh path (docs/benchmarks.md, "Where the time goes").
//
// Arguments: a wrapper tried before pgx's generic ones (the approach of
// pgx's own adapters for other UUID types), for uuid.UUID only. A value
// pgx cannot send as a uuid (a text parameter) still falls back to its
// driver.Valuer, the same string as before.
//
// Reads: pgx plans a sql.Scanner destination (which *uuid.UUID is)
// before it tries any wrapper, so the uuid type is registered again with
// uuidCodec, whose scan plans read the binary value straight into a
// *uuid.UUID or a **uuid.UUID (docs/benchmarks.md, "The refresh path").
// timestamptz is registered again too, with timestamptzCodec: pgx plans
// every column of every query again (a plan and a wrapper allocated per
// time column, and a pointer's plan more for a nullable one), which was
// about a tenth of a refresh's allocations. text is registered again
// with textCodec for nullable text columns (**string), for the same
// reason.
func registerTypes(_ context.Context, conn *pgx.Conn) error {
	m := conn.TypeMap()
	if t, ok := m.TypeForOID(pgtype.UUIDOID); ok {
		m.RegisterType(&pgtype.Type{Name: t.Name, OID: t.OID, Codec: uuidCodec{t.Codec}})
	}
	if t, ok := m.TypeForOID(pgtype.TimestamptzOID); ok {
		var probe timeDest
		if next := t.Codec.PlanScan(m, t.OID, pgtype.BinaryFormatCode, &probe); next != nil {
			m.RegisterType(&pgtype.Type{Name: t.Name, OID: t.OID,
				Codec: timestamptzCodec{Codec: t.Codec, scan: &timeScan{next}, nullable: &timeScanNullable{next}}})
		}
	}
	if t, ok := m.TypeForOID(pgtype.TextOID); ok {
		m.RegisterType(&pgtype.Type{Name: t.Name, OID: t.OID, Codec: textCodec{t.Codec}})
	}
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapUUIDEncode}, m.TryWrapEncodePlanFuncs...)
	return nil
}

func tryWrapUUIDEncode(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if u, ok := value.(uuid.UUID); ok {
		return &uuidEncodePlan{}, pgtype.UUID{Bytes: u, Valid: true}, true
	}
	return nil, nil, false
}

type uuidEncodePlan struct{ next pgtype.EncodePlan }

func (p *uuidEncodePlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *uuidEncodePlan) Encode(value any, buf []byte) ([]byte, error) {
	return p.next.Encode(pgtype.UUID{Bytes: value.(uuid.UUID), Valid: true}, buf)
}

// uuidCodec is the uuid type's codec (pgtype.UUIDCodec) with binary scan
// plans of its own for *uuid.UUID and **uuid.UUID destinations. They
// read what uuid.UUID's Scan reads: a NULL leaves a uuid.UUID unchanged
// and sets a *uuid.UUID to nil (pgx's plan for pointers to pointers).
// Anything else (the text format, other destinations) is the wrapped
// codec's, or falls through to uuid.UUID's Scan as before.
type uuidCodec struct{ pgtype.Codec }

func (c uuidCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if format == pgtype.BinaryFormatCode {
		switch target.(type) {
		case *uuid.UUID:
			return uuidBinaryScan{}
		case **uuid.UUID:
			return uuidBinaryScanNullable{}
		}
	}
	return c.Codec.PlanScan(m, oid, format, target)
}

// uuidBinaryScan reads a binary uuid into a *uuid.UUID.
type uuidBinaryScan struct{}

func (uuidBinaryScan) Scan(src []byte, dst any) error {
	if src == nil {
		return nil
	}
	return readUUID(src, dst.(*uuid.UUID))
}

// uuidBinaryScanNullable reads a binary uuid into a **uuid.UUID: nil for
// NULL, else a new uuid.UUID.
type uuidBinaryScanNullable struct{}

func (uuidBinaryScanNullable) Scan(src []byte, dst any) error {
	p := dst.(**uuid.UUID)
	if src == nil {
		*p = nil
		return nil
	}
	u := new(uuid.UUID)
	if err := readUUID(src, u); err != nil {
		return err
	}
	*p = u
	return nil
}

func readUUID(src []byte, u *uuid.UUID) error {
	if len(src) != len(u) {
		return fmt.Errorf("invalid length for UUID: %v", len(src))
	}
	copy(u[:], src)
	return nil
}

// timestamptzCodec is the timestamptz type's codec with one binary scan
// plan, made once per connection, for *time.Time and **time.Time
// destinations: pgx's own binary plan (next) into timeDest, which reads
// what pgx's *time.Time wrapper reads (a NULL or an infinity is an error;
// a NULL into **time.Time is nil, as pgx's plan for pointers to pointers
// makes it). Anything else is the wrapped codec's.
type timestamptzCodec struct {
	pgtype.Codec
	scan     *timeScan
	nullable *timeScanNullable
}

func (c timestamptzCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if format == pgtype.BinaryFormatCode {
		switch target.(type) {
		case *time.Time:
			return c.scan
		case **time.Time:
			return c.nullable
		}
	}
	return c.Codec.PlanScan(m, oid, format, target)
}

type timeScan struct{ next pgtype.ScanPlan }

func (p *timeScan) Scan(src []byte, dst any) error {
	return p.next.Scan(src, (*timeDest)(dst.(*time.Time)))
}

type timeScanNullable struct{ next pgtype.ScanPlan }

func (p *timeScanNullable) Scan(src []byte, dst any) error {
	pp := dst.(**time.Time)
	if src == nil {
		*pp = nil
		return nil
	}
	t := new(time.Time)
	if err := p.next.Scan(src, (*timeDest)(t)); err != nil {
		return err
	}
	*pp = t
	return nil
}

// timeDest is a *time.Time as pgtype.TimestamptzScanner, with the
// errors of pgx's own wrapper.
type timeDest time.Time

func (d *timeDest) ScanTimestamptz(v pgtype.Timestamptz) error {
	switch {
	case !v.Valid:
		return fmt.Errorf("cannot scan NULL into *time.Time")
	case v.InfinityModifier == pgtype.Infinity:
		return fmt.Errorf("cannot scan Infinity into *time.Time")
	case v.InfinityModifier == pgtype.NegativeInfinity:
		return fmt.Errorf("cannot scan -Infinity into *time.Time")
	case v.InfinityModifier != pgtype.Finite:
		return fmt.Errorf("invalid InfinityModifier: %v", v.InfinityModifier)
	}
	*d = timeDest(v.Time)
	return nil
}

// textCodec is the text type's codec with one scan plan for **string
// destinations (a nullable text column): nil for NULL, else the bytes
// as a new string, as pgx's plans for pointers to pointers and for
// strings read it, in either format. Anything else is the wrapped
// codec's (a *string destination never reaches a codec: pgx reads it
// first).
type textCodec struct{ pgtype.Codec }

func (c textCodec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(**string); ok {
		return stringScanNullable{}
	}
	return c.Codec.PlanScan(m, oid, format, target)
}

type stringScanNullable struct{}

func (stringScanNullable) Scan(src []byte, dst any) error {
	p := dst.(**string)
	if src == nil {
		*p = nil
		return nil
	}
	v := string(src)
	*p = &v
	return nil
}
