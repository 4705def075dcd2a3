package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/llmgw/llmgw"
)

// UseRow is a request log row as the sums of use against limits need it.
type UseRow struct {
	ID         int64 // the row's id: rows written later have higher ids
	RequestID  string
	KeyID      int64 // the client key it was served for; 0 for none
	AccountID  int64 // the account that served it; 0 for none
	Time       time.Time
	Model      string
	Tokens     llmgw.Tokens
	Iterations []llmgw.Iteration
	Speed      string
	Attempts   int
}

// useColumns are the columns scanUse reads, in its order.
const useColumns = `id, request_id, key_id, account_id, ts, model, attempts, input_tokens, output_tokens,
	cache_read_tokens, cache_write_tokens, cache_write_5m_tokens, cache_write_1h_tokens, iterations, speed`

// UseSince returns the request log rows of a client key (or, with account
// set, of an account) from since on, oldest first. A zero since means all
// of them.
func (db *DB) UseSince(ctx context.Context, account bool, id int64, since time.Time) ([]UseRow, error) {
	col := "key_id"
	if account {
		col = "account_id"
	}
	return db.queryUse(ctx, `SELECT `+useColumns+` FROM request_log WHERE `+col+` = ? AND ts >= ? ORDER BY ts`, id, ms(since))
}

// UseAfter returns the request log rows with an id above afterID that
// belong to one of keys or accounts (by id), in id order, leaving out those
// whose request id starts with skip (a process's own, which it counted
// already; "" leaves out none), and last, the highest id the log held when
// asked: the afterID of the next call. It is what other processes on the
// same database wrote since a process last looked, found by id alone (the
// primary key; the key and account columns are tested, not searched), so a
// look costs what was written since it, however long the log.
func (db *DB) UseAfter(ctx context.Context, afterID int64, skip string, keys, accounts []int64) (rows []UseRow, last int64, err error) {
	// Rows are committed in id order (one writer at a time), so every row up
	// to last is visible to the query that follows.
	if last, err = db.LastUseID(ctx); err != nil {
		return nil, 0, err
	}
	if last <= afterID || len(keys)+len(accounts) == 0 {
		return nil, last, nil
	}
	q := `SELECT ` + useColumns + ` FROM request_log WHERE id > ? AND id <= ?`
	args := []any{afterID, last}
	if skip != "" {
		q += ` AND substr(request_id, 1, ?) <> ?`
		args = append(args, len(skip), skip)
	}
	// The unary plus keeps both databases from choosing the key or account
	// index, which would read every row the subject ever had.
	var of []string
	for _, c := range []struct {
		col string
		ids []int64
	}{{"+key_id", keys}, {"+account_id", accounts}} {
		if len(c.ids) == 0 {
			continue
		}
		of = append(of, c.col+` IN (?`+strings.Repeat(`, ?`, len(c.ids)-1)+`)`)
		for _, id := range c.ids {
			args = append(args, id)
		}
	}
	q += ` AND (` + strings.Join(of, ` OR `) + `)`
	rows, err = db.queryUse(ctx, q+` ORDER BY id`, args...)
	return rows, last, err
}

// LastUseID returns the highest request log id; 0 for an empty log.
func (db *DB) LastUseID(ctx context.Context) (int64, error) {
	var last int64
	if err := db.rdb.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM request_log`).Scan(&last); err != nil {
		return 0, fmt.Errorf("read use: %w", err)
	}
	return last, nil
}

// queryUse runs a query of useColumns.
func (db *DB) queryUse(ctx context.Context, query string, args ...any) ([]UseRow, error) {
	rows, err := db.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read use: %w", err)
	}
	defer rows.Close()
	var out []UseRow
	for rows.Next() {
		var (
			r     UseRow
			ts    int64
			t     = &r.Tokens
			iters string
		)
		if err := rows.Scan(&r.ID, &r.RequestID, &r.KeyID, &r.AccountID, &ts, &r.Model, &r.Attempts, &t.Input, &t.Output, &t.CacheRead,
			&t.CacheWrite, &t.CacheWrite5m, &t.CacheWrite1h, &iters, &r.Speed); err != nil {
			return nil, fmt.Errorf("read use: %w", err)
		}
		var err error
		if r.Iterations, err = decodeIterations(iters); err != nil {
			return nil, fmt.Errorf("read use of request %s: iterations: %w", r.RequestID, err)
		}
		r.Time = fromMs(ts)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read use: %w", err)
	}
	return out, nil
}
