package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/store"
)

func TestEscape(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"claude-opus-4-5", "claude-opus-4-5"},
		{"naïve 模型 🙂 a\u200db", "naïve 模型 🙂 a\u200db"}, // printable Unicode and a zero-width joiner stay
		{`back\slash "quoted"`, `back\slash "quoted"`},
		{"a\r\nb\tc", `a\r\nb\tc`},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"\x00\x07\x08\x0b\x0c\x1f\x7f", `\x00\a\b\v\f\x1f\x7f`},
		{"c1 \u0085 \u009b31m", `c1 \u0085 \u009b31m`},
		{"bidi \u202eevil\u202c \u2066x\u2069", `bidi \u202eevil\u202c \u2066x\u2069`},
		{"sep\u2028\u2029", `sep\u2028\u2029`},
		{"bad \xff\xfe utf8 \xc3", `bad \xff\xfe utf8 \xc3`},
		{"\xe2\x80", `\xe2\x80`}, // a truncated sequence is two bad bytes
	}
	for _, tt := range tests {
		if got := escape(tt.in); got != tt.want {
			t.Errorf("escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPrintEscaped_OnlyArguments(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	type named string
	if _, err := printEscaped(&b, "%s\t%s\t%d\t%v\n", "a\tb", named("\x1b"), 7, nil); err != nil {
		t.Fatal(err)
	}
	if want := "a\\tb\t\\x1b\t7\t<nil>\n"; b.String() != want {
		t.Errorf("printEscaped wrote %q, want %q", b.String(), want)
	}
}

// rawControl reports the first control character or invalid UTF-8 in s that
// is not a plain line break ("\n"), if any.
func rawControl(s string) (string, bool) {
	for i, r := range strings.ToValidUTF8(s, "\ufffd") {
		if r == '\n' {
			continue
		}
		if needsEscape(r) || r == '\ufffd' {
			return s[i:min(i+8, len(s))], true
		}
	}
	return "", false
}

func assertNoRawControl(t *testing.T, what, out string) {
	t.Helper()
	if at, ok := rawControl(out); ok {
		t.Errorf("%s has a raw control character at %q:\n%s", what, at, out)
	}
}

// withStore opens the database at path, runs fn and closes it again.
func withStore(t *testing.T, path string, fn func(ctx context.Context, db *store.DB)) {
	t.Helper()
	ctx := context.Background()
	db, err := openStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fn(ctx, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// hostile is a model name a client could send: a line break, a tab (the
// table's cell separator), an SGR escape, a C1 CSI and invalid UTF-8.
const (
	hostile        = "evil\r\nfake-row\t9\x1b[31m-red\u009b2J\xff"
	hostileEscaped = `evil\r\nfake-row\t9\x1b[31m-red\u009b2J\xff`
)

func TestUsageReport_EscapesControlCharacters(t *testing.T) {
	t.Parallel()
	p := newDB(t)
	mustRun(t, "--db", p, "account", "add", "--name", "a1", "--api-key", testAPIKey)
	withStore(t, p, func(ctx context.Context, db *store.DB) {
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		for i, model := range []string{hostile, "claude-haiku-4-5"} {
			w.Record(llmgw.Usage{Time: time.Date(2026, 3, 1, 10, i, 0, 0, time.UTC), KeyName: "k\x1b]0;title\x07",
				Model: model, Status: 200, Tokens: llmgw.Tokens{Input: 10, Output: 5}, Dialect: llmgw.DialectAnthropic,
				AccountID: 1, AccountName: "a1", Attempts: []llmgw.Attempt{{AccountID: 1, AccountName: "a1", Status: 200}}})
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})
	args := []string{"--db", p, "usage", "report", "--since", "2026-03-01", "--until", "2026-03-01"}

	for _, by := range []string{"model", "key"} {
		stdout, stderr := mustRun(t, append(args, "--by", by)...)
		assertNoRawControl(t, "usage report --by "+by, stdout)
		assertNoRawControl(t, "usage report --by "+by+" stderr", stderr)
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		wantRows := map[string]int{"model": 2, "key": 1}[by]
		if len(lines) != wantRows+2 { // header, rows, TOTAL
			t.Errorf("usage report --by %s printed %d lines, want %d:\n%s", by, len(lines), wantRows+2, stdout)
		}
	}
	stdout, _ := mustRun(t, append(args, "--by", "model")...)
	if !strings.Contains(stdout, hostileEscaped+"  ") {
		t.Errorf("usage report table lacks the escaped model name %s:\n%s", hostileEscaped, stdout)
	}

	// JSON carries the exact name (encoding/json escapes it; invalid UTF-8
	// becomes U+FFFD, as encoding/json always does).
	rep, _ := reportJSONOf(t, append(args, "--by", "model")...)
	if want := strings.ToValidUTF8(hostile, "\ufffd"); len(rep.Rows) != 2 || rep.Rows[1].Group != want {
		t.Errorf("usage report --format json rows = %+v, want a row for %q", rep.Rows, want)
	}

	// CSV quotes the field: the rows stay rows and the name is exact (a CSV
	// reader turns the quoted \r\n into \n, as RFC 4180 readers do).
	stdout, _ = mustRun(t, append(args, "--by", "model", "--format", "csv")...)
	recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatalf("usage report --format csv: %v\n%q", err, stdout)
	}
	if want := strings.ReplaceAll(hostile, "\r\n", "\n"); len(recs) != 3 || recs[2][0] != want { // header, 2 rows, no total
		t.Errorf("usage report --format csv = %q, want 3 records with %q in the third", recs, want)
	}
}

func TestUsageExplain_EscapesControlCharacters(t *testing.T) {
	t.Parallel()
	p := newDB(t)
	mustRun(t, "--db", p, "account", "add", "--name", "a1", "--api-key", testAPIKey)
	const msg = "upstream said:\r\n\x1b]0;pwned\x07 \x1b[2Jgone\u009b"
	withStore(t, p, func(ctx context.Context, db *store.DB) {
		w := store.NewUsageWriter(db, store.UsageWriterOptions{})
		w.Record(llmgw.Usage{Time: time.Now(), RequestID: "llmgw_escape1", KeyName: "k\tey", Model: hostile,
			Status: 529, ErrorType: "overloaded_error", ErrorMessage: msg, Dialect: llmgw.DialectAnthropic,
			Attempts: []llmgw.Attempt{{AccountID: 1, AccountName: "a1", Status: 529, ErrorType: "overloaded\x1b[0m"}}})
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	})

	stdout, _ := mustRun(t, "--db", p, "usage", "explain", "llmgw_escape1")
	assertNoRawControl(t, "usage explain", stdout)
	for _, want := range []string{
		`answer:               529 overloaded_error: upstream said:\r\n\x1b]0;pwned\a \x1b[2Jgone\u009b` + "\n",
		"model:                " + hostileEscaped + " (anthropic, not streamed)\n",
		`client key:           k\tey` + "\n",
		`overloaded\x1b[0m`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("usage explain lacks %q:\n%s", want, stdout)
		}
	}

	stdout, _ = mustRun(t, "--db", p, "usage", "explain", "--json", "llmgw_escape1")
	var got explainJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("usage explain --json: %v\n%s", err, stdout)
	}
	if got.ErrorMessage != msg || got.Key != "k\tey" {
		t.Errorf("usage explain --json error_message = %q, key = %q; want them exact", got.ErrorMessage, got.Key)
	}
}

func TestAccountList_EscapesControlCharacters(t *testing.T) {
	t.Parallel()
	p := newDB(t)
	mustRun(t, "--db", p, "account", "add", "--name", "main", "--api-key", testAPIKey)
	const (
		reason  = "invalid \x1b[31mkey"
		lastErr = "401 from upstream\r\n\x1b[2J\x1b[Hlooks fine\u009b"
	)
	withStore(t, p, func(ctx context.Context, db *store.DB) {
		st := llmgw.AccountState{Status: llmgw.StatusError, Reason: reason, LastError: lastErr, At: time.Now()}
		if err := db.SaveAccountStates(ctx, map[int64]llmgw.AccountState{1: st}); err != nil {
			t.Fatal(err)
		}
	})

	stdout, _ := mustRun(t, "--db", p, "account", "list")
	assertNoRawControl(t, "account list", stdout)
	if lines := strings.Count(stdout, "\n"); lines != 2 {
		t.Errorf("account list printed %d lines, want 2:\n%s", lines, stdout)
	}
	if want := `error: invalid \x1b[31mkey`; !strings.Contains(stdout, want) {
		t.Errorf("account list lacks %q:\n%s", want, stdout)
	}

	stdout, _ = mustRun(t, "--db", p, "account", "show", "main")
	assertNoRawControl(t, "account show", stdout)
	if want := `401 from upstream \x1b[2J\x1b[Hlooks fine\u009b`; !strings.Contains(stdout, want) {
		t.Errorf("account show lacks the last error %q:\n%s", want, stdout)
	}

	got := listJSON(t, p)
	if len(got) != 1 || got[0].Reason != reason || got[0].LastError != lastErr {
		t.Errorf("account list --json = %+v, want reason %q and last error %q exact", got, reason, lastErr)
	}
}

func TestAccountList_PastCooldownIsNotCurrent(t *testing.T) {
	t.Parallel()
	p := newDB(t)
	mustRun(t, "--db", p, "account", "add", "--name", "past", "--api-key", testAPIKey)
	mustRun(t, "--db", p, "account", "add", "--name", "future", "--api-key", testAPIKey)
	now := time.Now()
	future := now.Add(time.Hour).Truncate(time.Second)
	withStore(t, p, func(ctx context.Context, db *store.DB) {
		states := map[int64]llmgw.AccountState{
			1: {Status: llmgw.StatusActive, CooldownUntil: now.Add(-time.Minute), At: now},
			2: {Status: llmgw.StatusActive, CooldownUntil: future, At: now},
		}
		if err := db.SaveAccountStates(ctx, states); err != nil {
			t.Fatal(err)
		}
	})

	cooldowns := map[string]*string{}
	for _, a := range listJSON(t, p) {
		cooldowns[a.Name] = a.CooldownUntil
	}
	if c := cooldowns["past"]; c != nil {
		t.Errorf("account list --json: past has cooldown_until %q, want null: its cooldown is over", *c)
	}
	if c := cooldowns["future"]; c == nil || *c != future.Format(time.RFC3339) {
		t.Errorf("account list --json: future has cooldown_until %v, want %s", c, future.Format(time.RFC3339))
	}

	stdout, _ := mustRun(t, "--db", p, "account", "list")
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "past ") && strings.Contains(line, formatTime(now.Add(-time.Minute))) {
			t.Errorf("account list shows the past cooldown of past:\n%s", stdout)
		}
		if strings.HasPrefix(line, "future ") && !strings.Contains(line, formatTime(future)) {
			t.Errorf("account list lacks the cooldown of future:\n%s", stdout)
		}
	}
}
