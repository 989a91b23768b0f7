package postgres

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// registerUUID makes a connection send and read uuid.UUID values as
// PostgreSQL's 16-byte binary uuid. Without it pgx takes uuid.UUID for a
// driver.Valuer and a sql.Scanner: every identifier argument became its
// 36-character string and was parsed back, and every identifier read
// went through text, which was about 7 % of the server's CPU on the
// refresh path (docs/benchmarks.md, "Where the time goes"). It is the
// approach of pgx's own adapters for other UUID types: a wrapper tried
// before pgx's generic ones, for uuid.UUID only. A value pgx cannot send
// as a uuid (a text parameter) still falls back to its driver.Valuer,
// the same string as before.
func registerUUID(_ context.Context, conn *pgx.Conn) error {
	m := conn.TypeMap()
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapUUIDEncode}, m.TryWrapEncodePlanFuncs...)
	m.TryWrapScanPlanFuncs = append([]pgtype.TryWrapScanPlanFunc{tryWrapUUIDScan}, m.TryWrapScanPlanFuncs...)
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

func tryWrapUUIDScan(target any) (pgtype.WrappedScanPlanNextSetter, any, bool) {
	if u, ok := target.(*uuid.UUID); ok {
		return &uuidScanPlan{}, (*uuidDest)(u), true
	}
	return nil, nil, false
}

type uuidScanPlan struct{ next pgtype.ScanPlan }

func (p *uuidScanPlan) SetNext(next pgtype.ScanPlan) { p.next = next }

func (p *uuidScanPlan) Scan(src []byte, dst any) error {
	return p.next.Scan(src, (*uuidDest)(dst.(*uuid.UUID)))
}

// uuidDest is a *uuid.UUID as pgtype.UUIDScanner. A NULL leaves it
// unchanged, as uuid.UUID's Scan does.
type uuidDest uuid.UUID

func (d *uuidDest) ScanUUID(v pgtype.UUID) error {
	if v.Valid {
		*d = v.Bytes
	}
	return nil
}
