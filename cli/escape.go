package cli

import (
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"
)

// escape makes s safe to print on an admin's terminal: control characters
// (C0 including tab, CR, LF and ESC; DEL; C1), bidirectional-text controls,
// the Unicode line and paragraph separators and bytes that are not UTF-8
// become visible escapes in Go's style (\r, \n, \x1b, \u009b, \u202e). Other
// text, printable Unicode included, is left as it is. Human-readable output
// applies it to every string it did not write itself (model, key and account
// names, error messages, reasons) so that such a string cannot split a table
// row or send escape sequences to the terminal. JSON and CSV output carry the
// exact strings: their encoders quote them.
func escape(s string) string {
	i := strings.IndexFunc(s, needsEscape)
	if i < 0 && utf8.ValidString(s) {
		return s // the common case: nothing to do
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case needsEscape(r):
			q := strconv.QuoteRuneToASCII(r) // e.g. '\n', '\x1b', '\u009b'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[:size])
		}
		s = s[size:]
	}
	return b.String()
}

// needsEscape reports whether escape rewrites r.
func needsEscape(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == '\u2028' || r == '\u2029' ||
		unicode.Is(unicode.Bidi_Control, r)
}

// printEscaped is fmt.Fprintf for human-readable output: every argument of a
// string kind (string, llmgw.AccountStatus, ...) is escaped first, so a table
// writer's tabs and newlines come only from format. It is the one place
// tables and text reports print their rows through; use %s, not %q, for
// strings.
func printEscaped(w io.Writer, format string, args ...any) (int, error) {
	esc := make([]any, len(args))
	for i, a := range args {
		esc[i] = a
		if a != nil && reflect.TypeOf(a).Kind() == reflect.String {
			esc[i] = escape(fmt.Sprint(a))
		}
	}
	return fmt.Fprintf(w, format, esc...)
}

// table lays rows out in aligned columns on w, each printed as printEscaped
// does. The first write error sticks: later rows are dropped and Flush
// returns it, so a command checks one error, not one per row.
type table struct {
	tw  *tabwriter.Writer
	err error
}

func newTable(w io.Writer) *table {
	return &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
}

// row prints one line; format ends with "\n" and separates columns by tabs.
func (t *table) row(format string, args ...any) {
	if t.err == nil {
		_, t.err = printEscaped(t.tw, format, args...)
	}
}

// Flush writes out the rows buffered so far and returns the first write
// error.
func (t *table) Flush() error {
	if t.err != nil {
		return t.err
	}
	return t.tw.Flush()
}
