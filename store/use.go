package store

import (
	"context"
	"fmt"
	"time"

	"github.com/llmgw/llmgw"
)

// UseRow is a request log row as the sums of use against limits need it.
type UseRow struct {
	ID         int64 // the row's id: rows written later have higher ids
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
	return db.use(ctx, account, `ts >= ? ORDER BY ts`, id, ms(since))
}

// UseAfter returns the request log rows of a client key (or an account)
// with an id above afterID, in id order: what other processes on the same
// database wrote since a process last looked.
func (db *DB) UseAfter(ctx context.Context, account bool, id, afterID int64) ([]UseRow, error) {
	return db.use(ctx, account, `id > ? ORDER BY id`, id, afterID)
}

func (db *DB) use(ctx context.Context, account bool, where string, id int64, arg int64) ([]UseRow, error) {
	col := "key_id"
	if account {
		col = "account_id"
	}
	rows, err := db.rdb.QueryContext(ctx, `
		SELECT id, request_id, ts, model, attempts, input_tokens, output_tokens, cache_read_tokens,
			cache_write_tokens, cache_write_5m_tokens, cache_write_1h_tokens, iterations, speed
		FROM request_log WHERE `+col+` = ? AND `+where, id, arg)
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
		if err := rows.Scan(&r.ID, &r.RequestID, &ts, &r.Model, &r.Attempts, &t.Input, &t.Output, &t.CacheRead,
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
