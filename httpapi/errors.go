package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/permiso/permiso"
)

// Transport-level error codes that have no place in the domain. They go
// through the same table as the domain's codes.
const (
	codeTooLarge         permiso.Code = "request_too_large"
	codeMethodNotAllowed permiso.Code = "method_not_allowed"
)

// errorKind is one row of the error table: the HTTP status and the public
// "error" value of an error code.
type errorKind struct {
	status int
	name   string
}

// errorTable maps every error code to its HTTP status and public name
// (docs/api.md). It is the only place where that mapping lives. Codes not in
// the table are answered as internal errors.
var errorTable = map[permiso.Code]errorKind{
	permiso.ENOTFOUND:          {http.StatusNotFound, "not_found"},
	permiso.EEXISTS:            {http.StatusConflict, "conflict"},
	permiso.ECONFLICT:          {http.StatusConflict, "conflict"},
	permiso.EINVALID:           {http.StatusUnprocessableEntity, "validation_error"},
	permiso.EUNAUTHORIZED:      {http.StatusUnauthorized, "not_authenticated"},
	permiso.EINVALIDTOKEN:      {http.StatusUnauthorized, "invalid_token"},
	permiso.EFORBIDDEN:         {http.StatusForbidden, "forbidden"},
	permiso.EINSUFFICIENTSCOPE: {http.StatusForbidden, "insufficient_scope"},
	permiso.ERATELIMIT:         {http.StatusTooManyRequests, "rate_limit_exceeded"},
	permiso.EBADREQUEST:        {http.StatusBadRequest, "bad_request"},
	permiso.EBADACTIONTOKEN:    {http.StatusBadRequest, "invalid_token"},
	permiso.ELOCKED:            {http.StatusLocked, "account_locked"},
	permiso.ETOOMANYATTEMPTS:   {http.StatusTooManyRequests, "too_many_attempts"},
	permiso.EINVALIDCODE:       {http.StatusBadRequest, "invalid_code"},
	permiso.EUNAVAILABLE:       {http.StatusServiceUnavailable, "unavailable"},
	permiso.EINTERNAL:          {http.StatusInternalServerError, "internal_error"},
	codeTooLarge:               {http.StatusRequestEntityTooLarge, "request_too_large"},
	codeMethodNotAllowed:       {http.StatusMethodNotAllowed, "method_not_allowed"},
}

var internalKind = errorTable[permiso.EINTERNAL]

// Errors of the router itself.
var (
	errRouteNotFound    = permiso.Errorf(permiso.ENOTFOUND, "Not Found")
	errMethodNotAllowed = permiso.Errorf(codeMethodNotAllowed, "Method Not Allowed")
)

const internalDescription = "An internal error occurred"

// errorBody is the management API's error envelope (docs/api.md).
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	RequestID        string `json:"request_id"`
	// Details is set only for validation errors, and then always (an
	// empty list when no field was named).
	Details any `json:"details,omitempty"`
}

// writeError writes err as the management API's JSON error envelope with
// the status from errorTable. The message of a *permiso.Error is shown;
// anything else, and every EINTERNAL error, becomes a generic 500 that is
// logged once here, with the request id, and never shown.
//
// Headers the status requires are added unless the caller already set them:
// WWW-Authenticate: Bearer on 401 and insufficient_scope (RFC 6750 §3),
// Retry-After: 1 on 503, and permiso.LockoutRetryAfter on too_many_attempts
// (RFC 6585 §4). A rate limit's 429 needs the limiter's own Retry-After,
// which the caller sets.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	if clientClosed(w, r, err) {
		return
	}
	code := permiso.ErrorCode(err)
	kind, ok := errorTable[code]
	if !ok || code == permiso.EINTERNAL {
		kind = internalKind
	}
	body := errorBody{
		Error:     kind.name,
		RequestID: requestIDFor(w, r),
	}
	if kind.status == http.StatusInternalServerError {
		body.ErrorDescription = internalDescription
		loggerFrom(r.Context()).LogAttrs(r.Context(), slog.LevelError, "internal error",
			slog.String("request_id", body.RequestID),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("error", errString(err)),
		)
	} else {
		body.ErrorDescription = permiso.ErrorMessage(err)
	}
	if code == permiso.EINVALID {
		var details []permiso.FieldError
		if pe, ok := asError(err); ok {
			details = pe.Details
		}
		if details == nil {
			details = []permiso.FieldError{}
		}
		body.Details = details
	}
	h := w.Header()
	switch {
	case kind.status == http.StatusUnauthorized || code == permiso.EINSUFFICIENTSCOPE:
		if h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", bearerChallenge(code, body.ErrorDescription))
		}
	case kind.status == http.StatusServiceUnavailable:
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", "1")
		}
	case code == permiso.ETOOMANYATTEMPTS:
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", ceilSeconds(permiso.LockoutRetryAfter, 1))
		}
	}
	writeJSON(w, kind.status, body)
}

