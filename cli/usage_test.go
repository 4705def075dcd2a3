package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
)

// usageDB returns a database holding accounts a1 and a2 and a small request
// log, written through store.UsageWriter as the server writes it:
//
//	#  time (UTC)        account key    model                     status        tokens                               ms
//	1  2026-03-01 10:00  a1      alice  claude-opus-4-5-20251101  200           in 1000 out 2000 read 10000 write 4000 100
//	2  2026-03-01 23:30  a1      bob    claude-sonnet-4-5         200           in 500 out 100 write 1000 (all 1h)     300
//	3  2026-03-02 01:00  a2      alice  claude-opus-4-5-20251101  529           -                                      50
//	4  2026-03-02 02:00  a2      alice  claude-haiku-4-5          200 (cut off) in 10 out 5                           1000
//	5  2026-03-02 03:00  -       alice  claude-opus-4-5-20251101  503 (no account was usable)                         5
//	6  2026-03-02 04:00  a2      bob    gpt-unknown               200           in 100 out 100                         200
//	7  2026-03-05 00:00  a1      alice  claude-opus-4-5-20251101  200           in 1                                   10
func usageDB(t *testing.T) string {
	t.Helper()
	p := newDB(t)
	mustRun(t, "--db", p, "account", "add", "--name", "a1", "--api-key", testAPIKey)
	mustRun(t, "--db", p, "account", "add", "--name", "a2", "--api-key", testAPIKey)

	ctx := context.Background()
	db, err := openStore(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	w := store.NewUsageWriter(db, store.UsageWriterOptions{})
	at := func(day, hour, minute int) time.Time { return time.Date(2026, 3, day, hour, minute, 0, 0, time.UTC) }
	row := func(t time.Time, acct int64, key, model string, status int, tok llmgw.Tokens, ms int) llmgw.Usage {
		u := llmgw.Usage{Time: t, KeyName: key, Model: model, Status: status, Tokens: tok,
			Duration: time.Duration(ms) * time.Millisecond, Dialect: llmgw.DialectAnthropic}
		if acct != 0 {
			u.AccountID, u.AccountName = acct, map[int64]string{1: "a1", 2: "a2"}[acct]
			u.Attempts = []llmgw.Attempt{{AccountID: acct, AccountName: u.AccountName, Status: status}}
		}
		return u
	}
	opus := "claude-opus-4-5-20251101"
	rows := []llmgw.Usage{
		row(at(1, 10, 0), 1, "alice", opus, 200, llmgw.Tokens{Input: 1000, Output: 2000, CacheRead: 10000, CacheWrite: 4000}, 100),
		row(at(1, 23, 30), 1, "bob", "claude-sonnet-4-5", 200, llmgw.Tokens{Input: 500, Output: 100, CacheWrite: 1000, CacheWrite1h: 1000}, 300),
		row(at(2, 1, 0), 2, "alice", opus, 529, llmgw.Tokens{}, 50),
		row(at(2, 2, 0), 2, "alice", "claude-haiku-4-5", 200, llmgw.Tokens{Input: 10, Output: 5}, 1000),
		row(at(2, 3, 0), 0, "alice", opus, 503, llmgw.Tokens{}, 5),
		row(at(2, 4, 0), 2, "bob", "gpt-unknown", 200, llmgw.Tokens{Input: 100, Output: 100}, 200),
		row(at(5, 0, 0), 1, "alice", opus, 200, llmgw.Tokens{Input: 1}, 10),
	}
	rows[2].ErrorType = "overloaded_error"
	rows[3].EndedEarly = true
	rows[4].ErrorType = "overloaded_error"
	for _, u := range rows {
		w.Record(u)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// Expected sums over rows 1-4 and 6 (row 5 never reached an account, row 7
// is outside the window).
var (
	wantA1 = reportRowJSON{Group: "a1", Account: "a1", Requests: 2, Errors: 0,
		InputTokens: 1500, OutputTokens: 2100, CacheReadTokens: 10000, CacheWriteTokens: 5000,
		CacheWrite5mToken: 4000, CacheWrite1hToken: 1000,
		CostUSD: 0.094,                                  // opus 1000×5 + 2000×25 + 10000×0.5 + 4000×6.25 = 85000; sonnet 500×3 + 100×15 + 1000×6 = 9000
		P50Ms:   100, P95Ms: 300, CacheHitRatio: 0.6061} // 10000 / (1500 + 10000 + 5000)
	wantA2 = reportRowJSON{Group: "a2", Account: "a2", Requests: 3, Errors: 2,
		InputTokens: 110, OutputTokens: 105,
		CostUSD: 0.000035, // haiku 10×1 + 5×5; the unknown model costs 0
		P50Ms:   200, P95Ms: 1000}
	wantTotal = reportRowJSON{Group: "TOTAL", Requests: 5, Errors: 2,
		InputTokens: 1610, OutputTokens: 2205, CacheReadTokens: 10000, CacheWriteTokens: 5000,
		CacheWrite5mToken: 4000, CacheWrite1hToken: 1000,
		CostUSD: 0.094035, P50Ms: 200, P95Ms: 1000, CacheHitRatio: 0.602}
)

func reportJSONOf(t *testing.T, args ...string) (reportJSON, string) {
	t.Helper()
	stdout, stderr := mustRun(t, append(args, "--format", "json")...)
	var rep reportJSON
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("usage report --format json: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Errorf("usage report printed more than one JSON value:\n%s", stdout)
	}
	return rep, stderr
}

func TestUsageReport_JSONByAccount(t *testing.T) {
	t.Parallel()
	db := usageDB(t)
	got, stderr := reportJSONOf(t, "--db", db, "usage", "report", "--since", "2026-03-01", "--until", "2026-03-02", "--by", "account")
	want := reportJSON{
		Since: "2026-03-01T00:00:00Z",
		Until: "2026-03-03T00:00:00Z", // a date given to --until includes that day
		By:    "account",
		Rows:  []reportRowJSON{wantA1, wantA2},
		Total: wantTotal,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if !strings.Contains(stderr, `no price known for model "gpt-unknown"`) || !strings.Contains(stderr, "prices:") {
		t.Errorf("stderr = %q, want a note naming gpt-unknown and how to price it", stderr)
	}
}

func TestUsageReport_Groupings(t *testing.T) {
	t.Parallel()
	db := usageDB(t)
	window := []string{"--since", "2026-03-01T00:00:00Z", "--until", "2026-03-03T00:00:00Z"}
	type summary struct {
		Group             string
		Requests, Errors  int64
		Input, CacheWrite int64
		CostUSD           float64
	}
	tests := []struct {
		by   string
		tz   string
		want []summary
	}{
		{"key", "UTC", []summary{
			{"alice", 3, 2, 1010, 4000, 0.085035},
			{"bob", 2, 0, 600, 1000, 0.009},
		}},
		{"model", "UTC", []summary{
			{"claude-haiku-4-5", 1, 1, 10, 0, 0.000035},
			{"claude-opus-4-5-20251101", 2, 1, 1000, 4000, 0.085},
			{"claude-sonnet-4-5", 1, 0, 500, 1000, 0.009},
			{"gpt-unknown", 1, 0, 100, 0, 0},
		}},
		{"day", "UTC", []summary{
			{"2026-03-01", 2, 0, 1500, 5000, 0.094},
			{"2026-03-02", 3, 2, 110, 0, 0.000035},
		}},
		{"day", "Asia/Tokyo", []summary{ // UTC+9: row 2 moves to the 2nd
			{"2026-03-01", 1, 0, 1000, 4000, 0.085},
			{"2026-03-02", 4, 2, 610, 1000, 0.009035},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.by+" "+tt.tz, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--db", db, "usage", "report", "--by", tt.by, "--tz", tt.tz}, window...)
			rep, _ := reportJSONOf(t, args...)
			var got []summary
			for _, r := range rep.Rows {
				got = append(got, summary{r.Group, r.Requests, r.Errors, r.InputTokens, r.CacheWriteTokens, r.CostUSD})
				// The group's field of its own name, and only that one.
				named := reportRowJSON{Group: r.Group}
				switch tt.by {
				case "key":
					named.Key = r.Group
				case "model":
					named.Model = r.Group
				case "day":
					named.Day = r.Group
				}
				if diff := cmp.Diff(named, reportRowJSON{Group: r.Group, Account: r.Account, Key: r.Key, Model: r.Model, Day: r.Day}); diff != "" {
					t.Errorf("grouping fields of row %s (-want +got):\n%s", r.Group, diff)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantTotal, rep.Total); diff != "" {
				t.Errorf("total (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUsageReport_Filters(t *testing.T) {
	t.Parallel()
	db := usageDB(t)
	type summary struct {
		Group            string
		Requests, Errors int64
		CostUSD          float64
	}
	var (
		a1All = summary{"a1", 2, 0, 0.094}
		a2All = summary{"a2", 3, 2, 0.000035}
	)
	tests := []struct {
		name string
		args []string
		want []summary
		note bool // stderr notes that gpt-unknown has no price
	}{
		{"key", []string{"--key", "alice"}, []summary{{"a1", 1, 0, 0.085}, {"a2", 2, 2, 0.000035}}, false},
		{"key repeated", []string{"--key", "bob", "--key", "alice"}, []summary{a1All, a2All}, true},
		{"key comma list", []string{"--key", "alice,bob"}, []summary{a1All, a2All}, true},
		{"key matches exactly", []string{"--key", "Alice"}, nil, false},
		{"unknown key", []string{"--key", "carol"}, nil, false},
		{"account", []string{"--account", "a2"}, []summary{a2All}, true},
		{"model glob", []string{"--model", "claude-*"}, []summary{a1All, {"a2", 2, 2, 0.000035}}, false},
		{"model globs", []string{"--model", "claude-sonnet-*", "--model", "claude-haiku-*"},
			[]summary{{"a1", 1, 0, 0.009}, {"a2", 1, 1, 0.000035}}, false},
		{"model glob matches the whole name", []string{"--model", "claude-opus-4-5"}, nil, false},
		{"key and account", []string{"--key", "bob", "--account", "a2"}, []summary{{"a2", 1, 0, 0}}, true},
		{"all three", []string{"--key", "alice", "--account", "a2", "--model", "claude-opus-*"}, []summary{{"a2", 1, 1, 0}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--db", db, "usage", "report", "--since", "2026-03-01", "--until", "2026-03-02"}, tt.args...)
			rep, stderr := reportJSONOf(t, args...)
			var got []summary
			var requests int64
			for _, r := range rep.Rows {
				got = append(got, summary{r.Group, r.Requests, r.Errors, r.CostUSD})
				requests += r.Requests
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
			if rep.Total.Requests != requests {
				t.Errorf("total requests = %d, want %d, the filtered rows' sum", rep.Total.Requests, requests)
			}
			if note := strings.Contains(stderr, `"gpt-unknown"`); note != tt.note {
				t.Errorf("stderr = %q; a note on gpt-unknown: %v, want %v", stderr, note, tt.note)
			}
		})
	}
}

func TestUsageReport_SinceFilters(t *testing.T) {
	t.Parallel()
	db := usageDB(t)
	rep, _ := reportJSONOf(t, "--db", db, "usage", "report", "--since", "2026-03-02", "--until", "2026-03-02")
	if diff := cmp.Diff([]reportRowJSON{wantA2}, rep.Rows); diff != "" {
		t.Errorf("rows for 2026-03-02 (-want +got):\n%s", diff)
	}
	// The default window is the last 24 hours, which holds none of these rows.
	rep, _ = reportJSONOf(t, "--db", db, "usage", "report")
	if len(rep.Rows) != 0 || rep.Total.Requests != 0 {
		t.Errorf("default window: rows %+v total %+v, want none", rep.Rows, rep.Total)
	}
	if rep.Rows == nil {
		t.Errorf("rows = null, want []")
	}
}

func TestUsageReport_Table(t *testing.T) {
	t.Parallel()
	db := usageDB(t)
	stdout, _ := mustRun(t, "--db", db, "usage", "report", "--since", "2026-03-01", "--until", "2026-03-02")
	var got [][]string
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		got = append(got, strings.Fields(l))
	}
	want := [][]string{
		{"ACCOUNT", "REQUESTS", "ERRORS", "INPUT", "OUTPUT", "CACHE", "READ", "CACHE", "WRITE", "CACHE", "HIT", "COST", "USD", "P50", "MS", "P95", "MS"},
		{"a1", "2", "0", "1500", "2100", "10000", "5000", "0.61", "0.094", "100", "300"},
		{"a2", "3", "2", "110", "105", "0", "0", "0.00", "0.000035", "200", "1000"},            // not 0.0000
		{"TOTAL", "5", "2", "1610", "2205", "10000", "5000", "0.60", "0.09403", "200", "1000"}, // the double nearest 0.094035 is just below it
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestFormatCost(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		usd  float64
		want string
	}{
		{0, "0.00"},
		{0.000123, "0.000123"},
		{0.0001234567, "0.0001235"},
		{0.000035, "0.000035"},
		{0.00000003, "0.00000003"},
		{0.0940351, "0.09404"},
		{0.0940349, "0.09403"},
		{0.094, "0.094"},
		{0.5, "0.50"},
		{0.123456, "0.1235"},
		{0.99999, "1.00"}, // rounds up to $1: two decimals, not "1"
		{1, "1.00"},
		{12.3456, "12.35"},
		{1234.5, "1234.50"},
	} {
		if got := formatCost(tt.usd); got != tt.want {
			t.Errorf("formatCost(%v) = %q, want %q", tt.usd, got, tt.want)
		}
	}
}

func TestUsageReport_CSV(t *testing.T) {
	t.Parallel()
	db := usageDB(t)
	args := []string{"--db", db, "usage", "report", "--since", "2026-03-01", "--until", "2026-03-02", "--format", "csv"}
	// The first column is named after the grouping, and the rows are the
	// groups only: no total row to count twice when summing a column.
	stdout, _ := mustRun(t, args...)
	want := "account,requests,errors,input_tokens,output_tokens,cache_read_input_tokens,cache_creation_input_tokens," +
		"cache_creation_5m_input_tokens,cache_creation_1h_input_tokens,cost_usd,p50_ms,p95_ms,cache_hit_ratio\n" +
		"a1,2,0,1500,2100,10000,5000,4000,1000,0.094,100,300,0.6061\n" +
		"a2,3,2,110,105,0,0,0,0,0.000035,200,1000,0\n"
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("csv (-want +got):\n%s", diff)
	}
	stdout, _ = mustRun(t, append(args, "--total")...)
	want += "TOTAL,5,2,1610,2205,10000,5000,4000,1000,0.094035,200,1000,0.602\n"
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("csv --total (-want +got):\n%s", diff)
	}
}

// Rows 1-4 and 6 by key and day (UTC), in that order.
var (
	wantAliceDay1 = reportRowJSON{Group: "alice, 2026-03-01", Key: "alice", Day: "2026-03-01", Requests: 1,
		InputTokens: 1000, OutputTokens: 2000, CacheReadTokens: 10000, CacheWriteTokens: 4000, CacheWrite5mToken: 4000,
		CostUSD: 0.085, P50Ms: 100, P95Ms: 100, CacheHitRatio: 0.6667}
	wantAliceDay2 = reportRowJSON{Group: "alice, 2026-03-02", Key: "alice", Day: "2026-03-02", Requests: 2, Errors: 2,
		InputTokens: 10, OutputTokens: 5, CostUSD: 0.000035, P50Ms: 50, P95Ms: 1000}
	wantBobDay1 = reportRowJSON{Group: "bob, 2026-03-01", Key: "bob", Day: "2026-03-01", Requests: 1,
		InputTokens: 500, OutputTokens: 100, CacheWriteTokens: 1000, CacheWrite1hToken: 1000,
		CostUSD: 0.009, P50Ms: 300, P95Ms: 300}
	wantBobDay2 = reportRowJSON{Group: "bob, 2026-03-02", Key: "bob", Day: "2026-03-02", Requests: 1,
		InputTokens: 100, OutputTokens: 100, P50Ms: 200, P95Ms: 200}
)

func TestUsageReport_ByKeyDay_JSON(t *testing.T) {
	t.Parallel()
	db := usageDB(t)
	window := []string{"--db", db, "usage", "report", "--since", "2026-03-01", "--until", "2026-03-02"}
	got, _ := reportJSONOf(t, append(window, "--by", "key,day")...)
	want := reportJSON{
		Since: "2026-03-01T00:00:00Z",
		Until: "2026-03-03T00:00:00Z",
		By:    "key,day",
		Rows:  []reportRowJSON{wantAliceDay1, wantAliceDay2, wantBobDay1, wantBobDay2},
		Total: wantTotal,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}

	// The fields' order is the sort order; group follows it too.
	got, _ = reportJSONOf(t, append(window, "--by", "day,key")...)
	var groups []string
	for _, r := range got.Rows {
		groups = append(groups, r.Group)
	}
	wantGroups := []string{"2026-03-01, alice", "2026-03-01, bob", "2026-03-02, alice", "2026-03-02, bob"}
	if diff := cmp.Diff(wantGroups, groups); diff != "" {
		t.Errorf("--by day,key groups (-want +got):\n%s", diff)
	}
	if got.By != "day,key" {
		t.Errorf("by = %q, want %q", got.By, "day,key")
	}
}

func TestUsageReport_ByKeyDay_CSV(t *testing.T) {
	t.Parallel()
	db := usageDB(t)
	args := []string{"--db", db, "usage", "report", "--since", "2026-03-01", "--until", "2026-03-02", "--by", "key,day", "--format", "csv"}
	stdout, _ := mustRun(t, args...)
	want := "key,day,requests,errors,input_tokens,output_tokens,cache_read_input_tokens,cache_creation_input_tokens," +
		"cache_creation_5m_input_tokens,cache_creation_1h_input_tokens,cost_usd,p50_ms,p95_ms,cache_hit_ratio\n" +
		"alice,2026-03-01,1,0,1000,2000,10000,4000,4000,0,0.085,100,100,0.6667\n" +
		"alice,2026-03-02,2,2,10,5,0,0,0,0,0.000035,50,1000,0\n" +
		"bob,2026-03-01,1,0,500,100,0,1000,0,1000,0.009,300,300,0\n" +
		"bob,2026-03-02,1,0,100,100,0,0,0,0,0,200,200,0\n"
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("csv (-want +got):\n%s", diff)
	}
	stdout, _ = mustRun(t, append(args, "--total")...)
	want += "TOTAL,,5,2,1610,2205,10000,5000,4000,1000,0.094035,200,1000,0.602\n"
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("csv --total (-want +got):\n%s", diff)
	}
}

func TestUsageReport_ByKeyDay_Table(t *testing.T) {
	t.Parallel()
	db := usageDB(t)
	stdout, _ := mustRun(t, "--db", db, "usage", "report", "--since", "2026-03-01", "--until", "2026-03-02", "--by", "key,day")
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	var got [][]string
	for _, l := range lines {
		got = append(got, strings.Fields(l))
	}
	want := [][]string{
		{"KEY", "DAY", "REQUESTS", "ERRORS", "INPUT", "OUTPUT", "CACHE", "READ", "CACHE", "WRITE", "CACHE", "HIT", "COST", "USD", "P50", "MS", "P95", "MS"},
		{"alice", "2026-03-01", "1", "0", "1000", "2000", "10000", "4000", "0.67", "0.085", "100", "100"},
		{"alice", "2026-03-02", "2", "2", "10", "5", "0", "0", "0.00", "0.000035", "50", "1000"},
		{"bob", "2026-03-01", "1", "0", "500", "100", "0", "1000", "0.00", "0.009", "300", "300"},
		{"bob", "2026-03-02", "1", "0", "100", "100", "0", "0", "0.00", "0.00", "200", "200"},
		{"TOTAL", "5", "2", "1610", "2205", "10000", "5000", "0.60", "0.09403", "200", "1000"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	// The total's DAY cell is blank: its numbers stay under their headings.
	if len(lines) == len(want) {
		if h, tot := strings.Index(lines[0], "REQUESTS"), strings.Index(lines[5], " 5 ")+1; h != tot {
			t.Errorf("TOTAL's requests at column %d, REQUESTS at %d:\n%s", tot, h, stdout)
		}
	}
}

func TestUsageReport_ConfigPrices(t *testing.T) {
	t.Parallel()
	db := usageDB(t)
	cfg := writeFile(t, "llmgw.yaml", "prices:\n  gpt-unknown: {input: 10, output: 20}\n  claude-haiku-4*:\n    input: 2\n    output: 4\n")
	rep, stderr := reportJSONOf(t, "--db", db, "--config", cfg, "usage", "report",
		"--since", "2026-03-02", "--until", "2026-03-02")
	// haiku 10×2 + 5×4 = 40; gpt-unknown 100×10 + 100×20 = 3000
	if got, want := rep.Total.CostUSD, 0.00304; got != want {
		t.Errorf("cost = %v, want %v", got, want)
	}
	if strings.Contains(stderr, "no price") {
		t.Errorf("stderr = %q, want no note once every model has a price", stderr)
	}
}

func TestUsageReport_BadFlags(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--by", "team"}, `--by "team": "team" is not a field; use account, key, model or day`},
		{[]string{"--by", "key,team"}, `--by "key,team": "team" is not a field; use account, key, model or day`},
		{[]string{"--by", "key,"}, `--by "key,": "" is not a field`},
		{[]string{"--by", "key,key"}, `--by "key,key": key is given twice`},
		{[]string{"--format", "xml"}, `--format "xml"`},
		{[]string{"--model", "claude-["}, `--model "claude-[" is not a glob pattern`},
		{[]string{"--tz", "Mars/Olympus"}, `--tz "Mars/Olympus"`},
		{[]string{"--since", "yesterday"}, `--since: "yesterday" is not a duration`},
		{[]string{"--until", "2026-13-01"}, "--until:"},
		{[]string{"--since", "2026-03-02", "--until", "2026-03-01T00:00:00Z"}, "is not before"},
	}
	for _, tt := range tests {
		_, _, err := run(t, append([]string{"--db", db, "usage", "report"}, tt.args...)...)
		wantErr(t, err, tt.want)
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("err = %q, want one line", err)
		}
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	vals := []int64{10, 1, 9, 2, 8, 3, 7, 4, 6, 5, 20, 11, 12, 13, 14, 15, 16, 17, 18, 19}
	for _, tt := range []struct {
		p    int
		want int64
	}{{50, 10}, {95, 19}, {100, 20}, {1, 1}} {
		if got := percentile(vals, tt.p); got != tt.want {
			t.Errorf("percentile(1..20, %d) = %d, want %d", tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %d, want 0", got)
	}
	if got := percentile([]int64{7}, 95); got != 7 {
		t.Errorf("percentile([7], 95) = %d, want 7", got)
	}
}

func TestUsagePrune(t *testing.T) {
	db := usageDB(t)
	before, _ := reportJSONOf(t, "--db", db, "usage", "report", "--since", "3650d", "--format", "json")
	out, _ := mustRun(t, "--db", db, "usage", "prune", "--before", "2h", "--dry-run")
	if !strings.HasPrefix(out, "would delete ") {
		t.Fatalf("dry run said %q", out)
	}
	after, _ := reportJSONOf(t, "--db", db, "usage", "report", "--since", "3650d", "--format", "json")
	if after.Total.Requests != before.Total.Requests {
		t.Fatalf("a dry run deleted rows")
	}
	out, _ = mustRun(t, "--db", db, "usage", "prune", "--before", "1s")
	if !strings.HasPrefix(out, "deleted ") {
		t.Fatalf("prune said %q", out)
	}
	left, _ := reportJSONOf(t, "--db", db, "usage", "report", "--since", "3650d", "--format", "json")
	if left.Total.Requests != 0 {
		t.Errorf("after pruning everything older than 1s, %d requests remain", left.Total.Requests)
	}
	if _, _, err := run(t, "--db", db, "usage", "prune"); err == nil {
		t.Error("prune without --before succeeded")
	}
}
