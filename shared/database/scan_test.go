package database_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/envconfig"
	"github.com/photopipe/photopipe/shared/testenv"
)

// Scan answers as gorm's DB.Scan does: rows into a slice, a struct or a
// scalar, RowsAffected, no row, and errors from the statement and from
// scanning.
func TestScanAnswersAsGormScan(t *testing.T) {
	cfg := database.LoadConfig(envconfig.New(func(k string) string {
		return map[string]string{"DATABASE_URL": testenv.Postgres(t), "DB_MIGRATE": "false"}[k]
	}))
	db, err := database.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = database.Close(db) })
	type pair struct {
		N    int
		Name string
	}
	const three = `SELECT n, 'n' || n AS name FROM generate_series(1, 3) n WHERE n >= ?`

	var mine, gorms []pair
	res := database.Scan(db.Raw(three, 2), &mine)
	want := db.Raw(three, 2).Scan(&gorms)
	require.NoError(t, res.Error)
	require.Equal(t, []pair{{2, "n2"}, {3, "n3"}}, mine)
	require.Equal(t, gorms, mine)
	require.Equal(t, want.RowsAffected, res.RowsAffected)
	require.EqualValues(t, 2, res.RowsAffected)

	var one pair
	res = database.Scan(db.Raw(three, 3), &one)
	require.NoError(t, res.Error)
	require.Equal(t, pair{3, "n3"}, one)
	require.EqualValues(t, 1, res.RowsAffected)

	var n int
	res = database.Scan(db.Raw(three, 4), &n)
	require.NoError(t, res.Error, "no row is not an error")
	require.Zero(t, res.RowsAffected)
	require.Zero(t, n)

	require.ErrorContains(t, database.Scan(db.Raw(`SELECT nonsense FROM nowhere`), &n).Error, "nowhere")
	require.Error(t, database.Scan(db.Raw(`SELECT 'text'`), &n).Error, "a scan that cannot convert")
}
