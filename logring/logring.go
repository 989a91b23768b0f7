// Package logring keeps the most recent error-level log records in a
// bounded in-memory ring, for GET /admin/logs/errors. Wrap installs it in
// front of the process's slog.Handler: every record still reaches the real
// handler; records at or above the ring's level are also copied into the
// ring, which never grows beyond its capacity.
package logring

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultCapacity is the number of records a Ring keeps by default.
const DefaultCapacity = 500

// maxAttrs and maxValueLen bound what one record keeps.
const (
	maxAttrs    = 32
	maxValueLen = 2048
)

// Entry is one kept log record.
type Entry struct {
	Time    time.Time
	Level   slog.Level
	Message string
	// Logger is the "logger" or "component" attribute when the record has
	// one, else "permiso".
	Logger string
	// Attrs are the record's attributes (and those of the logger),
	// flattened with dotted group names, values as strings.
	Attrs map[string]string
}

// Ring is a bounded, concurrency-safe buffer of recent records.
type Ring struct {
	level slog.Level
	mu    sync.Mutex
	buf   []Entry
	next  int
	full  bool
	total uint64
}

// New returns a ring keeping the last capacity records at or above level
// (slog.LevelError for the admin API). capacity <= 0 means
// DefaultCapacity.
func New(capacity int, level slog.Level) *Ring {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Ring{level: level, buf: make([]Entry, capacity)}
}

// Capacity is how many records the ring keeps.
func (r *Ring) Capacity() int { return len(r.buf) }

// Add keeps e, evicting the oldest record when the ring is full.
func (r *Ring) Add(e Entry) {
	r.mu.Lock()
	r.buf[r.next] = e
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
	r.total++
	r.mu.Unlock()
}

// Entries returns the kept records, newest first.
func (r *Ring) Entries() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]Entry, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

// Total is the number of records ever added, kept or evicted.
func (r *Ring) Total() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// Wrap returns a handler that passes every record to next and copies the
// records at or above the ring's level into the ring.
func (r *Ring) Wrap(next slog.Handler) slog.Handler {
	return &handler{next: next, ring: r}
}

type handler struct {
	next   slog.Handler
	ring   *Ring
	attrs  []slog.Attr // from WithAttrs, already qualified by groups
	groups string      // current group prefix, "a.b."
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.ring.level || h.next.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= h.ring.level {
		e := Entry{Time: rec.Time.UTC(), Level: rec.Level, Message: rec.Message, Logger: "permiso",
			Attrs: make(map[string]string)}
		for _, a := range h.attrs {
			add(e.Attrs, "", a)
		}
		rec.Attrs(func(a slog.Attr) bool {
			add(e.Attrs, h.groups, a)
			return len(e.Attrs) < maxAttrs
		})
		for _, k := range []string{"logger", "component"} {
			if v, ok := e.Attrs[k]; ok {
				e.Logger = v
				break
			}
		}
		if e.Time.IsZero() {
			e.Time = time.Now().UTC()
		}
		h.ring.Add(e)
	}
	if h.next.Enabled(ctx, rec.Level) {
		return h.next.Handle(ctx, rec)
	}
	return nil
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		if h.groups != "" {
			a = slog.Attr{Key: h.groups + a.Key, Value: a.Value}
		}
		c.attrs = append(c.attrs, a)
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.groups = h.groups + name + "."
	return &c
}

// add flattens a into m under prefix.
func add(m map[string]string, prefix string, a slog.Attr) {
	if len(m) >= maxAttrs {
		return
	}
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range v.Group() {
			add(m, p, g)
		}
		return
	}
	if a.Key == "" {
		return
	}
	s := v.String()
	if len(s) > maxValueLen {
		s = s[:maxValueLen] + "…"
	}
	m[prefix+a.Key] = s
}
