package oauth2

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestResendsPacedPerSession: a session's revocation is re-sent at most
// once per resendInterval, each session on its own, and the sessions
// remembered stay bounded (resendsKept) without a session's pace being
// lost while the ones past their interval can be forgotten.
func TestResendsPacedPerSession(t *testing.T) {
	var r resends
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := uuid.New(), uuid.New()
	if !r.due(a, now) || r.due(a, now) || r.due(a, now.Add(resendInterval-time.Nanosecond)) {
		t.Fatal("a session's re-send not paced by resendInterval")
	}
	if !r.due(b, now) {
		t.Fatal("another session's re-send held back")
	}
	if !r.due(a, now.Add(resendInterval)) {
		t.Fatal("a session's re-send held back past resendInterval")
	}
	later := now.Add(10 * resendInterval)
	for range resendsKept {
		r.due(uuid.New(), later)
	}
	if len(r.last) > resendsKept {
		t.Fatalf("%d sessions remembered, want at most %d", len(r.last), resendsKept)
	}
	c := uuid.New()
	if !r.due(c, later) || r.due(c, later) {
		t.Fatal("a session's re-send not paced once the remembered sessions were trimmed")
	}
}
