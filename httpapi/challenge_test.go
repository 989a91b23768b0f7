package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/permiso/permiso/oauth2"
)

// Only a missing caller gets the Bearer challenge next to the
// Basic one; a failed client authentication (every invalid_client) does not.
func TestCallerErrorChallenges(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		wantBearer bool
	}{
		{"no caller", errNoCallerChallenge, true},
		{"client authentication failed", oauth2.ErrInvalidClient.WithDescription("Client authentication failed").WithBasicChallenge(), false},
		{"invalid_client without challenge", oauth2.ErrInvalidClient, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/api/v1/auth/introspect", nil)
			writeCallerError(w, r, c.err)
			bearer := false
			for _, v := range w.Header().Values("WWW-Authenticate") {
				if strings.HasPrefix(v, "Bearer") {
					bearer = true
				}
			}
			if bearer != c.wantBearer {
				t.Fatalf("Bearer challenge = %v, want %v (headers %q)", bearer, c.wantBearer, w.Header().Values("WWW-Authenticate"))
			}
		})
	}
}
