package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/identity"
)

// Query-string parsing for the list endpoints (service clients,
// sessions, admin). Every problem is collected and reported at once as a
// 422 validation_error naming each parameter.

// queryErrs collects bad query parameters.
type queryErrs []permiso.FieldError

func (q *queryErrs) add(field, msg string) {
	*q = append(*q, permiso.FieldError{Field: field, Message: msg})
}

// err returns the validation error, or nil when every parameter was fine.
func (q queryErrs) err() error {
	if len(q) == 0 {
		return nil
	}
	return permiso.Invalid("Request validation failed", q...)
}

// paging is a validated page/per_page pair.
type paging struct {
	Page, PerPage int
}

func (p paging) offset() int { return (p.Page - 1) * p.PerPage }

// pages is the number of pages for total items: at least 1, as the
// original service answered (ceil(total/per_page) or 1) for every list.
func (p paging) pages(total int) int { return max(1, (total+p.PerPage-1)/p.PerPage) }

// readPaging reads page (>= 1, default 1) and per_page (1..maxPer,
// default def).
func readPaging(v url.Values, def, maxPer int, errs *queryErrs) paging {
	p := paging{Page: 1, PerPage: def}
	p.Page = readInt(v, "page", 1, 1, 1_000_000, errs)
	p.PerPage = readInt(v, "per_page", def, 1, maxPer, errs)
	return p
}

// listPage answers a list endpoint of the identity API: it reads page and
// per_page from q (after the filter's parameters in errs, all reported at once)
// into the filter's offset and limit, calls list, and answers the page
// under key (answerPage).
func listPage[T, V any](w http.ResponseWriter, r *http.Request, q url.Values, errs *queryErrs, key string, offset, limit *int,
	list func(context.Context) ([]T, int, error), view func(T) V) error {
	pg := readPaging(q, defaultPerPage, maxPerPage, errs)
	if err := errs.err(); err != nil {
		return err
	}
	*offset, *limit = pg.offset(), pg.PerPage
	items, total, err := list(r.Context())
	if err != nil {
		return err
	}
	return answerPage(w, key, pg, items, total, view)
}

// answerPage answers page pg of a list of total items: items, each
// through view, under key, with total, page, per_page and pages.
func answerPage[T, V any](w http.ResponseWriter, key string, pg paging, items []T, total int, view func(T) V) error {
	views := make([]V, 0, len(items))
	for _, x := range items {
		views = append(views, view(x))
	}
	return answer(w, http.StatusOK, map[string]any{key: views, "total": total, "page": pg.Page,
		"per_page": pg.PerPage, "pages": pg.pages(total)})
}

// readInt reads an integer parameter in [lo, hi], def when absent.
func readInt(v url.Values, name string, def, lo, hi int, errs *queryErrs) int {
	s := strings.TrimSpace(v.Get(name))
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		errs.add(name, "must be an integer")
		return def
	}
	if n < lo || n > hi {
		errs.add(name, "must be between "+strconv.Itoa(lo)+" and "+strconv.Itoa(hi))
		return def
	}
	return n
}

// readBool reads an optional boolean (true/false/1/0/yes/no/on/off, as
// the original service accepted).
func readBool(v url.Values, name string, errs *queryErrs) *bool {
	s := strings.ToLower(strings.TrimSpace(v.Get(name)))
	switch s {
	case "":
		return nil
	case "true", "1", "yes", "on":
		b := true
		return &b
	case "false", "0", "no", "off":
		b := false
		return &b
	}
	errs.add(name, "must be a boolean (true or false)")
	return nil
}

// readUUID reads an optional UUID parameter.
func readUUID(v url.Values, name string, errs *queryErrs) *uuid.UUID {
	raw := v.Get(name)
	s := strings.TrimSpace(raw)
	if s == "" {
		// Empty is absent; blanks are not a UUID (and must not read as
		// "absent", which would mean the caller's own id on some routes).
		if raw != "" {
			errs.add(name, "must be a UUID")
		}
		return nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		errs.add(name, "must be a UUID")
		return nil
	}
	return &id
}

// readTime reads an optional RFC 3339 time parameter.
func readTime(v url.Values, name string, errs *queryErrs) *time.Time {
	s := strings.TrimSpace(v.Get(name))
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		errs.add(name, "must be an RFC 3339 time, e.g. 2025-01-31T12:00:00Z")
		return nil
	}
	t = t.UTC()
	return &t
}

