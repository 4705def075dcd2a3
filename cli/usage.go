package cli

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // --tz works on machines without a zoneinfo database

	urfave "github.com/urfave/cli/v2"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/policy"
	"github.com/llmgw/llmgw/store"
)

func usageCommand(env *appEnv) *urfave.Command {
	return groupCommand("usage", "report who used what",
		`Example:
  llmgw usage report --since 7d --by key`,
		&urfave.Command{
			Name:      "report",
			Usage:     "sum requests, tokens, cost and latency per account, key, model or day",
			UsageText: "llmgw usage report [--since 24h|2026-11-01|RFC3339] [--until ...] [--by account|key|model|day[,...]] [--format table|json|csv] [--total] [--tz UTC|Local|Area/City] [--key NAME]... [--account NAME]... [--model PATTERN]...",
			Description: `Sums the request log between --since and --until. --since and --until take a
duration back from now (24h, 7d), a date (2026-11-01, midnight in --tz) or an
RFC 3339 time; a date given to --until includes that whole day. Requests count
only calls that reached an account; errors are those that failed or ended
early. Cost is an estimate from a built-in price table per model family,
extended or overridden by "prices:" in the config file. Latency is the total
request duration; p50 and p95 in milliseconds.

--by takes one field or a comma list of them (key,day): one column per field,
rows sorted by the fields in the order given, days ascending and names
alphabetically. JSON rows carry each field under its own name ("key",
"day") and "group", the values joined by ", ". CSV names its first columns
after the fields and has a TOTAL row only with --total; the table and JSON
always end with the total.

--key and --account keep only the requests of the client keys and accounts
with those exact names, as the request log recorded them; --model keeps the
requests for models matching a glob pattern such as 'claude-sonnet-*'. Each
may be repeated or given a comma list (any value matches); different flags
must all match.

Example:
  llmgw usage report --since 7d --by key
  llmgw usage report --since 7d --key alice --model 'claude-sonnet-*'
  llmgw usage report --since 7d --by key,day --key alice --format csv
  llmgw usage report --since 2026-11-01 --until 2026-11-30 --by day --tz Europe/Berlin
  llmgw usage report --format json | jq .total.cost_usd`,
			Flags: []urfave.Flag{
				&urfave.StringFlag{Name: "since", Value: "24h", Usage: "start: duration back from now, date or RFC 3339 `TIME`"},
				&urfave.StringFlag{Name: "until", Usage: "end (default now): duration back from now, date (inclusive) or RFC 3339 `TIME`"},
				&urfave.StringFlag{Name: "by", Value: "account", Usage: "group by `FIELDS`: account, key, model or day, or a comma list of them (key,day)"},
				&urfave.StringFlag{Name: "format", Value: "table", Usage: "output `FORMAT`: table, json or csv"},
				&urfave.BoolFlag{Name: "total", Usage: "end CSV output with a TOTAL row (the table and JSON always have their total)"},
				&urfave.StringFlag{Name: "tz", Value: "UTC", Usage: "time `ZONE` for dates and day grouping: UTC, Local or an IANA name such as Europe/Berlin"},
				&urfave.StringSliceFlag{Name: "key", Usage: "only requests made with the client key named `NAME` (repeatable, or a comma list)"},
				&urfave.StringSliceFlag{Name: "account", Usage: "only requests answered by the account named `NAME` (repeatable, or a comma list)"},
				&urfave.StringSliceFlag{Name: "model", Usage: "only requests for a model matching the glob `PATTERN`, e.g. 'claude-sonnet-*' (repeatable, or a comma list)"},
			},
			Action: func(c *urfave.Context) error {
				if err := noArgs(c); err != nil {
					return err
				}
				return env.usageReport(c)
			},
		},
		&urfave.Command{
			Name:      "prune",
			Usage:     "delete request log rows older than a cutoff",
			UsageText: "llmgw usage prune --before 90d|2026-01-01|RFC3339 [--dry-run] [--tz ZONE]",
			Description: `Deletes the request log rows older than --before, in small batches so a running
server is never held up. Per-account totals in "account list" are kept. Reports
over the pruned period lose those rows, so export them first if you need them
(llmgw usage report --format csv).

Example:
  llmgw usage prune --before 90d --dry-run
  llmgw usage prune --before 2026-01-01`,
			Flags: []urfave.Flag{
				&urfave.StringFlag{Name: "before", Required: true, Usage: "cutoff: duration back from now, date or RFC 3339 `TIME`"},
				&urfave.BoolFlag{Name: "dry-run", Usage: "only count the rows that would be deleted"},
				&urfave.StringFlag{Name: "tz", Value: "UTC", Usage: "time `ZONE` for a date cutoff"},
			},
			Action: func(c *urfave.Context) error {
				if err := noArgs(c); err != nil {
					return err
				}
				return env.usagePrune(c)
			},
		},
		explainCommand(env),
	)
}

