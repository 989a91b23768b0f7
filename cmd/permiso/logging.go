package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/permiso/permiso/config"
	"github.com/permiso/permiso/logring"
)

// logFile is an io.Writer over LOG_FILE that can be reopened on SIGHUP, so
// logrotate can move the file away without restarting the server (docs/deployment.md, "Shutdown and logs").
type logFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

func openLogFile(path string) (*logFile, error) {
	l := &logFile{path: path}
	if err := l.Reopen(); err != nil {
		return nil, err
	}
	return l, nil
}

// Write appends p to the current file.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// Reopen closes the current file and opens path again (creating it).
// Writes in flight finish on the old file; none are dropped.
func (l *logFile) Reopen() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("LOG_FILE: %w", err)
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	if old != nil {
		return old.Close()
	}
	return nil
}

// Close closes the file.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// newLogger builds the process logger from LOG_LEVEL, LOG_FORMAT and
// LOG_FILE. The returned file is nil when logging to stderr.
func newLogger(cfg config.Config, stderr io.Writer) (*slog.Logger, *logFile, error) {
	var out io.Writer = stderr
	var lf *logFile
	if cfg.LogFile != "" {
		var err error
		if lf, err = openLogFile(cfg.LogFile); err != nil {
			return nil, nil, err
		}
		out = lf
	}
	level := cfg.LogLevel
	if cfg.Debug {
		// DEBUG=true logs everything, whatever LOG_LEVEL says (Validate
		// turns DEBUG off in production).
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(out, opts)
	} else {
		h = slog.NewJSONHandler(out, opts)
	}
	return slog.New(h), lf, nil
}

// errorRingCapacity is how many error records GET /admin/logs/errors can
// show.
const errorRingCapacity = 500

// withErrorRing installs the in-memory ring of recent error records in
// front of logger's handler (every record still reaches the handler).
func withErrorRing(logger *slog.Logger) (*slog.Logger, *logring.Ring) {
	ring := logring.New(errorRingCapacity, slog.LevelError)
	return slog.New(ring.Wrap(logger.Handler())), ring
}
