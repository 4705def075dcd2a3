package llmgw

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LimitKind is what a limit counts.
type LimitKind string

// Limit kinds.
const (
	// LimitUSD counts cost in USD, at the model catalog's prices.
	LimitUSD LimitKind = "usd"
	// LimitTokens counts input, output, cache-write and cache-read tokens.
	LimitTokens LimitKind = "tokens"
	// LimitRequests counts requests that reached an account; requests the
	// gateway refused itself do not count.
	LimitRequests LimitKind = "requests"
)

// Calendar windows. A LimitWindow with none of these is a sliding window of
// Span.
const (
	WindowDay   = "day"
	WindowWeek  = "week" // from Monday
	WindowMonth = "month"
	WindowTotal = "total" // never resets
)

// LimitWindow is the period a limit counts over: a calendar window (a day, week
// or month in the server's time zone), all time, or a sliding window of a
// fixed span ending now.
type LimitWindow struct {
	Calendar string        // WindowDay, WindowWeek, WindowMonth, WindowTotal; "" for a sliding window
	Span     time.Duration // the sliding window's length
}

// Limit bounds what a client key or an account may use in a window, for
// example usd=20/day, tokens=2M/5h or requests=60/1m.
type Limit struct {
	Kind   LimitKind
	Amount float64 // USD, tokens or requests; > 0
	Window LimitWindow
}

// LimitForm is the form of a limit, for error messages.
const LimitForm = "KIND=AMOUNT/WINDOW with KIND usd, tokens or requests and WINDOW day, week, month, total or a duration such as 1m, 5h or 30d (e.g. usd=20/day, tokens=2M/5h, requests=60/1m)"

// ErrLimitForm is wrapped by every error ParseLimit returns.
var ErrLimitForm = errors.New("malformed limit")

// ParseLimit reads one limit in the form LimitForm describes. Token and
// request amounts take k (thousand) and M (million) suffixes.
func ParseLimit(s string) (Limit, error) {
	fail := func(why string) (Limit, error) {
		return Limit{}, fmt.Errorf("%w %q: %s; want %s", ErrLimitForm, s, why, LimitForm)
	}
	kind, rest, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return fail("no '='")
	}
	amount, window, ok := strings.Cut(rest, "/")
	if !ok {
		return fail("no '/WINDOW'")
	}
	l := Limit{Kind: LimitKind(strings.ToLower(strings.TrimSpace(kind)))}
	switch l.Kind {
	case LimitUSD, LimitTokens, LimitRequests:
	default:
		return fail("unknown kind " + strconv.Quote(kind))
	}
	n, err := parseAmount(strings.TrimSpace(amount), l.Kind != LimitUSD)
	if err != nil {
		return fail(err.Error())
	}
	l.Amount = n
	w, err := ParseWindow(strings.TrimSpace(window))
	if err != nil {
		return fail(err.Error())
	}
	l.Window = w
	return l, nil
}

// parseAmount reads a positive number; counts (tokens, requests) are whole
// and take k and M suffixes.
func parseAmount(s string, count bool) (float64, error) {
	mult := 1.0
	if count && s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mult, s = 1e3, s[:len(s)-1]
		case 'M', 'm':
			mult, s = 1e6, s[:len(s)-1]
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsInf(n, 0) || math.IsNaN(n):
		return 0, fmt.Errorf("amount %q is not a number", s)
	case n <= 0:
		return 0, fmt.Errorf("amount must be more than 0")
	}
	n *= mult
	if count && n != math.Trunc(n) {
		return 0, fmt.Errorf("a count must be a whole number")
	}
	return n, nil
}

// ParseWindow reads a window: day, week, month, total, or a duration (Go's
// form, plus d for days) of at least one second.
func ParseWindow(s string) (LimitWindow, error) {
	switch strings.ToLower(s) {
	case WindowDay, WindowWeek, WindowMonth, WindowTotal:
		return LimitWindow{Calendar: strings.ToLower(s)}, nil
	}
	d, err := ParseSpan(s)
	if err != nil {
		return LimitWindow{}, fmt.Errorf("window %q is not day, week, month, total or a duration", s)
	}
	if d < time.Second {
		return LimitWindow{}, fmt.Errorf("window %q is shorter than a second", s)
	}
	return LimitWindow{Span: d}, nil
}

// ParseSpan reads a duration in Go's form, or a whole number of days ("30d").
func ParseSpan(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// String writes the window as ParseWindow reads it.
func (w LimitWindow) String() string {
	if w.Calendar != "" {
		return w.Calendar
	}
	return formatSpan(w.Span)
}

// formatSpan writes a span in the shortest of d, h, m and s units that is
// exact: 30d, 5h, 90m, 45s.
func formatSpan(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.unit
		}
	}
	return d.String()
}