// usagePrune deletes (or counts) the request log rows before the cutoff.
func (e *appEnv) usagePrune(c *urfave.Context) error {
	loc, err := time.LoadLocation(c.String("tz"))
	if err != nil {
		return fmt.Errorf("--tz %q: use UTC, Local or an IANA zone name such as Europe/Berlin: %w", c.String("tz"), err)
	}
	before, err := parseReportTime(c.String("before"), e.now().In(loc), loc, false)
	if err != nil {
		return fmt.Errorf("--before: %w", err)
	}
	return e.withDB(c.Context, func(db *store.DB) error {
		n, err := db.PruneUsage(c.Context, before, c.Bool("dry-run"))
		if err != nil {
			return fmt.Errorf("prune usage: %w", err)
		}
		verb := "deleted"
		if c.Bool("dry-run") {
			verb = "would delete"
		}
		_, err = fmt.Fprintf(c.App.Writer, "%s %d request log %s older than %s\n", verb, n, plural(int(n), "row", "rows"), before.Format(time.RFC3339))
		return err
	})
}

// usage report grouping fields.
const (
	byAccount = "account"
	byKey     = "key"
	byModel   = "model"
	byDay     = "day"
)

// parseBy parses a --by value, one grouping field or a comma list of them,
// each field at most once.
func parseBy(s string) ([]string, error) {
	var fields []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case byAccount, byKey, byModel, byDay:
		default:
			return nil, fmt.Errorf("--by %q: %q is not a field; use account, key, model or day, or a comma list of them such as key,day", s, f)
		}
		if slices.Contains(fields, f) {
			return nil, fmt.Errorf("--by %q: %s is given twice", s, f)
		}
		fields = append(fields, f)
	}
	return fields, nil
}

func (e *appEnv) usageReport(c *urfave.Context) error {
	format := c.String("format")
	by, err := parseBy(c.String("by"))
	if err != nil {
		return err
	}
	switch format {
	case "table", "json", "csv":
	default:
		return fmt.Errorf("--format %q: use table, json or csv", format)
	}
	loc, err := time.LoadLocation(c.String("tz"))
	if err != nil {
		return fmt.Errorf("--tz %q: use UTC, Local or an IANA zone name such as Europe/Berlin: %w", c.String("tz"), err)
	}
	now := e.now().In(loc)
	since, err := parseReportTime(c.String("since"), now, loc, false)
	if err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	until := now
	if s := c.String("until"); s != "" {
		if until, err = parseReportTime(s, now, loc, true); err != nil {
			return fmt.Errorf("--until: %w", err)
		}
	}
	if !since.Before(until) {
		return fmt.Errorf("--since %s is not before --until %s", since.Format(time.RFC3339), until.Format(time.RFC3339))
	}
	models := listFlag(c, "model")
	for _, p := range models {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("--model %q is not a glob pattern such as 'claude-sonnet-*': %w", p, err)
		}
	}
	filter := store.UsageFilter{Since: since, Until: until, KeyNames: listFlag(c, "key"), AccountNames: listFlag(c, "account")}
	return e.withDB(c.Context, func(db *store.DB) error {
		rows, err := db.ListUsageMatching(c.Context, filter)
		if err != nil {
			return fmt.Errorf("list usage: %w", err)
		}
		rows = keepModels(rows, models)
		rep := buildReport(rows, by, loc, &priceTable{catalog: e.cfg.Catalog()})
		rep.CSVTotal = c.Bool("total")
		rep.Since, rep.Until = since, until
		for _, m := range rep.UnpricedModels {
			// A note on stderr; the report on stdout is the answer.
			_, _ = fmt.Fprintf(c.App.ErrWriter, "note: no price known for model %q, so its cost counts as 0: add one to the config file, e.g.\n  prices:\n    %q: {input: 3, output: 15}\n", m, m)
		}
		switch format {
		case "json":
			return rep.writeJSON(c.App.Writer)
		case "csv":
			return rep.writeCSV(c.App.Writer)
		}
		return rep.writeTable(c.App.Writer)
	})
}

