package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/permiso/permiso"
	"github.com/permiso/permiso/internal/testlog"
	"github.com/permiso/permiso/oauth2"
)

// requestWithInfo returns a request carrying the context the middleware
// chain would give it, logging to log.
func requestWithInfo(log *testlog.Buffer, id string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	info := &reqInfo{id: id, logger: slog.New(slog.NewJSONHandler(log, nil))}
	return r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
}

func TestWriteError(t *testing.T) {
	const internal = "pq: relation \"users\" does not exist at 10.0.0.5"
	tests := []struct {
		name    string
		err     error
		status  int
		code    string
		desc    string
		headers map[string]string
		details bool
		logged  bool
	}{
		{"not found", permiso.Errorf(permiso.ENOTFOUND, "User not found"), 404, "not_found", "User not found", nil, false, false},
		{"not found sentinel", permiso.ErrNotFound, 404, "not_found", "Resource not found", nil, false, false},
		{"already exists", permiso.Errorf(permiso.EEXISTS, "Username already taken"), 409, "conflict", "Username already taken", nil, false, false},
		{"conflict", permiso.Errorf(permiso.ECONFLICT, "Role in use"), 409, "conflict", "Role in use", nil, false, false},
		{"validation", permiso.Invalid("Bad input", permiso.FieldError{Field: "email", Message: "invalid"}), 422, "validation_error", "Bad input", nil, true, false},
		{"validation without details", permiso.Errorf(permiso.EINVALID, "Bad"), 422, "validation_error", "Bad", nil, true, false},
		{"not authenticated", permiso.Errorf(permiso.EUNAUTHORIZED, "Token has expired"), 401, "not_authenticated", "Token has expired", map[string]string{"WWW-Authenticate": `Bearer realm="permiso"`}, false, false},
		{"invalid token", permiso.Errorf(permiso.EINVALIDTOKEN, "Token has been revoked"), 401, "invalid_token", "Token has been revoked", map[string]string{"WWW-Authenticate": `Bearer realm="permiso", error="invalid_token", error_description="Token has been revoked"`}, false, false},
		{"insufficient scope", permiso.Errorf(permiso.EINSUFFICIENTSCOPE, "Missing scope admin:users"), 403, "insufficient_scope", "Missing scope admin:users", map[string]string{"WWW-Authenticate": `Bearer realm="permiso", error="insufficient_scope", error_description="Missing scope admin:users"`}, false, false},
		{"forbidden", permiso.Errorf(permiso.EFORBIDDEN, "Access denied"), 403, "forbidden", "Access denied", nil, false, false},
		{"rate limit", permiso.Errorf(permiso.ERATELIMIT, "Too many requests"), 429, "rate_limit_exceeded", "Too many requests", nil, false, false},
		{"too many attempts", permiso.Errorf(permiso.ETOOMANYATTEMPTS, "Too many login attempts for this account are in progress; retry shortly"), 429, "too_many_attempts", "Too many login attempts for this account are in progress; retry shortly", map[string]string{"Retry-After": "2"}, false, false},
		{"locked", permiso.Errorf(permiso.ELOCKED, "Account is locked"), 423, "account_locked", "Account is locked", nil, false, false},
		{"unavailable", permiso.Errorf(permiso.EUNAVAILABLE, "too many concurrent password checks; retry shortly"), 503, "unavailable", "too many concurrent password checks; retry shortly", map[string]string{"Retry-After": "1"}, false, false},
		{"wrapped unavailable", fmt.Errorf("login: %w", permiso.Wrap(permiso.EUNAVAILABLE, "Database unavailable", errors.New(internal))), 503, "unavailable", "Database unavailable", nil, false, false},
		{"too large", errTooLarge, 413, "request_too_large", "Request body too large", nil, false, false},
		{"internal error code", permiso.Wrap(permiso.EINTERNAL, "db failure "+internal, errors.New(internal)), 500, "internal_error", internalDescription, nil, false, true},
		{"plain error", errors.New(internal), 500, "internal_error", internalDescription, nil, false, true},
		{"wrapped plain error", fmt.Errorf("store: %w", errors.New(internal)), 500, "internal_error", internalDescription, nil, false, true},
		{"unknown code", permiso.Errorf(permiso.Code("weird_code"), internal), 500, "internal_error", internalDescription, nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &testlog.Buffer{}
			w := httptest.NewRecorder()
			writeError(w, requestWithInfo(log, "req-1"), tt.err)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if strings.Contains(w.Body.String(), "10.0.0.5") || strings.Contains(w.Body.String(), "relation") {
				t.Fatalf("internal error text leaked: %s", w.Body)
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body["error"] != tt.code || body["error_description"] != tt.desc || body["request_id"] != "req-1" {
				t.Fatalf("body %v", body)
			}
			_, hasDetails := body["details"]
			if hasDetails != tt.details {
				t.Fatalf("details present = %v, want %v: %v", hasDetails, tt.details, body)
			}
			if tt.name == "validation" {
				d := body["details"].([]any)[0].(map[string]any)
				if d["field"] != "email" || d["message"] != "invalid" {
					t.Fatalf("details %v", body["details"])
				}
			}
			for k, v := range tt.headers {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.status != 401 && tt.code != "insufficient_scope" && w.Header().Get("WWW-Authenticate") != "" {
				t.Error("WWW-Authenticate on a non-401 that is not insufficient_scope")
			}
			recs := log.Records(t, "internal error")
			if tt.logged {
				if len(recs) != 1 || recs[0]["request_id"] != "req-1" || !strings.Contains(recs[0]["error"].(string), "10.0.0.5") {
					t.Fatalf("internal error log = %v", recs)
				}
			} else if len(recs) != 0 {
				t.Fatalf("non-internal error logged: %v", recs)
			}
		})
	}
}

func TestWriteErrorKeepsCallerHeaders(t *testing.T) {
	log := &testlog.Buffer{}
	w := httptest.NewRecorder()
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeError(w, requestWithInfo(log, "r"), permiso.Errorf(permiso.EUNAUTHORIZED, "Token has been revoked"))
	if got := w.Header().Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Fatalf("WWW-Authenticate = %q", got)
	}
	w = httptest.NewRecorder()
	w.Header().Set("Retry-After", "30")
	writeError(w, requestWithInfo(log, "r"), permiso.ErrUnavailable)
	if got := w.Header().Get("Retry-After"); got != "30" {
		t.Fatalf("Retry-After = %q", got)
	}
}

