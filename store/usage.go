package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/llmgw/llmgw"
)

// UsageRow is one row of the request log. AttemptCount says how many
// attempts the request made; ListUsage leaves Usage.Attempts nil (reports
// need only the count), GetRequest fills it in.
type UsageRow struct {
	llmgw.Usage
	AttemptCount int
}

// usageColumns are the request log columns scanUsage reads, in order.
const usageColumns = `ts, request_id, key_id, key_name, account_id, account_name, model, dialect,
	stream, status, error_type, attempts, input_tokens, output_tokens,
	cache_read_tokens, cache_write_tokens, cache_write_5m_tokens, cache_write_1h_tokens,
	ttfb_ms, duration_ms, ended_early, upstream_request_id, attempt_detail, error_message,
	speed, inference_geo, iterations, affinity`

// scanUsage reads one row of usageColumns. Attempts are decoded only when
// withAttempts is set: reports need only their count.
func scanUsage(row interface{ Scan(...any) error }, withAttempts bool) (UsageRow, error) {
	var (
		r                  UsageRow
		ts, ttfb, dur      int64
		stream, endedEarly bool
		detail, iters      string
	)
	t := &r.Tokens
	err := row.Scan(&ts, &r.RequestID, &r.KeyID, &r.KeyName, &r.AccountID, &r.AccountName, &r.Model, &r.Dialect,
		&stream, &r.Status, &r.ErrorType, &r.AttemptCount, &t.Input, &t.Output,
		&t.CacheRead, &t.CacheWrite, &t.CacheWrite5m, &t.CacheWrite1h,
		&ttfb, &dur, &endedEarly, &r.UpstreamID, &detail, &r.ErrorMessage,
		&r.Speed, &r.InferenceGeo, &iters, &r.Affinity)
	if err != nil {
		return r, err
	}
	// Reports price iterations, so they are decoded even without attempts.
	if r.Iterations, err = decodeIterations(iters); err != nil {
		return r, fmt.Errorf("iterations of request %s: %w", r.RequestID, err)
	}
	if withAttempts {
		if r.Attempts, err = decodeAttempts(detail); err != nil {
			return r, fmt.Errorf("attempts: %w", err)
		}
	}
	r.Time = fromMs(ts)
	r.Stream, r.EndedEarly = stream, endedEarly
	r.TTFB, r.Duration = time.Duration(ttfb)*time.Millisecond, time.Duration(dur)*time.Millisecond
	return r, nil
}

// ListUsage returns the request log rows with since <= Time < until, oldest
// first, without their attempts. Durations come back at millisecond
// precision.
func (db *DB) ListUsage(ctx context.Context, since, until time.Time) ([]UsageRow, error) {
	return db.ListUsageMatching(ctx, UsageFilter{Since: since, Until: until})
}

// UsageFilter selects request log rows for ListUsageMatching. Since and
// Until are required; an empty name list does not filter.
type UsageFilter struct {
	Since, Until time.Time // Since <= Time < Until
	KeyNames     []string  // the row's key name is exactly one of these
	AccountNames []string  // the row's account name is exactly one of these
}

