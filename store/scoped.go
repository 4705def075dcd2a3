package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/llmgw/llmgw"
)

// Model-scoped subscription windows and per-family cooldowns (migration
// 00006).

// encodeFamilyCooldowns stores an account's family cooldowns as a JSON
// object of family to unix milliseconds, "" for none.
func encodeFamilyCooldowns(cs []llmgw.FamilyCooldown) string {
	if len(cs) == 0 {
		return ""
	}
	m := make(map[string]int64, len(cs))
	for _, c := range cs {
		m[c.Family] = ms(c.Until)
	}
	b, _ := json.Marshal(m) // a map of strings to integers always encodes
	return string(b)
}

// decodeFamilyCooldowns reads what encodeFamilyCooldowns wrote, ordered by
// family.
func decodeFamilyCooldowns(s string) ([]llmgw.FamilyCooldown, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]int64
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("stored family cooldowns: %w", err)
	}
	out := make([]llmgw.FamilyCooldown, 0, len(m))
	for f, until := range m {
		out = append(out, llmgw.FamilyCooldown{Family: f, Until: fromMs(until)})
	}
	slices.SortFunc(out, func(a, b llmgw.FamilyCooldown) int { return strings.Compare(a.Family, b.Family) })
	return out, nil
}

// saveScopedWindows writes, for each account whose account_windows row was
// just written with these windows (saveWindows keeps a newer stored row),
// its scoped windows and representative claim, replacing the ones stored.
func saveScopedWindows(ctx context.Context, tx *sql.Tx, windows map[int64]llmgw.Windows) error {
	for id, ws := range windows {
		var observed int64
		err := tx.QueryRowContext(ctx, `SELECT observed_at FROM account_windows WHERE account_id = ?`, id).Scan(&observed)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue // the account is gone
		case err != nil:
			return fmt.Errorf("save scoped windows of account %d: %w", id, err)
		case observed != ms(ws.At):
			continue // newer windows are stored
		}
		if _, err := tx.ExecContext(ctx, `UPDATE account_windows SET representative_claim = ? WHERE account_id = ?`, ws.Claim, id); err != nil {
			return fmt.Errorf("save windows claim of account %d: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM account_scoped_windows WHERE account_id = ?`, id); err != nil {
			return fmt.Errorf("save scoped windows of account %d: %w", id, err)
		}
		for _, w := range ws.Scoped {
			_, err := tx.ExecContext(ctx, `
				INSERT INTO account_scoped_windows (account_id, name, family, status, utilization, reset)
				VALUES (?, ?, ?, ?, ?, ?)`,
				id, w.Name, w.Family, w.Status, w.Utilization, ms(w.ResetsAt))
			if err != nil {
				return fmt.Errorf("save scoped window %s of account %d: %w", w.Name, id, err)
			}
		}
	}
	return nil
}

// attachScoped fills in the scoped windows of accts from
// account_scoped_windows.
func attachScoped(ctx context.Context, q queryer, accts []llmgw.Account) error {
	if len(accts) == 0 {
		return nil
	}
	query := `SELECT account_id, name, family, status, utilization, reset FROM account_scoped_windows ORDER BY account_id, name, family`
	var args []any
	if len(accts) == 1 {
		query = `SELECT account_id, name, family, status, utilization, reset FROM account_scoped_windows WHERE account_id = ? ORDER BY name, family`
		args = []any{accts[0].ID}
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read scoped windows: %w", err)
	}
	defer rows.Close()
	byID := map[int64][]llmgw.ScopedWindow{}
	for rows.Next() {
		var (
			id    int64
			w     llmgw.ScopedWindow
			reset int64
		)
		if err := rows.Scan(&id, &w.Name, &w.Family, &w.Status, &w.Utilization, &reset); err != nil {
			return fmt.Errorf("read scoped windows: %w", err)
		}
		w.ResetsAt = fromMs(reset)
		byID[id] = append(byID[id], w)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read scoped windows: %w", err)
	}
	for i := range accts {
		accts[i].Windows.Scoped = byID[accts[i].ID]
	}
	return nil
}
