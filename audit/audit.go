// Package audit writes audit events off the request path (docs/audit.md).
//
// Record cleans an event (Clean: every string made storable by every
// backend) and queues it; a background loop writes queued events in
// batches, at least every flush interval (100 ms by default) and on Close.
//
//   - A batch the store refuses is written again event by event, so only
//     an event that still cannot be stored is lost; that event is logged
//     whole at error level and counted (Observer.Failed).
//   - While the store is unreachable (its Ping fails too) the batch is
//     kept and retried with backoff; the loop reads no more events
//     meanwhile, so the queue is the bound of what waits.
//   - When the queue is full, Record waits for room up to MaxWait (2 s by
//     default); only then is the event dropped, logged whole and counted
//     (Observer.Dropped). A flood of events slows the requests that record
//     them instead of pushing other events out.
//   - Close writes what is queued; while the store is unreachable it keeps
//     trying for CloseTimeout and then logs whole what is left.
package audit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
)

// Defaults of the writer.
const (
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultBatchSize     = 256
	DefaultQueueSize     = 8192
	DefaultMaxWait       = 2 * time.Second
	DefaultCloseTimeout  = 5 * time.Second
	DefaultRetryBackoff  = 100 * time.Millisecond
	// MaxRetryBackoff caps the backoff between attempts while the store is
	// unreachable.
	MaxRetryBackoff = 5 * time.Second
	// writeTimeout bounds one store call; pingTimeout one liveness check.
	writeTimeout = 10 * time.Second
	pingTimeout  = 2 * time.Second
)

// Options configure a Writer. Zero values take the defaults.
type Options struct {
	FlushInterval time.Duration
	BatchSize     int
	// QueueSize bounds the events waiting to be written.
	QueueSize int
	// MaxWait bounds how long Record waits for room in a full queue before
	// it drops the event. The request's context does not shorten it: a
	// client that hangs up must not be able to go unrecorded.
	MaxWait time.Duration
	// CloseTimeout bounds how long Close keeps retrying while the store is
	// unreachable; what is still unwritten then is logged whole.
	CloseTimeout time.Duration
	// RetryBackoff is the first pause before writing again to an
	// unreachable store; it doubles up to MaxRetryBackoff.
	RetryBackoff time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
	// Observer, when set, is told what happens to events (metrics).
	Observer Observer
}

// Observer receives the writer's counts; metrics.AuditWriter implements
// it. Methods are called from several goroutines.
type Observer interface {
	// Waited reports a Record that found the queue full and waited d for
	// room; queued tells whether it got room (else the event was dropped).
	Waited(d time.Duration, queued bool)
	// Written counts events stored.
	Written(n int)
	// Failed counts events that could not be stored and were logged whole.
	Failed(n int)
	// Dropped counts events never queued (the queue stayed full for
	// MaxWait, or the writer was closed) and logged whole.
	Dropped(n int)
}

// Pinger is what the writer asks, after a failed write, whether the store
// is reachable at all. permiso.Store has it; a store without it is taken
// as reachable unless the error says otherwise.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Writer is a batching permiso.Auditor.
type Writer struct {
	store permiso.AuditStore
	opts  Options
	obs   Observer
	queue chan permiso.AuditEvent

	// mu orders Record against Close: Record holds it shared while it
	// queues (waits included), Close exclusively to set closed, so that no
	// event enters the queue after the loop has drained it.
	mu      sync.RWMutex
	closed  bool
	waiting atomic.Int64

	closing chan struct{} // closed by Close
	// stop is cancelled CloseTimeout after Close: store calls and retries
	// give up then.
	stop       context.Context
	cancelStop context.CancelFunc
	done       chan struct{}
	once       sync.Once
}

var _ permiso.Auditor = (*Writer)(nil)

