package logring_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/permiso/permiso/internal/testrace"
	"github.com/permiso/permiso/logring"
)

func TestKeepsErrorsOnlyBoundedNewestFirst(t *testing.T) {
	var out bytes.Buffer
	ring := logring.New(3, slog.LevelError)
	logger := slog.New(ring.Wrap(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})))
	logger.Info("not kept")
	logger.Warn("not kept either")
	for i := 1; i <= 5; i++ {
		logger.With("request_id", fmt.Sprint("r", i)).WithGroup("db").Error(fmt.Sprint("boom ", i), "op", "query")
	}
	got := ring.Entries()
	if len(got) != 3 {
		t.Fatalf("%d entries, want 3 (the capacity)", len(got))
	}
	for i, want := range []string{"boom 5", "boom 4", "boom 3"} {
		if got[i].Message != want {
			t.Errorf("entry %d = %q, want %q", i, got[i].Message, want)
		}
	}
	if got[0].Attrs["request_id"] != "r5" || got[0].Attrs["db.op"] != "query" || got[0].Level != slog.LevelError {
		t.Errorf("entry attrs %v level %v", got[0].Attrs, got[0].Level)
	}
	if ring.Total() != 5 {
		t.Errorf("total %d, want 5", ring.Total())
	}
	// Every record still reaches the real handler.
	if n := strings.Count(out.String(), "\n"); n != 7 {
		t.Errorf("%d records written by the real handler, want 7", n)
	}
}

// TestErrorsKeptWhenHandlerLevelIsHigher: LOG_LEVEL=CRITICAL does not
// hide errors from the admin API.
func TestErrorsKeptWhenHandlerLevelIsHigher(t *testing.T) {
	var out bytes.Buffer
	ring := logring.New(10, slog.LevelError)
	logger := slog.New(ring.Wrap(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelError + 4})))
	logger.Error("kept")
	if len(ring.Entries()) != 1 || out.Len() != 0 {
		t.Fatalf("entries %v, output %q", ring.Entries(), out.String())
	}
}

func TestConcurrent(t *testing.T) {
	ring := logring.New(64, slog.LevelError)
	logger := slog.New(ring.Wrap(slog.DiscardHandler))
	testrace.All(8, func(int) error {
		for i := range 100 {
			logger.Error("x", "i", i)
			_ = ring.Entries()
		}
		return nil
	})
	if ring.Total() != 800 || len(ring.Entries()) != 64 {
		t.Fatalf("total %d, kept %d", ring.Total(), len(ring.Entries()))
	}
}
