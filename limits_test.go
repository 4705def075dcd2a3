package llmgw

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Limit
		display string
		stored  string
	}{
		{"usd=20/day", Limit{LimitUSD, 20, LimitWindow{Calendar: WindowDay}}, "usd=20.00/day", "usd=20/day"},
		{"usd=0.05/day", Limit{LimitUSD, 0.05, LimitWindow{Calendar: WindowDay}}, "usd=0.05/day", "usd=0.05/day"},
		{"usd=0.001234/week", Limit{LimitUSD, 0.001234, LimitWindow{Calendar: WindowWeek}}, "usd=0.001234/week", "usd=0.001234/week"},
		{"tokens=2000000/5h", Limit{LimitTokens, 2e6, LimitWindow{Span: 5 * time.Hour}}, "tokens=2M/5h", "tokens=2M/5h"},
		{"tokens=2M/5h", Limit{LimitTokens, 2e6, LimitWindow{Span: 5 * time.Hour}}, "tokens=2M/5h", "tokens=2M/5h"},
		{"tokens=1.5k/month", Limit{LimitTokens, 1500, LimitWindow{Calendar: WindowMonth}}, "tokens=1500/month", "tokens=1500/month"},
		{"requests=60/1m", Limit{LimitRequests, 60, LimitWindow{Span: time.Minute}}, "requests=60/1m", "requests=60/1m"},
		{"REQUESTS=10/Total", Limit{LimitRequests, 10, LimitWindow{Calendar: WindowTotal}}, "requests=10/total", "requests=10/total"},
		{"usd=100/30d", Limit{LimitUSD, 100, LimitWindow{Span: 30 * 24 * time.Hour}}, "usd=100.00/30d", "usd=100/30d"},
		{"requests=5/90m", Limit{LimitRequests, 5, LimitWindow{Span: 90 * time.Minute}}, "requests=5/90m", "requests=5/90m"},
	} {
		got, err := ParseLimit(tc.in)
		if err != nil {
			t.Errorf("ParseLimit(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseLimit(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if d := got.Display(); d != tc.display {
			t.Errorf("%q displays as %q, want %q", tc.in, d, tc.display)
		}
		if s := got.String(); s != tc.stored {
			t.Errorf("%q stores as %q, want %q", tc.in, s, tc.stored)
		}
		if back, err := ParseLimit(got.String()); err != nil || back != got {
			t.Errorf("%q does not round-trip: %+v, %v", got.String(), back, err)
		}
	}
}

func TestParseLimit_Malformed(t *testing.T) {
	for _, in := range []string{"", "usd", "usd=20", "usd=/day", "usd=abc/day", "usd=-1/day", "usd=0/day",
		"euros=5/day", "usd=5/fortnight", "usd=5/0s", "usd=5/500ms", "tokens=1.5/day", "requests=2.5k5/day", "usd=5k/day", "usd=NaN/day"} {
		_, err := ParseLimit(in)
		if !errors.Is(err, ErrLimitForm) {
			t.Errorf("ParseLimit(%q) = %v, want ErrLimitForm", in, err)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "KIND=AMOUNT/WINDOW") {
			t.Errorf("ParseLimit(%q) error %q is not one line showing the form", in, msg)
		}
	}
}

func TestParseLimits_Duplicate(t *testing.T) {
	ls, err := ParseLimits("usd=20/day,tokens=2M/5h,requests=60/1m")
	if err != nil || len(ls) != 3 {
		t.Fatalf("ParseLimits = %v, %v", ls, err)
	}
	if got := FormatLimits(ls); got != "usd=20/day,tokens=2M/5h,requests=60/1m" {
		t.Errorf("FormatLimits = %q", got)
	}
	if _, err := ParseLimits("usd=20/day,usd=30/day"); !errors.Is(err, ErrInvalid) {
		t.Errorf("two usd/day limits: %v, want ErrInvalid", err)
	}
	if _, err := ParseLimits("usd=20/day,usd=30/week"); err != nil {
		t.Errorf("usd per day and per week: %v", err)
	}
}

func TestLimitWindow_Period(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip(err)
	}
	at := time.Date(2026, 12, 9, 23, 30, 0, 0, time.UTC) // a Wednesday; 00:30 Thursday in Berlin
	for _, tc := range []struct {
		w          LimitWindow
		loc        *time.Location
		start, end time.Time
	}{
		{LimitWindow{Calendar: WindowDay}, time.UTC, time.Date(2026, 12, 9, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)},
		{LimitWindow{Calendar: WindowDay}, berlin, time.Date(2026, 12, 10, 0, 0, 0, 0, berlin), time.Date(2026, 12, 11, 0, 0, 0, 0, berlin)},
		{LimitWindow{Calendar: WindowWeek}, time.UTC, time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 14, 0, 0, 0, 0, time.UTC)},
		{LimitWindow{Calendar: WindowMonth}, time.UTC, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{LimitWindow{Calendar: WindowTotal}, time.UTC, time.Time{}, time.Time{}},
		{LimitWindow{Span: 5 * time.Hour}, time.UTC, at.Add(-5 * time.Hour), at},
	} {
		s, e := tc.w.Period(at, tc.loc)
		if !s.Equal(tc.start) || !e.Equal(tc.end) {
			t.Errorf("%s in %s: [%s, %s), want [%s, %s)", tc.w, tc.loc, s, e, tc.start, tc.end)
		}
	}
	// A Sunday belongs to the week that began the Monday before.
	sun := time.Date(2026, 12, 13, 12, 0, 0, 0, time.UTC)
	if s, _ := (LimitWindow{Calendar: WindowWeek}).Period(sun, time.UTC); !s.Equal(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("week of Sunday starts %s", s)
	}
}

func TestFormatUSD(t *testing.T) {
	for in, want := range map[float64]string{0: "0.00", 20: "20.00", 20.126: "20.13", 0.05: "0.05", 0.000123: "0.000123", 0.0045678: "0.004568", 0.0001: "0.0001", 0.5: "0.50", 12.3456: "12.35"} {
		if got := FormatUSD(in); got != want {
			t.Errorf("FormatUSD(%v) = %q, want %q", in, got, want)
		}
	}
}
