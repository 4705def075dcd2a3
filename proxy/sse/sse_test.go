package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReader_Frames(t *testing.T) {
	in := "event: message_start\ndata: {\"a\":1}\n\n" +
		"\n" + // stray blank line
		": keep-alive comment\n\n" +
		"event: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\n" +
		"data: line1\ndata: line2\n\n"
	r := NewReader(iotest.OneByteReader(strings.NewReader(in)))
	want := []struct{ name, data, raw string }{
		{"message_start", `{"a":1}`, "event: message_start\ndata: {\"a\":1}\n\n"},
		{"", "", ": keep-alive comment\n\n"},
		{"ping", `{"type":"ping"}`, "event: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\n"},
		{"", "line1\nline2", "data: line1\ndata: line2\n\n"},
	}
	for i, w := range want {
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.Name != w.name || string(ev.Data) != w.data || string(ev.Raw) != w.raw {
			t.Errorf("event %d = (%q, %q, %q), want (%q, %q, %q)", i, ev.Name, ev.Data, ev.Raw, w.name, w.data, w.raw)
		}
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("end: err = %v, want io.EOF", err)
	}
}

func TestReader_Truncated(t *testing.T) {
	r := NewReader(strings.NewReader("event: a\ndata: 1\n\nevent: b\ndata: {\"par"))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	ev, err := r.Next()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if string(ev.Raw) != "event: b\ndata: {\"par" {
		t.Errorf("Raw = %q", ev.Raw)
	}
}

func TestReader_LongLineAndUnread(t *testing.T) {
	long := strings.Repeat("x", 100_000)
	r := NewReader(strings.NewReader("event: big\ndata: " + long + "\n\nevent: next\ndata: 2\n\n"))
	ev, err := r.Next()
	if err != nil || string(ev.Data) != long {
		t.Fatalf("long event: err=%v len=%d", err, len(ev.Data))
	}
	r.Unread(Event{Name: ev.Name, Data: bytes.Clone(ev.Data), Raw: bytes.Clone(ev.Raw)})
	again, err := r.Next()
	if err != nil || again.Name != "big" || len(again.Data) != len(long) {
		t.Fatalf("unread: %v %q", err, again.Name)
	}
	next, err := r.Next()
	if err != nil || next.Name != "next" {
		t.Fatalf("after unread: %v %q", err, next.Name)
	}
}

func TestFrame(t *testing.T) {
	if got, want := string(Frame("error", []byte(`{}`))), "event: error\ndata: {}\n\n"; got != want {
		t.Errorf("Frame = %q, want %q", got, want)
	}
}
