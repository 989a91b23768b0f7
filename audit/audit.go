// Package audit writes audit events off the request path: Record queues an
// event and returns at once; a background loop writes queued events in
// batches, at least every flush interval (100 ms by default) and on Close,
// so a graceful stop loses nothing.
package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Defaults of the writer.
const (
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultBatchSize     = 256
	DefaultQueueSize     = 8192
)

// Options configure a Writer.
type Options struct {
	FlushInterval time.Duration
	BatchSize     int
	// QueueSize bounds the events waiting to be written. When the queue is
	// full (the database is down for long), Record drops the event and
	// logs it at error level: requests never block on the audit log.
	QueueSize int
	Logger    *slog.Logger
	Now       func() time.Time
}

// Writer is a batching permiso.Auditor.
type Writer struct {
	store permiso.AuditStore
	opts  Options
	queue chan permiso.AuditEvent
	done  chan struct{}
	once  sync.Once
}

var _ permiso.Auditor = (*Writer)(nil)

// New starts a Writer over store. Call Close to flush and stop it.
func New(store permiso.AuditStore, opts Options) *Writer {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w := &Writer{store: store, opts: opts, queue: make(chan permiso.AuditEvent, opts.QueueSize), done: make(chan struct{})}
	go w.loop()
	return w
}

// Record queues e. It fills in the id and time when they are zero.
func (w *Writer) Record(_ context.Context, e permiso.AuditEvent) {
	if e.ID == uuid.Nil {
		e.ID = uuid.Must(uuid.NewV7())
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = w.opts.Now()
	}
	e.OccurredAt = e.OccurredAt.UTC()
	select {
	case w.queue <- e:
	default:
		w.opts.Logger.Error("audit queue full; event dropped", "action", e.Action, "result", e.Result)
	}
}

// Close writes every queued event and stops the writer. Record must not be
// called after Close.
func (w *Writer) Close() {
	w.once.Do(func() { close(w.queue) })
	<-w.done
}

func (w *Writer) loop() {
	defer close(w.done)
	ticker := time.NewTicker(w.opts.FlushInterval)
	defer ticker.Stop()
	batch := make([]permiso.AuditEvent, 0, w.opts.BatchSize)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.store.AppendAuditEvents(ctx, batch); err != nil {
			w.opts.Logger.Error("audit events not written", "count", len(batch), "error", err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case e, ok := <-w.queue:
			if !ok {
				flush()
				return
			}
			batch = append(batch, e)
			if len(batch) >= w.opts.BatchSize {
				flush()
			}
		case <-ticker.C:
			flush()
		}
	}
}