// Every code of the domain has a row in the table.
func TestErrorTableCoversDomainCodes(t *testing.T) {
	for _, c := range []permiso.Code{
		permiso.ENOTFOUND, permiso.EEXISTS, permiso.ECONFLICT, permiso.EINVALID, permiso.EUNAUTHORIZED,
		permiso.EFORBIDDEN, permiso.ERATELIMIT, permiso.EUNAVAILABLE, permiso.EINTERNAL,
		permiso.EINVALIDTOKEN, permiso.EINSUFFICIENTSCOPE, permiso.EBADREQUEST, permiso.EBADACTIONTOKEN,
		permiso.ELOCKED, permiso.ETOOMANYATTEMPTS,
	} {
		if _, ok := errorTable[c]; !ok {
			t.Errorf("code %q has no HTTP status", c)
		}
	}
}

func TestWriteOAuthError(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/api/v1/auth/token", nil)
	writeOAuth(w, r, oauth2.ErrInvalidGrant.WithDescription("The refresh token is invalid"))
	if w.Code != 400 {
		t.Fatalf("status %d", w.Code)
	}
	for k, v := range map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache", "Content-Type": "application/json"} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if len(body) != 2 || body["error"] != "invalid_grant" || body["error_description"] != "The refresh token is invalid" {
		t.Fatalf("body %v", body)
	}
}

