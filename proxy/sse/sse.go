// Package sse reads server-sent events frame by frame, keeping each frame's
// exact bytes so that a proxy can pass it on unchanged.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Event is one SSE frame.
type Event struct {
	Name string // the event: field; empty if the frame had none
	Data []byte // the data: lines joined by "\n"
	Raw  []byte // the frame exactly as read, including its blank-line terminator
}

// MaxFrame is the largest frame a Reader accepts by default. Anthropic's
// largest events (a server tool's result) are far smaller; a stream that
// sends more without a frame end is broken, and holding it would let one
// upstream line take all memory.
const MaxFrame = 16 << 20

// ErrFrameTooLarge is returned by Next for a frame longer than the limit.
var ErrFrameTooLarge = errors.New("sse: frame larger than the limit")

// Reader reads events from an SSE stream. It is not safe for concurrent use.
// The slices of an Event stay valid until the next call to Next.
type Reader struct {
	// Max is the largest frame accepted, in bytes; NewReader sets MaxFrame.
	Max     int
	br      *bufio.Reader
	raw     []byte
	data    []byte
	pending []Event // pushed back by Unread; the last is returned first
}

// NewReader returns a Reader that reads from r.
func NewReader(r io.Reader) *Reader {
	// The upstream body is buffered already (net/http reads it through a
	// 4 KiB buffer); 1 KiB here holds most events' lines whole, a longer
	// line is read in pieces, and a stream open for minutes costs little
	// (8,000 streams at 16 KiB each were 128 MiB).
	return &Reader{Max: MaxFrame, br: bufio.NewReaderSize(r, 1<<10)}
}

// Unread pushes ev back so that the next call to Next returns it. Events
// pushed back are returned last in, first out. The Reader keeps ev's slices
// as they are: an event just returned by Next must be copied first, since
// its slices are reused by the next read.
func (r *Reader) Unread(ev Event) {
	r.pending = append(r.pending, ev)
}

// Buffered reports whether Next can return without reading from the
// underlying stream: events pushed back, or bytes already read. A proxy
// flushes its output when nothing is buffered, so that events that arrived
// together leave together and no event waits on a slow upstream.
func (r *Reader) Buffered() bool {
	return len(r.pending) > 0 || r.br.Buffered() > 0
}

// Next returns the next event. At a clean end of stream it returns io.EOF; if
// the stream ends in the middle of a frame it returns io.ErrUnexpectedEOF with
// the partial frame's bytes in Event.Raw. Frames that carry only comments are
// returned too (with no Name and no Data), so keep-alive comments pass through.
func (r *Reader) Next() (Event, error) {
	if n := len(r.pending); n > 0 {
		ev := r.pending[n-1]
		r.pending = r.pending[:n-1]
		return ev, nil
	}
	r.raw = r.raw[:0]
	r.data = r.data[:0]
	var name []byte
	hasData := false
	for {
		line, err := r.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(r.raw) == 0 {
					return Event{}, io.EOF
				}
				return Event{Raw: r.raw}, io.ErrUnexpectedEOF
			}
			return Event{Raw: r.raw}, err
		}
		body := bytes.TrimRight(line, "\r\n")
		if len(body) == 0 {
			if len(r.raw) == len(line) { // a stray blank line between frames
				r.raw = r.raw[:0]
				continue
			}
			return Event{Name: string(name), Data: r.data, Raw: r.raw}, nil
		}
		field, value, _ := bytes.Cut(body, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			name = value
		case "data":
			if hasData {
				r.data = append(r.data, '\n')
			}
			r.data = append(r.data, value...)
			hasData = true
		}
	}
}

// readLine appends the next line, terminator included, to r.raw and returns it.
func (r *Reader) readLine() ([]byte, error) {
	start := len(r.raw)
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.raw = append(r.raw, chunk...)
		switch {
		case err == nil && r.Max > 0 && len(r.raw) > r.Max:
			return nil, ErrFrameTooLarge
		case err == nil:
			return r.raw[start:], nil
		case errors.Is(err, bufio.ErrBufferFull):
			if r.Max > 0 && len(r.raw) > r.Max {
				return nil, ErrFrameTooLarge
			}
			continue
		case errors.Is(err, io.EOF) && len(r.raw) > start:
			// A final line without a terminator is a truncated frame.
			return nil, io.EOF
		default:
			return nil, err
		}
	}
}

// Frame formats one event as SSE bytes.
func Frame(name string, data []byte) []byte {
	b := make([]byte, 0, len(name)+len(data)+16)
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}
