package httpapi

import "net/http"

// handlerFunc is a management-API handler that returns its error instead
// of writing it: it parses the request, calls one service method and
// writes the answer, or returns the error, which ServeHTTP writes once in
// the management envelope (writeError: one code → status table, internal
// errors logged once and never shown). A handler that has written its
// answer returns nil.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP implements http.Handler.
func (h handlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h(w, r); err != nil {
		writeError(w, r, err)
	}
}

// answer writes v as the JSON response with status; it returns nil so a
// handlerFunc can end with it.
func answer(w http.ResponseWriter, status int, v any) error {
	writeJSON(w, status, v)
	return nil
}

// noContent answers 204 No Content.
func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// needs returns h when the service it calls is configured, and otherwise
// a handler that answers every request with missing (503): the one place
// that answers the routes of a service the server was built without. It
// is decided once, when the route is registered.
func needs(configured bool, missing error, h handlerFunc) http.Handler {
	if !configured {
		return handlerFunc(func(http.ResponseWriter, *http.Request) error { return missing })
	}
	return h
}