// listFlag returns the values of a repeatable flag, commas also splitting,
// blanks dropped.
func listFlag(c *urfave.Context, name string) []string {
	var out []string
	for _, v := range c.StringSlice(name) {
		out = append(out, splitList(v)...)
	}
	return out
}

// keepModels returns the rows whose model matches one of the glob patterns
// (path.Match, as account models are), reusing rows' array; all rows for
// no patterns. The patterns must be well-formed.
func keepModels(rows []store.UsageRow, patterns []string) []store.UsageRow {
	if len(patterns) == 0 {
		return rows
	}
	kept := rows[:0]
	for i := range rows {
		for _, p := range patterns {
			if ok, _ := path.Match(p, rows[i].Model); ok {
				kept = append(kept, rows[i])
				break
			}
		}
	}
	return kept
}

// parseReportTime parses a --since or --until value relative to now: a
// duration back from now (24h, 7d), a date (midnight in loc; with endOfDay,
// the midnight after it) or an RFC 3339 time.
func parseReportTime(s string, now time.Time, loc *time.Location, endOfDay bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := parseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		if endOfDay {
			t = t.AddDate(0, 0, 1)
		}
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.In(loc), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a duration (24h, 7d), a date (2026-11-01) or an RFC 3339 time", s)
}

// report is the result of "usage report".
type report struct {
	Since, Until   time.Time
	By             []string // the grouping fields, in the order given
	Rows           []reportRow
	Total          reportRow
	UnpricedModels []string // models that had tokens but no price, sorted
	CSVTotal       bool     // CSV ends with the total row too
}

// reportRow sums the usage of one group.
type reportRow struct {
	Values       []string // the group's value of each field of report.By; none for the total
	Group        string   // Values joined by ", "; "TOTAL" for the total
	Requests     int64
	Errors       int64
	Input        int64
	Output       int64
	CacheRead    int64
	CacheWrite   int64
	CacheWrite5m int64 // includes cache writes the upstream did not split
	CacheWrite1h int64
	scaledCost   float64 // USD × 1e6; see policy.ScaledCost
	durations    []int64 // request durations in ms
}

// CostUSD is the estimated cost of the group.
func (r *reportRow) CostUSD() float64 { return r.scaledCost / 1e6 }

// CacheHitRatio is the share of the group's input tokens read from the
// prompt cache: cache reads over all input tokens (uncached, cache writes
// and cache reads), to four decimals; 0 when there was no input.
func (r *reportRow) CacheHitRatio() float64 {
	all := r.Input + r.CacheRead + r.CacheWrite
	if all == 0 {
		return 0
	}
	return math.Round(float64(r.CacheRead)/float64(all)*1e4) / 1e4
}

// P50 is the median request duration in ms (nearest rank).
func (r *reportRow) P50() int64 { return percentile(r.durations, 50) }

// P95 is the 95th percentile request duration in ms (nearest rank).
func (r *reportRow) P95() int64 { return percentile(r.durations, 95) }

func (r *reportRow) add(u *store.UsageRow, failed bool, cost float64) {
	r.Requests++
	if failed {
		r.Errors++
	}
	// The tokens the request is billed for: its iterations' when it has
	// them (see policy.Parts), so that the columns add up to the cost.
	for _, p := range policy.Parts(usedBy(u)) {
		t, b := p.Tokens, policy.Billed(p.Tokens)
		r.Input += t.Input
		r.Output += t.Output
		r.CacheRead += t.CacheRead
		r.CacheWrite += t.CacheWrite
		r.CacheWrite5m += b.CacheWrite5m
		r.CacheWrite1h += b.CacheWrite1h
	}
	r.scaledCost += cost
	r.durations = append(r.durations, u.Duration.Milliseconds())
}

// usedBy returns what a logged request used, as pricing needs it.
func usedBy(u *store.UsageRow) policy.Used { return policy.UsedBy(&u.Usage) }

