package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/testenv"
)

// mustOpenDB opens a migrated database of the test's own with a pool of
// conns connections, closed when the test ends.
func mustOpenDB(t *testing.T, conns int) *gorm.DB {
	t.Helper()
	db, err := database.Open(context.Background(), database.Config{
		URL: testenv.Postgres(t), MaxOpenConns: conns, MaxIdleConns: conns, ConnectTimeout: 30 * time.Second, Migrate: true,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Close(db) })
	return db
}