// New starts a Writer over store. Call Close to flush and stop it.
func New(store permiso.AuditStore, opts Options) *Writer {
	permiso.SetDefault(&opts.FlushInterval, DefaultFlushInterval)
	permiso.SetDefault(&opts.BatchSize, DefaultBatchSize)
	permiso.SetDefault(&opts.QueueSize, DefaultQueueSize)
	permiso.SetDefault(&opts.MaxWait, DefaultMaxWait)
	permiso.SetDefault(&opts.CloseTimeout, DefaultCloseTimeout)
	permiso.SetDefault(&opts.RetryBackoff, DefaultRetryBackoff)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	obs := opts.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	stop, cancel := context.WithCancel(context.Background())
	w := &Writer{store: store, opts: opts, obs: obs, queue: make(chan permiso.AuditEvent, opts.QueueSize),
		closing: make(chan struct{}), stop: stop, cancelStop: cancel, done: make(chan struct{})}
	go w.loop()
	return w
}

// Record cleans e (Clean) and queues it. It fills in the id and time when
// they are zero. When the queue is full it waits up to MaxWait for room;
// if none comes, or the writer is closed, the event is logged whole at
// error level and counted as dropped. It never fails the request.
func (w *Writer) Record(_ context.Context, e permiso.AuditEvent) {
	if e.ID == uuid.Nil {
		e.ID = uuid.Must(uuid.NewV7())
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = w.opts.Now()
	}
	e.OccurredAt = e.OccurredAt.UTC()
	e = Clean(e)

	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.drop(e, "audit writer closed; event dropped")
		return
	}
	select {
	case w.queue <- e:
		return
	default:
	}
	// Full: wait for the loop to make room. Senders blocked on a channel
	// are served in arrival order, so a flood does not overtake an event
	// that was already waiting.
	w.waiting.Add(1)
	defer w.waiting.Add(-1)
	start := time.Now()
	timer := time.NewTimer(w.opts.MaxWait)
	defer timer.Stop()
	select {
	case w.queue <- e:
		w.obs.Waited(time.Since(start), true)
	case <-timer.C:
		w.obs.Waited(time.Since(start), false)
		w.drop(e, "audit queue full; event dropped")
	}
}

// Queued returns the events waiting in the queue, the queue's capacity
// and the Record calls now waiting for room.
func (w *Writer) Queued() (queued, capacity, waiting int) {
	return len(w.queue), cap(w.queue), int(w.waiting.Load())
}

// Close writes every queued event and stops the writer. While the store is
// unreachable it retries for at most CloseTimeout, then logs whole what is
// left. Record calls still waiting for room finish first (at most
// MaxWait); a Record after Close logs its event whole and counts it as
// dropped.
func (w *Writer) Close() {
	w.once.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		t := time.AfterFunc(w.opts.CloseTimeout, w.cancelStop)
		defer t.Stop()
		close(w.closing)
		<-w.done
	})
	<-w.done
}

func (w *Writer) loop() {
	defer close(w.done)
	defer w.cancelStop()
	ticker := time.NewTicker(w.opts.FlushInterval)
	defer ticker.Stop()
	batch := make([]permiso.AuditEvent, 0, w.opts.BatchSize)
	for {
		select {
		case e := <-w.queue:
			batch = append(batch, e)
			if len(batch) >= w.opts.BatchSize {
				w.write(batch)
				batch = batch[:0]
			}
		case <-ticker.C:
			w.write(batch)
			batch = batch[:0]
		case <-w.closing:
			// Nothing enters the queue any more (closed is set): write
			// the batch and what is queued, in batches.
			for {
				for len(batch) < w.opts.BatchSize && len(w.queue) > 0 {
					batch = append(batch, <-w.queue)
				}
				if len(batch) == 0 {
					return
				}
				w.write(batch)
				batch = batch[:0]
			}
		}
	}
}