// statusClientClosed is the status recorded, in the access log and the
// HTTP metrics, for a request whose client went away before it was
// answered (nginx's 499 "client closed request"; docs/deployment.md,
// "Monitoring"). No client sees it.
const statusClientClosed = 499

// clientClosed answers err when it is the cancellation of a request whose
// client went away (permiso.ClientGone): logged at info level with the
// call it cut short (which shows where a stalled dependency held it), not
// as a server error, and answered 499 without a body, which the access log and
// the metrics record. Every error writer (writeError, writeOAuth,
// writeLimitError, the hosted pages' authorizeError) asks it first, so
// that no handler maps such a request to 500 or 503. It reports whether
// it answered.
func clientClosed(w http.ResponseWriter, r *http.Request, err error) bool {
	ctx := r.Context()
	if !permiso.ClientGone(ctx, err) {
		return false
	}
	loggerFrom(ctx).LogAttrs(ctx, slog.LevelInfo, "client closed request",
		slog.String("request_id", requestIDFor(w, r)),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("error", err.Error()))
	w.WriteHeader(statusClientClosed)
	return true
}

// writeInternalError writes the generic 500 envelope without logging, for
// callers that have already logged the cause (panic recovery).
func writeInternalError(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, internalKind.status, errorBody{
		Error:            internalKind.name,
		ErrorDescription: internalDescription,
		RequestID:        requestIDFor(w, r),
	})
}

// requestIDFor returns the request id from r's context, or from the
// response header when r did not pass the request-id middleware's context
// (as in panic recovery, which runs outside it).
func requestIDFor(w http.ResponseWriter, r *http.Request) string {
	if id := RequestID(r.Context()); id != "" {
		return id
	}
	return w.Header().Get(headerRequestID)
}

func asError(err error) (*permiso.Error, bool) {
	var pe *permiso.Error
	ok := errors.As(err, &pe)
	return pe, ok
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// jsonAppender is an answer that encodes itself as json.Marshal would,
// without reflection (the user and introspection answers of the hot paths;
// docs/benchmarks.md, "Where the time goes"). A struct embedding one would
// be encoded as the embedded value alone: such types are never embedded.
type jsonAppender interface{ AppendJSON(b []byte) []byte }

// jsonBuffers holds the buffers that writeJSON encodes jsonAppender
// answers into (*[]byte, 1 KiB to start). ResponseWriter.Write, like any
// io.Writer, does not keep the slice it is given, so a buffer is reused
// once written; one grown past maxPooledJSON is left to the collector.
var jsonBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

const maxPooledJSON = 64 << 10

// writeJSON writes v as a JSON response with the given status. The value
// is encoded completely before anything is written, so an encoding failure
// (a programming error) gives a clean 500 instead of a partial response.
// A jsonAppender encodes itself.
func writeJSON(w http.ResponseWriter, status int, v any) {
	if a, ok := v.(jsonAppender); ok {
		buf, b := appendJSON(a.AppendJSON)
		writeEncoded(w, status, buf, b)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{
			Error:            internalKind.name,
			ErrorDescription: internalDescription,
			RequestID:        w.Header().Get(headerRequestID),
		})
	}
	writeEncoded(w, status, nil, b)
}

// appendJSON encodes an answer with its AppendJSON method (passed as
// appendTo, so that a concrete answer need not be converted to an
// interface) into a buffer of jsonBuffers: b is the encoding, buf the
// buffer that writeEncoded gives back.
func appendJSON(appendTo func([]byte) []byte) (buf *[]byte, b []byte) {
	buf = jsonBuffers.Get().(*[]byte)
	return buf, appendTo((*buf)[:0])
}

// writeEncoded writes b, a JSON encoding, as writeJSON's answer with the
// given status, and gives buf back to jsonBuffers when b came from it
// (appendJSON; buf is nil otherwise).
func writeEncoded(w http.ResponseWriter, status int, buf *[]byte, b []byte) {
	b = append(b, '\n')
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	_, _ = w.Write(b)
	if buf != nil && cap(b) <= maxPooledJSON {
		*buf = b[:0]
		jsonBuffers.Put(buf)
	}
}
