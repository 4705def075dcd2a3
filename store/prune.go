package store

import (
	"context"
	"fmt"
	"time"
)

// pruneBatch bounds one delete transaction, so that pruning a large log
// never holds the write lock long enough to stall the server's usage writer.
const pruneBatch = 5000

// PruneUsage deletes the request log rows older than before, in batches, and
// returns how many it deleted. Account statistics are running totals kept
// apart and are not changed. With dryRun it only counts.
func (db *DB) PruneUsage(ctx context.Context, before time.Time, dryRun bool) (int64, error) {
	if dryRun {
		var n int64
		err := db.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM request_log WHERE ts < ?`, ms(before)).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("count usage rows: %w", err)
		}
		return n, nil
	}
	var total int64
	for {
		res, err := db.wdb.ExecContext(ctx, `
			DELETE FROM request_log WHERE id IN (
				SELECT id FROM request_log WHERE ts < ? ORDER BY ts LIMIT ?)`, ms(before), pruneBatch)
		if err != nil {
			return total, fmt.Errorf("delete usage rows: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("delete usage rows: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}