// write stores batch. A refused batch is written again event by event; an
// unreachable store keeps the batch, retried with backoff until it is
// written or the close deadline passes.
func (w *Writer) write(batch []permiso.AuditEvent) {
	backoff := w.opts.RetryBackoff
	outage := false
	for len(batch) > 0 {
		err := w.append(batch)
		if err == nil {
			w.written(len(batch), outage)
			return
		}
		if !w.unreachable(err) {
			batch, err = w.writeEach(batch, err)
			if len(batch) == 0 {
				if outage {
					w.opts.Logger.Info("audit store reachable again")
				}
				return
			}
		}
		// The store is unreachable: keep the batch and try again later.
		if !outage {
			outage = true
			w.opts.Logger.Error("audit store unreachable; keeping the events and retrying",
				"events", len(batch), "queued", len(w.queue), "error", err)
		}
		if !w.pause(backoff) {
			w.fail(batch, "audit store unreachable at close; event not written", err)
			return
		}
		backoff = min(backoff*2, MaxRetryBackoff)
	}
}

// writeEach writes the events of a refused batch one by one. When the
// store becomes unreachable meanwhile it returns the events not yet
// written and that error; else nil.
func (w *Writer) writeEach(batch []permiso.AuditEvent, batchErr error) ([]permiso.AuditEvent, error) {
	w.opts.Logger.Warn("audit batch refused; writing its events one by one", "events", len(batch), "error", batchErr)
	for i, e := range batch {
		err := w.append([]permiso.AuditEvent{e})
		switch {
		case err == nil:
			w.obs.Written(1)
		case errors.Is(err, permiso.ErrAlreadyExists):
			// Its id is stored: an earlier attempt was committed though its
			// answer was lost. Written once, not twice.
			w.obs.Written(1)
		case w.unreachable(err):
			return batch[i:], err
		default:
			w.fail([]permiso.AuditEvent{e}, "audit event refused by the store; event not written", err)
		}
	}
	return nil, nil
}

func (w *Writer) written(n int, afterOutage bool) {
	w.obs.Written(n)
	if afterOutage {
		w.opts.Logger.Info("audit store reachable again", "events", n)
	}
}

// append is one store call, bounded by writeTimeout and the close
// deadline.
func (w *Writer) append(events []permiso.AuditEvent) error {
	ctx, cancel := context.WithTimeout(w.stop, writeTimeout)
	defer cancel()
	return w.store.AppendAuditEvents(ctx, events)
}

// unreachable tells "the store cannot be reached" from "the store refused
// these events": the error says so (unavailable, timed out, cancelled), or
// the store does not answer a ping either.
func (w *Writer) unreachable(err error) bool {
	if errors.Is(err, permiso.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	p, ok := w.store.(Pinger)
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(w.stop, pingTimeout)
	defer cancel()
	return p.Ping(ctx) != nil
}

// pause waits d; false when the close deadline passed first.
func (w *Writer) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return w.stop.Err() == nil
	case <-w.stop.Done():
		return false
	}
}

// fail logs each event whole and counts it as failed.
func (w *Writer) fail(events []permiso.AuditEvent, msg string, err error) {
	for _, e := range events {
		w.opts.Logger.Error(msg, "error", err, eventAttr(e))
	}
	w.obs.Failed(len(events))
}

// drop logs e whole and counts it as dropped.
func (w *Writer) drop(e permiso.AuditEvent, msg string) {
	w.opts.Logger.Error(msg, eventAttr(e))
	w.obs.Dropped(1)
}

// eventAttr is every field of e as one structured log attribute, "event",
// so that an event that is not stored can be recovered from the log.
func eventAttr(e permiso.AuditEvent) slog.Attr {
	opt := func(p *string) any {
		if p == nil {
			return nil
		}
		return *p
	}
	return slog.Group("event",
		"id", e.ID.String(),
		"occurred_at", e.OccurredAt.UTC().Format(time.RFC3339Nano),
		"actor_type", e.ActorType,
		"actor_id", opt(e.ActorID),
		"action", e.Action,
		"target_type", opt(e.TargetType),
		"target_id", opt(e.TargetID),
		"result", e.Result,
		"ip_address", opt(e.IPAddress),
		"user_agent", opt(e.UserAgent),
		"request_id", opt(e.RequestID),
		"details", e.Details,
	)
}

type nopObserver struct{}

func (nopObserver) Waited(time.Duration, bool) {}
func (nopObserver) Written(int)                {}
func (nopObserver) Failed(int)                 {}
func (nopObserver) Dropped(int)                {}
