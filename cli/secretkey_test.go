package cli

import (
	"context"
	"errors"
	"io/fs"

	"github.com/llmgw/llmgw/store"
)

// openStore opens the database at path as another process would, with the
// default key file next to it when there is one (as "llmgw db migrate"
// leaves it), so that tests can set up accounts directly.
func openStore(ctx context.Context, path string) (*store.DB, error) {
	db, err := store.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	key, err := readSecretKey(keySource{path: path + ".key", from: "test", managed: true})
	switch {
	case errors.Is(err, errKeyMissing), errors.Is(err, fs.ErrNotExist):
		return db, nil
	case err != nil:
		_ = db.Close()
		return nil, err
	}
	if err := db.SetSecretKey(key); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}
