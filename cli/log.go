package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
)

// newLogger builds the process logger from cfg: level (default info), format
// (text on a terminal, JSON otherwise, unless cfg says) and destination
// (stderr, or cfg.File opened for appending with mode 0600). The returned
// func closes the file; it is a no-op for stderr.
func newLogger(cfg LoggingConfig, stderr io.Writer) (*slog.Logger, func() error, error) {
	level, err := parseLevel(cfg.Level)
	if err != nil {
		return nil, nil, err
	}
	w, closeFn := stderr, func() error { return nil }
	if cfg.File != "" {
		f, err := os.OpenFile(cfg.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("open log file: %w", err)
		}
		w, closeFn = f, f.Close
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch cfg.Format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "":
		if isTerminal(w) {
			h = slog.NewTextHandler(w, opts)
		} else {
			h = slog.NewJSONHandler(w, opts)
		}
	default:
		_ = closeFn() // the format error is the one to report
		return nil, nil, fmt.Errorf("log format %q is not text or json", cfg.Format)
	}
	return slog.New(h), closeFn, nil
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