// String writes the limit in the form ParseLimit reads, exactly.
func (l Limit) String() string {
	amount := strconv.FormatFloat(l.Amount, 'f', -1, 64)
	if l.Kind != LimitUSD {
		amount = l.FormatAmount(l.Amount)
	}
	return string(l.Kind) + "=" + amount + "/" + l.Window.String()
}

// Display writes the limit for people: usd=20.00/day.
func (l Limit) Display() string {
	return string(l.Kind) + "=" + l.FormatAmount(l.Amount) + "/" + l.Window.String()
}

// FormatAmount writes an amount of the limit's kind: USD with two decimals
// (more for a smaller amount), counts whole with k or M where exact.
func (l Limit) FormatAmount(n float64) string {
	if l.Kind == LimitUSD {
		return FormatUSD(n)
	}
	switch {
	case n >= 1e6 && math.Mod(n, 1e6) == 0:
		return strconv.FormatFloat(n/1e6, 'f', -1, 64) + "M"
	case n >= 1e3 && math.Mod(n, 1e3) == 0:
		return strconv.FormatFloat(n/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(math.Round(n), 'f', -1, 64)
}

// FormatUSD writes a USD amount for people: two decimals from $1 up (and
// for 0); below $1 four significant digits, trailing zeros trimmed but never
// fewer than two decimals. So $0.000123 reads "0.000123" where a fixed
// rounding would show nothing at all, and $12.3456 reads "12.35".
func FormatUSD(usd float64) string {
	if usd == 0 || math.Abs(usd) >= 1 {
		return strconv.FormatFloat(usd, 'f', 2, 64)
	}
	// 4 significant digits: 3 more decimals than the first nonzero one's.
	decimals := 3 - int(math.Floor(math.Log10(math.Abs(usd))))
	s := strconv.FormatFloat(usd, 'f', decimals, 64)
	keep := strings.IndexByte(s, '.') + 3 // the point and two decimals
	trimmed := strings.TrimRight(s, "0")
	if len(trimmed) < keep {
		return s[:keep] // rounding reached $1, or the value is whole cents
	}
	return trimmed
}

// Period returns the calendar window containing t, in loc: [start, end).
// For a total window both are zero; for a sliding window it is the span
// ending at t.
func (w LimitWindow) Period(t time.Time, loc *time.Location) (start, end time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	y, m, d := lt.Date()
	switch w.Calendar {
	case WindowDay:
		start = time.Date(y, m, d, 0, 0, 0, 0, loc)
		return start, start.AddDate(0, 0, 1)
	case WindowWeek:
		back := (int(lt.Weekday()) + 6) % 7 // days since Monday
		start = time.Date(y, m, d-back, 0, 0, 0, 0, loc)
		return start, start.AddDate(0, 0, 7)
	case WindowMonth:
		start = time.Date(y, m, 1, 0, 0, 0, 0, loc)
		return start, start.AddDate(0, 1, 0)
	case WindowTotal:
		return time.Time{}, time.Time{}
	}
	return t.Add(-w.Span), t
}

// ParseLimits reads a comma-separated list of limits, as stored. A kind
// may appear once per window.
func ParseLimits(s string) ([]Limit, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []Limit
	for _, part := range strings.Split(s, ",") {
		l, err := ParseLimit(part)
		if err != nil {
			return nil, err
		}
		out, err = AddLimit(out, l)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AddLimit adds l to limits; a second limit of the same kind and window is
// an error.
func AddLimit(limits []Limit, l Limit) ([]Limit, error) {
	for _, o := range limits {
		if o.Kind == l.Kind && o.Window == l.Window {
			return nil, fmt.Errorf("%w: two %s limits per %s (%s and %s)", ErrInvalid, l.Kind, l.Window, o, l)
		}
	}
	return append(limits, l), nil
}

// FormatLimits writes limits as ParseLimits reads them.
func FormatLimits(limits []Limit) string {
	parts := make([]string, len(limits))
	for i, l := range limits {
		parts[i] = l.String()
	}
	return strings.Join(parts, ",")
}

// SetLimits returns limits with each of set in place of the limit of the
// same kind and window, or after them if there is none: how --limit edits.
func SetLimits(limits, set []Limit) []Limit {
	out := slices.Clone(limits)
	for _, l := range set {
		if i := slices.IndexFunc(out, func(o Limit) bool { return o.Kind == l.Kind && o.Window == l.Window }); i >= 0 {
			out[i] = l
		} else {
			out = append(out, l)
		}
	}
	return out
}

// ValidLimits reports why limits could not be stored: a limit that would
// not read back as written (a repeated kind and window, an amount of 0).
// Errors wrap ErrInvalid.
func ValidLimits(limits []Limit) error {
	if _, err := ParseLimits(FormatLimits(limits)); err != nil {
		if errors.Is(err, ErrInvalid) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}
