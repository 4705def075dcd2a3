package store

import (
	"context"
	"fmt"
	"time"

	"github.com/llmgw/llmgw"
)

// UseRow is a request log row as the sums of use against limits need it.
type UseRow struct {
	RequestID  string
	Time       time.Time
	Model      string
	Tokens     llmgw.Tokens
	Iterations []llmgw.Iteration
	Speed      string
	Attempts   int
}

// UseSince returns the request log rows of a client key (or, with account
// set, of an account) from since on, oldest first. A zero since means all
// of them.
func (db *DB) UseSince(ctx context.Context, account bool, id int64, since time.Time) ([]UseRow, error) {
	col := "key_id"
	if account {
		col = "account_id"
	}
	rows, err := db.rdb.QueryContext(ctx, `
		SELECT request_id, ts, model, attempts, input_tokens, output_tokens, cache_read_tokens,
			cache_write_tokens, cache_write_5m_tokens, cache_write_1h_tokens, iterations, speed
		FROM request_log WHERE `+col+` = ? AND ts >= ? ORDER BY ts`, id, ms(since))
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
		if err := rows.Scan(&r.RequestID, &ts, &r.Model, &r.Attempts, &t.Input, &t.Output, &t.CacheRead,
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
