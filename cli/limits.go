package cli

import (
	"context"
	"time"

	"github.com/llmgw/llmgw"
	"github.com/llmgw/llmgw/proxy/anthropic"
	"github.com/llmgw/llmgw/proxy/policy"
	"github.com/llmgw/llmgw/store"
)

// usageLog is the request log as limits read it: the server sums a key's
// or an account's use from it when their limits are set or changed, and the
// CLI shows use from it (key show, key list, account list).
type usageLog struct {
	db      *store.DB
	writer  *store.UsageWriter // nil in the CLI: nothing is pending there
	catalog *anthropic.Catalog
}

func (l usageLog) Flush(ctx context.Context) error {
	if l.writer == nil {
		return nil
	}
	return l.writer.Flush(ctx)
}

func (l usageLog) Rows(ctx context.Context, s policy.Subject, since time.Time) ([]policy.Row, error) {
	rows, err := l.db.UseSince(ctx, s.Account, s.ID, since)
	return l.rows(rows, err)
}

func (l usageLog) LastID(ctx context.Context) (int64, error) { return l.db.LastUseID(ctx) }

func (l usageLog) RowsAfter(ctx context.Context, afterID int64, skip string, subjects []policy.Subject) ([]policy.Row, int64, error) {
	var keys, accounts []int64
	for _, s := range subjects {
		if s.Account {
			accounts = append(accounts, s.ID)
		} else {
			keys = append(keys, s.ID)
		}
	}
	rows, last, err := l.db.UseAfter(ctx, afterID, skip, keys, accounts)
	out, err := l.rows(rows, err)
	return out, last, err
}

func (l usageLog) rows(rows []store.UseRow, err error) ([]policy.Row, error) {
	if err != nil {
		return nil, err
	}
	out := make([]policy.Row, len(rows))
	for i, r := range rows {
		out[i] = policy.Row{ID: r.ID, RequestID: r.RequestID, Key: r.KeyID, Account: r.AccountID, Time: r.Time,
			Charge: policy.ChargeOf(l.catalog, usedOf(r), r.Attempts)}
	}
	return out, nil
}

// use sums a subject's use against its limits at now, as the server counts
// it (without the reservations of requests in flight, which only the server
// knows).
func (l usageLog) use(ctx context.Context, s policy.Subject, limits []llmgw.Limit, now time.Time, loc *time.Location) ([]policy.Use, error) {
	if len(limits) == 0 {
		return nil, nil
	}
	rows, err := l.Rows(ctx, s, policy.Since(limits, now, loc))
	if err != nil {
		return nil, err
	}
	return policy.Measure(limits, rows, now, loc), nil
}

// usedOf returns what a logged request used, as pricing needs it.
func usedOf(r store.UseRow) policy.Used {
	return policy.Used{Model: r.Model, Tokens: r.Tokens, Iterations: r.Iterations, Speed: r.Speed}
}