// ListUsageMatching returns the request log rows that f selects, oldest
// first, without their attempts, as ListUsage does. Names match the
// key_name and account_name columns exactly: a request that reached no
// account has no account name, so an account filter leaves it out.
func (db *DB) ListUsageMatching(ctx context.Context, f UsageFilter) ([]UsageRow, error) {
	query := `SELECT ` + usageColumns + ` FROM request_log WHERE ts >= ? AND ts < ?`
	args := []any{f.Since.UnixMilli(), f.Until.UnixMilli()}
	query, args = whereIn(query, args, "key_name", f.KeyNames)
	query, args = whereIn(query, args, "account_name", f.AccountNames)
	rows, err := db.rdb.QueryContext(ctx, query+` ORDER BY ts, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list usage: %w", err)
	}
	defer rows.Close()
	var out []UsageRow
	for rows.Next() {
		r, err := scanUsage(rows, false)
		if err != nil {
			return nil, fmt.Errorf("list usage: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list usage: %w", err)
	}
	return out, nil
}

// whereIn adds "AND column IN (?, ...)" for vals to query, and vals to its
// args; it adds nothing for no vals. column is a constant of the caller's:
// only placeholders are spliced into the SQL, never values.
func whereIn(query string, args []any, column string, vals []string) (string, []any) {
	if len(vals) == 0 {
		return query, args
	}
	query += ` AND ` + column + ` IN (?` + strings.Repeat(`, ?`, len(vals)-1) + `)`
	for _, v := range vals {
		args = append(args, v)
	}
	return query, args
}

// GetRequest returns the request log row of one request, attempts
// included. It wraps llmgw.ErrNotFound when no row has that id (the rows of
// requests rejected before reaching an account, such as 401s, are not kept).
func (db *DB) GetRequest(ctx context.Context, requestID string) (*UsageRow, error) {
	// request_id <> '' lets the planner use the partial unique index
	// (migration 00010); at most one row matches.
	r, err := scanUsage(db.rdb.QueryRowContext(ctx, `SELECT `+usageColumns+` FROM request_log
		WHERE request_id = ? AND request_id <> ''`, requestID), true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("request %s: %w", requestID, llmgw.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get request %s: %w", requestID, err)
	}
	return &r, nil
}

// attemptJSON is one attempt as the request log keeps it.
type attemptJSON struct {
	AccountID   int64  `json:"account_id"`
	AccountName string `json:"account"`
	Status      int    `json:"status"`
	ErrorType   string `json:"error_type,omitempty"`
	TTFBMs      int64  `json:"ttfb_ms"`
}

func encodeAttempts(as []llmgw.Attempt) string {
	if len(as) == 0 {
		return ""
	}
	out := make([]attemptJSON, len(as))
	for i, a := range as {
		out[i] = attemptJSON{a.AccountID, a.AccountName, a.Status, a.ErrorType, a.TTFB.Milliseconds()}
	}
	b, _ := json.Marshal(out) // plain structs: cannot fail
	return string(b)
}

func decodeAttempts(s string) ([]llmgw.Attempt, error) {
	if s == "" {
		return nil, nil
	}
	var in []attemptJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	out := make([]llmgw.Attempt, len(in))
	for i, a := range in {
		out[i] = llmgw.Attempt{AccountID: a.AccountID, AccountName: a.AccountName, Status: a.Status,
			ErrorType: a.ErrorType, TTFB: time.Duration(a.TTFBMs) * time.Millisecond}
	}
	return out, nil
}

// iterationJSON is one iteration as the request log keeps it: in the field
// names of Anthropic's usage.iterations, the cache_creation split flattened.
type iterationJSON struct {
	Type         string `json:"type"`
	Model        string `json:"model,omitempty"`
	Input        int64  `json:"input_tokens"`
	Output       int64  `json:"output_tokens"`
	CacheRead    int64  `json:"cache_read_input_tokens"`
	CacheWrite   int64  `json:"cache_creation_input_tokens"`
	CacheWrite5m int64  `json:"ephemeral_5m_input_tokens,omitempty"`
	CacheWrite1h int64  `json:"ephemeral_1h_input_tokens,omitempty"`
}

// encodeIterations returns the iterations column: "" for none.
func encodeIterations(its []llmgw.Iteration) string {
	if len(its) == 0 {
		return ""
	}
	out := make([]iterationJSON, len(its))
	for i, it := range its {
		t := it.Tokens
		out[i] = iterationJSON{it.Type, it.Model, t.Input, t.Output, t.CacheRead, t.CacheWrite, t.CacheWrite5m, t.CacheWrite1h}
	}
	b, _ := json.Marshal(out) // plain structs: cannot fail
	return string(b)
}

func decodeIterations(s string) ([]llmgw.Iteration, error) {
	if s == "" {
		return nil, nil
	}
	var in []iterationJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	out := make([]llmgw.Iteration, len(in))
	for i, it := range in {
		out[i] = llmgw.Iteration{Type: it.Type, Model: it.Model, Tokens: llmgw.Tokens{Input: it.Input, Output: it.Output,
			CacheRead: it.CacheRead, CacheWrite: it.CacheWrite, CacheWrite5m: it.CacheWrite5m, CacheWrite1h: it.CacheWrite1h}}
	}
	return out, nil
}

// writeUsage commits one batch in one write transaction: the log rows, their
// attempts folded into account_stats, the keys' last use, and the account
// states and windows the server observed (upd may be nil). The states must
// already be valid. It returns how many rows it skipped because their
// request id was in the log already.
//
// Writing a batch again is exact: a row already in the log committed in an
// earlier transaction together with its statistics and key use, so it is
// skipped and only the rows this transaction added are folded. That is what
// makes the writer's retry safe when a COMMIT failed without saying whether
// it happened.
func (db *DB) writeUsage(ctx context.Context, batch []llmgw.Usage, upd *accountUpdates) (skipped int, err error) {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("write usage: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	added, err := db.insertUsage(ctx, tx, batch)
	if err != nil {
		return 0, err
	}
	if err := foldStats(ctx, tx, added); err != nil {
		return 0, err
	}
	if err := touchKeys(ctx, tx, added); err != nil {
		return 0, err
	}
	if upd != nil {
		if err := saveStates(ctx, tx, upd.states); err != nil {
			return 0, err
		}
		if err := saveWindows(ctx, tx, upd.windows); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("write usage: %w", err)
	}
	return len(batch) - len(added), nil
}

// usageInsert starts the statement that adds rows to the request log; each
// row's values follow as usageValues, in the order usageArgs gives them, and
// then usageSkip. usageSkip names the partial unique index of migration
// 00010 (its column and predicate), so that a row whose request id is in the
// log already is skipped, not an error; both SQLite and PostgreSQL spell
// it so.
const (
	usageInsert = `INSERT INTO request_log (ts, request_id, key_id, key_name, account_id, account_name, model, dialect,
			stream, status, error_type, attempts, input_tokens, output_tokens,
			cache_read_tokens, cache_write_tokens, cache_write_5m_tokens, cache_write_1h_tokens,
			ttfb_ms, duration_ms, ended_early, upstream_request_id, attempt_detail, error_message,
			speed, inference_geo, iterations, affinity)
		VALUES `
	usageValues = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	usageParams = 28 // placeholders in usageValues
	usageSkip   = ` ON CONFLICT (request_id) WHERE request_id <> '' DO NOTHING`
)

// pgMaxParams is the most bind parameters one PostgreSQL statement takes
// (the protocol counts them in 16 bits).
const pgMaxParams = 65535

// usageArgs appends one row's values for usageValues to args.
func usageArgs(args []any, u *llmgw.Usage) []any {
	t := &u.Tokens
	return append(args, ms(u.Time), u.RequestID, u.KeyID, u.KeyName, u.AccountID, u.AccountName, u.Model, u.Dialect,
		boolInt(u.Stream), u.Status, u.ErrorType, len(u.Attempts), t.Input, t.Output,
		t.CacheRead, t.CacheWrite, t.CacheWrite5m, t.CacheWrite1h,
		u.TTFB.Milliseconds(), u.Duration.Milliseconds(), boolInt(u.EndedEarly), u.UpstreamID,
		encodeAttempts(u.Attempts), u.ErrorMessage,
		u.Speed, u.InferenceGeo, encodeIterations(u.Iterations), u.Affinity)
}

// insertUsage adds batch to the request log, skipping the rows whose
// request id is there already, and returns the rows it added: batch itself
// when it added them all. On SQLite, a prepared INSERT per row costs no more
// than one statement of many rows (there is no round trip), so each row is
// one Exec, which says whether it added the row; on PostgreSQL each Exec is
// a round trip, so the batch goes in multi-row INSERTs (insertUsageRows).
func (db *DB) insertUsage(ctx context.Context, tx *sql.Tx, batch []llmgw.Usage) ([]llmgw.Usage, error) {
	if len(batch) == 0 {
		return batch, nil
	}
	if db.dialect == dialectPostgres {
		return insertUsageRows(ctx, tx, batch, pgMaxParams/usageParams)
	}
	stmt, err := tx.PrepareContext(ctx, usageInsert+usageValues+usageSkip)
	if err != nil {
		return nil, fmt.Errorf("write usage: %w", err)
	}
	defer stmt.Close()
	args := make([]any, 0, usageParams)
	var skipped []bool // nil while every row was added
	for i := range batch {
		res, err := stmt.ExecContext(ctx, usageArgs(args[:0], &batch[i])...)
		if err != nil {
			return nil, fmt.Errorf("write usage of request %s: %w", batch[i].RequestID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("write usage of request %s: %w", batch[i].RequestID, err)
		}
		if n == 0 {
			if skipped == nil {
				skipped = make([]bool, len(batch))
			}
			skipped[i] = true
		}
	}
	return without(batch, skipped), nil
}

// insertUsageRows adds batch to the request log in one INSERT per chunk of
// at most perStmt rows: one round trip per chunk instead of one per row.
// The statement text depends only on the chunk's length, so a full batch
// reuses one prepared statement (pgx caches them by text). It returns the
// rows it added, as insertUsage does, told by the request ids each INSERT
// returns.
func insertUsageRows(ctx context.Context, tx *sql.Tx, batch []llmgw.Usage, perStmt int) ([]llmgw.Usage, error) {
	args := make([]any, 0, min(len(batch), perStmt)*usageParams)
	var skipped []bool // nil while every row was added
	for start := 0; start < len(batch); start += perStmt {
		chunk := batch[start:min(len(batch), start+perStmt)]
		args = args[:0]
		for i := range chunk {
			args = usageArgs(args, &chunk[i])
		}
		query := usageInsert + usageValues + strings.Repeat(", "+usageValues, len(chunk)-1) + usageSkip + ` RETURNING request_id`
		added, err := queryStrings(ctx, tx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("write usage of %d requests from %s: %w", len(chunk), chunk[0].RequestID, err)
		}
		if len(added) == len(chunk) {
			continue
		}
		if skipped == nil {
			skipped = make([]bool, len(batch))
		}
		// Count each returned id once, so that a batch holding one id
		// twice (which llmgw never records) is told right too.
		left := make(map[string]int, len(added))
		for _, id := range added {
			left[id]++
		}
		for i := range chunk {
			id := chunk[i].RequestID
			if left[id] > 0 {
				left[id]--
				continue
			}
			skipped[start+i] = true
		}
	}
	return without(batch, skipped), nil
}

// without returns the rows of batch not marked in skip: batch itself when
// skip is nil.
func without(batch []llmgw.Usage, skip []bool) []llmgw.Usage {
	if skip == nil {
		return batch
	}
	out := make([]llmgw.Usage, 0, len(batch))
	for i := range batch {
		if !skip[i] {
			out = append(out, batch[i])
		}
	}
	return out
}

// statsDelta is one batch's contribution to an account's statistics.
type statsDelta struct {
	requests, errors  int64
	lastUsed          int64
	lastError         string
	lastErrorAt       int64
	latencySum, count int64
}

// foldStats adds every attempt of every row to its account's statistics.
// The batch is summed in memory first, so each account costs one upsert
// however many attempts it served.
func foldStats(ctx context.Context, tx *sql.Tx, batch []llmgw.Usage) error {
	deltas := make(map[int64]*statsDelta)
	for i := range batch {
		u := &batch[i]
		at := ms(u.Time)
		for _, a := range u.Attempts {
			if a.AccountID == 0 {
				continue
			}
			d := deltas[a.AccountID]
			if d == nil {
				d = &statsDelta{}
				deltas[a.AccountID] = d
			}
			d.requests++
			d.lastUsed = max(d.lastUsed, at)
			if a.Failed() {
				d.errors++
				if at >= d.lastErrorAt {
					d.lastError, d.lastErrorAt = fmt.Sprintf("%d %s", a.Status, a.ErrorType), at
				}
				continue
			}
			d.latencySum += a.TTFB.Milliseconds()
			d.count++
		}
	}
	if len(deltas) == 0 {
		return nil
	}
	// INSERT ... SELECT ... WHERE EXISTS skips accounts removed since the
	// request was served: their attempts stay in request_log only, and the
	// foreign key would otherwise fail the whole batch. The stored row is
	// named s and its columns qualified, and max() is spelled as CASE, so
	// that the statement means the same in SQLite and PostgreSQL (where an
	// unqualified column is ambiguous with excluded's and max() is an
	// aggregate).
	stmt, err := tx.PrepareContext(ctx, `
		INSERT INTO account_stats AS s (account_id, requests, errors, last_used_at, last_error, last_error_at,
			latency_ms_sum, latency_samples)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?1)
		ON CONFLICT (account_id) DO UPDATE SET
			requests = s.requests + excluded.requests,
			errors = s.errors + excluded.errors,
			last_used_at = CASE WHEN excluded.last_used_at > s.last_used_at
				THEN excluded.last_used_at ELSE s.last_used_at END,
			last_error = CASE WHEN excluded.last_error_at > 0 AND excluded.last_error_at >= s.last_error_at
				THEN excluded.last_error ELSE s.last_error END,
			last_error_at = CASE WHEN excluded.last_error_at > s.last_error_at
				THEN excluded.last_error_at ELSE s.last_error_at END,
			latency_ms_sum = s.latency_ms_sum + excluded.latency_ms_sum,
			latency_samples = s.latency_samples + excluded.latency_samples`)
	if err != nil {
		return fmt.Errorf("write account stats: %w", err)
	}
	defer stmt.Close()
	for id, d := range deltas {
		if _, err := stmt.ExecContext(ctx, id, d.requests, d.errors, d.lastUsed, d.lastError, d.lastErrorAt, d.latencySum, d.count); err != nil {
			return fmt.Errorf("write stats of account %d: %w", id, err)
		}
	}
	return nil
}

// touchKeys records when each client key was last used. It sets only
// last_used_at, which the change counter's trigger ignores, so the server
// does not reload because of its own bookkeeping.
func touchKeys(ctx context.Context, tx *sql.Tx, batch []llmgw.Usage) error {
	last := make(map[int64]int64)
	for i := range batch {
		if u := &batch[i]; u.KeyID != 0 {
			last[u.KeyID] = max(last[u.KeyID], ms(u.Time))
		}
	}
	if len(last) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `
		UPDATE client_keys SET last_used_at = ? WHERE id = ? AND last_used_at < ?`)
	if err != nil {
		return fmt.Errorf("write key use: %w", err)
	}
	defer stmt.Close()
	for id, at := range last {
		if _, err := stmt.ExecContext(ctx, at, id, at); err != nil {
			return fmt.Errorf("write use of client key %d: %w", id, err)
		}
	}
	return nil
}

// saveWindows writes subscription windows by account ID, keeping stored ones
// that are newer, and skipping accounts that no longer exist.
func saveWindows(ctx context.Context, tx *sql.Tx, windows map[int64]llmgw.Windows) error {
	if len(windows) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `
		INSERT INTO account_windows (account_id, status, h5_status, h5_utilization, h5_reset,
			d7_status, d7_utilization, d7_reset, observed_at)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
		WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?)
		ON CONFLICT (account_id) DO UPDATE SET
			status = excluded.status,
			h5_status = excluded.h5_status,
			h5_utilization = excluded.h5_utilization,
			h5_reset = excluded.h5_reset,
			d7_status = excluded.d7_status,
			d7_utilization = excluded.d7_utilization,
			d7_reset = excluded.d7_reset,
			observed_at = excluded.observed_at
		WHERE excluded.observed_at >= account_windows.observed_at`)
	if err != nil {
		return fmt.Errorf("save account windows: %w", err)
	}
	defer stmt.Close()
	for id, ws := range windows {
		h, d := &ws.FiveHour, &ws.SevenDay
		_, err := stmt.ExecContext(ctx, id, ws.Status, h.Status, h.Utilization, ms(h.ResetsAt),
			d.Status, d.Utilization, ms(d.ResetsAt), ms(ws.At), id)
		if err != nil {
			return fmt.Errorf("save windows of account %d: %w", id, err)
		}
	}
	return saveScopedWindows(ctx, tx, windows)
}
