package postgres

import (
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// BenchmarkAuditBatch is the store's part of the audit events of client
// credentials tokens on PostgreSQL: the audit writer's batches of 256
// token.issue events (audit.DefaultBatchSize), each as
// oauth2.Service.issueService records it (docs/benchmarks.md, "Client
// credentials: the audit insert"). It reports, per event, the CPU time of
// this process (cpu-ns/event) and of the PostgreSQL server process of its
// one connection (server-cpu-ns/event, read from /proc when the server
// runs on this machine), which a busy shared machine disturbs much less
// than the time.
func BenchmarkAuditBatch(b *testing.B) {
	const batch = 256
	db, pid := oneConnDB(b)
	ctx := b.Context()
	client, ip, ua := "load-client-1", "192.0.2.1", "permiso-load/1"
	events := make([]permiso.AuditEvent, batch)
	n := 0
	server, self := processCPU(pid), processCPU(os.Getpid())
	for b.Loop() {
		now := time.Now().UTC()
		for i := range events {
			rid := uuid.NewString()
			events[i] = permiso.AuditEvent{ID: uuid.Must(uuid.NewV7()), OccurredAt: now, ActorType: "client", ActorID: &client,
				Action: "token.issue", Result: "success", IPAddress: &ip, UserAgent: &ua, RequestID: &rid,
				Details: map[string]any{"grant_type": "client_credentials", "scopes": []any{"read:users", "write:users"}}}
		}
		if err := db.AppendAuditEvents(ctx, events); err != nil {
			b.Fatal(err)
		}
		n += batch
	}
	if server >= 0 && self >= 0 {
		b.ReportMetric(float64(processCPU(pid)-server)/float64(n), "server-cpu-ns/event")
		b.ReportMetric(float64(processCPU(os.Getpid())-self)/float64(n), "cpu-ns/event")
	}
}