// readString reads an optional string parameter of at most max bytes. A
// value that is not valid UTF-8 or holds a NUL cannot match anything
// stored; it is refused before the store is asked (permiso.ValidIdentifier,
// docs/security-model.md "Untrusted bytes"), so every backend answers it
// alike.
func readString(v url.Values, name string, max int, errs *queryErrs) string {
	s := strings.TrimSpace(v.Get(name))
	if len(s) > max {
		errs.add(name, "must be at most "+strconv.Itoa(max)+" characters")
		return ""
	}
	if !permiso.ValidIdentifier(s) {
		errs.add(name, "must be valid UTF-8 without NUL")
		return ""
	}
	return s
}

// pathUUID parses the path parameter name as a UUID; a malformed one is
// a 404 (no such resource), as for an unknown id.
func pathUUID(r *http.Request, name, what string) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue(name))
	if err != nil {
		return uuid.Nil, permiso.Errorf(permiso.ENOTFOUND, "%s not found", what)
	}
	return id, nil
}

// byID is h behind the path parameter name, a UUID: a malformed one is
// "<what> not found" (404), as an unknown one is, before h runs.
func byID(name, what string, h func(w http.ResponseWriter, r *http.Request, id uuid.UUID) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathUUID(r, name, what)
		if err != nil {
			return err
		}
		return h(w, r, id)
	}
}

// putByID answers a PUT of the resource at the path parameter name (what
// names it in a 404): the body, a JSON object, is decoded into B for put,
// the caller's change, and put's result answered through view.
func putByID[B, T, V any](name, what string, put func(ctx context.Context, a identity.Actor, id uuid.UUID, b B) (T, error), view func(T) V) handlerFunc {
	return byID(name, what, func(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
		var b B
		if _, err := decodeObject(r, &b); err != nil {
			return err
		}
		v, err := put(r.Context(), actor(r), id, b)
		if err != nil {
			return err
		}
		return answer(w, http.StatusOK, view(v))
	})
}

// getByID answers a GET of the resource at the path parameter name
// (what names it in a 404) with view of what get returns.
func getByID[T, V any](s *server, name, what string, get func(ctx context.Context, id uuid.UUID) (T, error), view func(T) V) http.Handler {
	return actByID(s, name, what, func(ctx context.Context, _ identity.Actor, id uuid.UUID) (T, error) { return get(ctx, id) }, view)
}

// actByID answers a request without a body on the resource at the path
// parameter name (what names it in a 404): 200 with view of what act, the
// caller's action on it, returns.
func actByID[T, V any](s *server, name, what string, act func(ctx context.Context, a identity.Actor, id uuid.UUID) (T, error), view func(T) V) http.Handler {
	return s.identityHandler(byID(name, what, func(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
		v, err := act(r.Context(), actor(r), id)
		if err != nil {
			return err
		}
		return answer(w, http.StatusOK, view(v))
	}))
}

// deleteByID answers a DELETE of the resource at the path parameter name
// (what names it in a 404): 204 once del, the caller's deletion, succeeded.
func deleteByID[T any](s *server, name, what string, del func(ctx context.Context, a identity.Actor, id uuid.UUID) (T, error)) http.Handler {
	return s.identityHandler(byID(name, what, func(w http.ResponseWriter, r *http.Request, id uuid.UUID) error {
		if _, err := del(r.Context(), actor(r), id); err != nil {
			return err
		}
		return noContent(w)
	}))
}

// update answers a PUT of the resource at the path parameter name (what
// names it in a 404) through putByID: the body is decoded into B, whose
// input is given with the id to update (the caller's change), and its
// result answered through view.
func update[B interface{ input() In }, In, T, V any](s *server, name, what string, update func(ctx context.Context, a identity.Actor, id uuid.UUID, in In) (T, error), view func(T) V) http.Handler {
	return s.identityHandler(putByID(name, what, func(ctx context.Context, a identity.Actor, id uuid.UUID, b B) (T, error) {
		return update(ctx, a, id, b.input())
	}, view))
}

// create answers a POST that creates a resource: the body, a JSON object,
// is decoded into B, whose input is given to create (the caller's
// creation), and its result answered 201 through view.
func create[B interface{ input() In }, In, T, V any](s *server, create func(ctx context.Context, a identity.Actor, in In) (T, error), view func(T) V) http.Handler {
	return s.identityHandler(func(w http.ResponseWriter, r *http.Request) error {
		var b B
		if _, err := decodeObject(r, &b); err != nil {
			return err
		}
		v, err := create(r.Context(), actor(r), b.input())
		if err != nil {
			return err
		}
		return answer(w, http.StatusCreated, view(v))
	})
}

// nullTime formats an optional time for a response (null when nil).
func nullTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := timestamp(*t)
	return &s
}