// percentile returns the nearest-rank p-th percentile of vals, sorting
// vals in place; 0 for none.
func percentile(vals []int64, p int) int64 {
	if len(vals) == 0 {
		return 0
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	rank := (p*len(vals) + 99) / 100 // ceil(p/100 × n)
	return vals[max(rank, 1)-1]
}

// buildReport groups rows by the fields in by: account, key, model or day
// (in loc). Rows that never reached an account are not requests and are
// left out. The groups sort by their values, field by field in the order of
// by; day values (YYYY-MM-DD) sort as dates.
func buildReport(rows []store.UsageRow, by []string, loc *time.Location, prices *priceTable) *report {
	rep := &report{By: by, Total: reportRow{Group: "TOTAL"}}
	groups := map[groupKey]*reportRow{}
	unpriced := map[string]bool{}
	for i := range rows {
		u := &rows[i]
		if u.AccountID == 0 && u.AttemptCount == 0 {
			continue
		}
		failed := u.Status >= 400 || u.ErrorType != "" || u.EndedEarly
		cost, missing := prices.cost(usedBy(u))
		for _, m := range missing {
			unpriced[modelName(m)] = true
		}
		var g groupKey
		for i, f := range by {
			g[i] = groupOf(u, f, loc)
		}
		r := groups[g]
		if r == nil {
			vals := slices.Clone(g[:len(by)])
			r = &reportRow{Values: vals, Group: strings.Join(vals, ", ")}
			groups[g] = r
		}
		r.add(u, failed, cost)
		rep.Total.add(u, failed, cost)
	}
	for _, r := range groups {
		rep.Rows = append(rep.Rows, *r)
	}
	sort.Slice(rep.Rows, func(i, j int) bool { return slices.Compare(rep.Rows[i].Values, rep.Rows[j].Values) < 0 })
	for m := range unpriced {
		rep.UnpricedModels = append(rep.UnpricedModels, m)
	}
	sort.Strings(rep.UnpricedModels)
	return rep
}

// groupKey holds a group's value of each field of --by, blank after the
// last: parseBy allows each of the four fields once. Unlike the values
// joined by a separator, it cannot make two groups one.
type groupKey [4]string

func modelName(m string) string {
	if m == "" {
		return "(none)"
	}
	return m
}

// groupOf returns row u's value of the grouping field by.
func groupOf(u *store.UsageRow, by string, loc *time.Location) string {
	switch by {
	case byKey:
		if u.KeyName == "" {
			return "(none)"
		}
		return u.KeyName
	case byModel:
		return modelName(u.Model)
	case byDay:
		return u.Time.In(loc).Format(time.DateOnly)
	}
	if u.AccountName != "" {
		return u.AccountName
	}
	if n := len(u.Attempts); n > 0 && u.Attempts[n-1].AccountName != "" {
		return u.Attempts[n-1].AccountName // no final answer: the last account tried
	}
	if u.AccountID != 0 {
		return "#" + strconv.FormatInt(u.AccountID, 10)
	}
	return "(none)"
}

// writeTable prints one column per grouping field, headed by its name, then
// the sums; the total row ends the table.
func (rep *report) writeTable(w io.Writer) error {
	tw := newTable(w)
	groupCols := strings.Repeat("%s\t", len(rep.By))
	var header []any
	for _, f := range rep.By {
		header = append(header, strings.ToUpper(f))
	}
	tw.row(groupCols+"REQUESTS\tERRORS\tINPUT\tOUTPUT\tCACHE READ\tCACHE WRITE\tCACHE HIT\tCOST USD\tP50 MS\tP95 MS\n", header...)
	for i := range rep.Rows {
		writeTableRow(tw, groupCols, &rep.Rows[i], rep.Rows[i].Values)
	}
	writeTableRow(tw, groupCols, &rep.Total, rep.totalValues())
	return tw.Flush()
}

func writeTableRow(tw *table, groupCols string, r *reportRow, values []string) {
	args := make([]any, 0, len(values)+9)
	for _, v := range values {
		args = append(args, v)
	}
	hit := "-"
	if r.Input+r.CacheRead+r.CacheWrite > 0 {
		hit = strconv.FormatFloat(r.CacheHitRatio(), 'f', 2, 64)
	}
	args = append(args, r.Requests, r.Errors, r.Input, r.Output, r.CacheRead, r.CacheWrite, hit,
		formatCost(r.CostUSD()), r.P50(), r.P95())
	tw.row(groupCols+"%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%d\n", args...)
}

// totalValues fills the total row's grouping columns in the table and CSV:
// TOTAL in the first, the others blank.
func (rep *report) totalValues() []string {
	vals := make([]string, len(rep.By))
	vals[0] = rep.Total.Group
	return vals
}

// formatCost renders a cost in USD for the table by the one rule for
// showing money (llmgw.FormatUSD). CSV and JSON carry the cost unrounded.
func formatCost(usd float64) string { return llmgw.FormatUSD(usd) }

// reportRowJSON is a row of "usage report --format json". The token fields
// carry Anthropic's usage names so scripts can rely on them. Each grouping
// field is a JSON field of its own name, and the fields not grouped by are
// left out (a group's value is never empty: groupOf says "(none)"). Group
// holds the values joined by ", ", so for one field it is that field's
// value, as it was before the fields had names.
type reportRowJSON struct {
	Group             string  `json:"group"`
	Account           string  `json:"account,omitempty"`
	Key               string  `json:"key,omitempty"`
	Model             string  `json:"model,omitempty"`
	Day               string  `json:"day,omitempty"`
	Requests          int64   `json:"requests"`
	Errors            int64   `json:"errors"`
	InputTokens       int64   `json:"input_tokens"`
	OutputTokens      int64   `json:"output_tokens"`
	CacheReadTokens   int64   `json:"cache_read_input_tokens"`
	CacheWriteTokens  int64   `json:"cache_creation_input_tokens"`
	CacheWrite5mToken int64   `json:"cache_creation_5m_input_tokens"`
	CacheWrite1hToken int64   `json:"cache_creation_1h_input_tokens"`
	CostUSD           float64 `json:"cost_usd"`
	P50Ms             int64   `json:"p50_ms"`
	P95Ms             int64   `json:"p95_ms"`
	// CacheHitRatio is cache-read tokens over all input tokens.
	CacheHitRatio float64 `json:"cache_hit_ratio"`
}

// json returns r as JSON for a report grouped by the fields in by.
func (r *reportRow) json(by []string) reportRowJSON {
	out := reportRowJSON{
		Group:             r.Group,
		Requests:          r.Requests,
		Errors:            r.Errors,
		InputTokens:       r.Input,
		OutputTokens:      r.Output,
		CacheReadTokens:   r.CacheRead,
		CacheWriteTokens:  r.CacheWrite,
		CacheWrite5mToken: r.CacheWrite5m,
		CacheWrite1hToken: r.CacheWrite1h,
		CostUSD:           r.CostUSD(),
		P50Ms:             r.P50(),
		P95Ms:             r.P95(),
		CacheHitRatio:     r.CacheHitRatio(),
	}
	for i, v := range r.Values {
		switch by[i] {
		case byAccount:
			out.Account = v
		case byKey:
			out.Key = v
		case byModel:
			out.Model = v
		case byDay:
			out.Day = v
		}
	}
	return out
}

// reportJSON is the one object "usage report --format json" prints.
type reportJSON struct {
	Since string          `json:"since"`
	Until string          `json:"until"`
	By    string          `json:"by"` // the fields, comma-separated
	Rows  []reportRowJSON `json:"rows"`
	Total reportRowJSON   `json:"total"`
}

func (rep *report) writeJSON(w io.Writer) error {
	out := reportJSON{
		Since: rep.Since.Format(time.RFC3339),
		Until: rep.Until.Format(time.RFC3339),
		By:    strings.Join(rep.By, ","),
		Rows:  make([]reportRowJSON, len(rep.Rows)),
		Total: rep.Total.json(rep.By),
	}
	for i := range rep.Rows {
		out.Rows[i] = rep.Rows[i].json(rep.By)
	}
	return writeJSON(w, out)
}

// writeCSV prints a header naming each grouping field and the sums, one
// record per group, and the total only if rep.CSVTotal: a total row in the
// data is one more thing for a spreadsheet's sum to count twice.
func (rep *report) writeCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	header := append(slices.Clone(rep.By), "requests", "errors", "input_tokens", "output_tokens",
		"cache_read_input_tokens", "cache_creation_input_tokens", "cache_creation_5m_input_tokens",
		"cache_creation_1h_input_tokens", "cost_usd", "p50_ms", "p95_ms", "cache_hit_ratio")
	if err := cw.Write(header); err != nil {
		return err
	}
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	write := func(r *reportRow, values []string) error {
		rec := append(slices.Clone(values), i64(r.Requests), i64(r.Errors), i64(r.Input), i64(r.Output),
			i64(r.CacheRead), i64(r.CacheWrite), i64(r.CacheWrite5m), i64(r.CacheWrite1h),
			strconv.FormatFloat(r.CostUSD(), 'f', -1, 64), i64(r.P50()), i64(r.P95()),
			strconv.FormatFloat(r.CacheHitRatio(), 'f', -1, 64))
		return cw.Write(rec)
	}
	for i := range rep.Rows {
		if err := write(&rep.Rows[i], rep.Rows[i].Values); err != nil {
			return err
		}
	}
	if rep.CSVTotal {
		if err := write(&rep.Total, rep.totalValues()); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