func TestWriteJSON(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set(headerRequestID, "rid")
	writeJSON(w, http.StatusCreated, map[string]any{"a": 1})
	if w.Code != 201 || w.Body.String() != "{\"a\":1}\n" || w.Header().Get("Content-Length") != "8" {
		t.Fatalf("%d %q %q", w.Code, w.Body, w.Header().Get("Content-Length"))
	}
	// An unencodable value is a clean 500, not a partial body.
	w = httptest.NewRecorder()
	w.Header().Set(headerRequestID, "rid")
	writeJSON(w, http.StatusOK, map[string]any{"f": func() {}})
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"request_id":"rid"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// TestIntrospectionReplyIsWriteNoStore holds introspectionReply, the
// answer of every introspection (RFC 7662 §2.2), to writeNoStore of the
// same answer: status, headers and body, for an active and an inactive
// token, each twice (the second encoded into a buffer the first gave
// back); and an error to writeOAuth's answer.
func TestIntrospectionReplyIsWriteNoStore(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/auth/introspect", nil)
	for _, res := range []oauth2.Introspection{
		{Active: true, Scope: "read:profile", ClientID: "c", Username: "alice", TokenType: "access_token",
			Exp: 1767225600, Iat: 1767222000, Sub: "u", Aud: []string{"a", "b"}, Iss: "permiso", Jti: "j", Sid: "s"},
		{},
		{Active: true, Username: strings.Repeat("é\"<", 2000)}, // past the pooled buffer's first size
	} {
		for range 2 {
			want := httptest.NewRecorder()
			want.Header().Set(headerRequestID, "rid")
			writeNoStore(want, http.StatusOK, res)
			recorded := 0
			got := httptest.NewRecorder()
			got.Header().Set(headerRequestID, "rid")
			introspectionReply(r, func() { recorded++ }, res, nil)(got)
			if recorded != 1 || got.Code != want.Code || !reflect.DeepEqual(got.Header(), want.Header()) ||
				got.Body.String() != want.Body.String() {
				t.Fatalf("introspectionReply: %d recorded, %d %v %q; writeNoStore: %d %v %q",
					recorded, got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
			}
		}
	}
	err := oauth2.ErrInvalidRequest.WithDescription("Missing parameter: token")
	want := httptest.NewRecorder()
	writeOAuth(want, r, err)
	recorded := 0
	got := httptest.NewRecorder()
	introspectionReply(r, func() { recorded++ }, oauth2.Introspection{}, err)(got)
	if recorded != 1 || got.Code != want.Code || !reflect.DeepEqual(got.Header(), want.Header()) ||
		got.Body.String() != want.Body.String() {
		t.Fatalf("introspectionReply of an error: %d recorded, %d %v %q; writeOAuth: %d %v %q",
			recorded, got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
	}
}

func TestTimestamp(t *testing.T) {
	if got := timestamp(fixedNow); got != "2025-07-27T11:34:30Z" {
		t.Fatal(got)
	}
	if got := timestamp(fixedNow.Add(123456 * 1000)); got != "2025-07-27T11:34:30.123456Z" {
		t.Fatal(got)
	}
}

// TestErrorWritersClientClosed: every error writer answers a request
// whose client went away (its context cancelled without a cause, the
// error wrapping the cancellation) with 499, no body and an info record;
// a deadline, a cancellation with a cause of its own (the shutdown's
// cut-off), an error that does not wrap the cancellation, or a
// cancellation error on a live request stays a server error, logged as one.
func TestErrorWritersClientClosed(t *testing.T) {
	s := &server{logger: slog.New(slog.DiscardHandler)}
	writers := map[string]func(w http.ResponseWriter, r *http.Request, err error){
		"writeError":            writeError,
		"writeOAuth":            writeOAuth,
		"writeLimitError":       func(w http.ResponseWriter, r *http.Request, err error) { writeLimitError(w, r, false, err) },
		"writeLimitError/oauth": func(w http.ResponseWriter, r *http.Request, err error) { writeLimitError(w, r, true, err) },
		"authorizeError":        s.authorizeError,
	}
	gone := func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	cutOff := func() context.Context {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(errors.New("cut off at the shutdown timeout"))
		return ctx
	}
	expired := func() context.Context {
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
		t.Cleanup(cancel)
		return ctx
	}
	live := context.Background
	cancelled := func(ctx context.Context) error { return fmt.Errorf("store: %w", ctx.Err()) }
	unavailable := func(ctx context.Context) error {
		return permiso.Wrap(permiso.EUNAVAILABLE, "request cancelled while waiting for a password check", ctx.Err())
	}
	tests := []struct {
		name   string
		ctx    func() context.Context
		err    func(ctx context.Context) error
		closed bool
	}{
		{"client gone", gone, cancelled, true},
		{"client gone while waiting", gone, unavailable, true},
		{"client gone, unrelated failure", gone, func(context.Context) error { return errors.New("disk full") }, false},
		{"cut off by the server", cutOff, cancelled, false},
		{"deadline", expired, cancelled, false},
		{"cancellation on a live request", live, func(context.Context) error { return fmt.Errorf("store: %w", context.Canceled) }, false},
	}
	for _, tt := range tests {
		for name, write := range writers {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				log := &testlog.Buffer{}
				r := requestWithInfo(log, "req-1")
				info := infoFrom(r.Context())
				info.logger = slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
				s.logger = info.logger
				ctx := tt.ctx()
				r = r.WithContext(context.WithValue(ctx, infoKey{}, info))
				w := httptest.NewRecorder()
				write(w, r, tt.err(ctx))
				debug := log.Records(t, "client closed request")
				if tt.closed {
					if w.Code != statusClientClosed || w.Body.Len() != 0 || len(debug) != 1 || debug[0]["level"] != "INFO" {
						t.Fatalf("%d %q, records %v", w.Code, w.Body, debug)
					}
					if strings.Contains(log.String(), `"level":"ERROR"`) || strings.Contains(log.String(), `"level":"WARN"`) {
						t.Fatalf("logged as a server error: %s", log)
					}
					return
				}
				if w.Code < 500 || len(debug) != 0 {
					t.Fatalf("%d, records %v", w.Code, debug)
				}
			})
		}
	}
}
