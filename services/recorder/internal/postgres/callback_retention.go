package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/photopipe/photopipe/services/recorder/internal/app"
)

// PurgeBatch is how many callbacks one purge statement deletes at most, so
// that no statement holds its row locks (or fills the WAL) for long.
const PurgeBatch = 1000

var _ app.CallbackPurger = (*CallbackStore)(nil)

// Purge deletes the final (delivered or failed) callbacks that became
// final more than olderThan ago, with their attempts (the foreign key
// cascades), PurgeBatch rows per statement until none is left, and returns
// how many it deleted. Pending callbacks are never deleted, however old,
// and an olderThan of 0 or less (CALLBACK_RETENTION=0: keep forever)
// deletes nothing.
// A final row never changes again (claims and results only touch pending
// ones), so finished_at, set when it became final, is its last change; the
// cut-off is computed by Postgres so replicas' clocks do not matter.
// Replicas may purge at once: each skips the rows another is deleting.
// When ctx ends or a statement fails, the count so far comes with the error.
func (s *CallbackStore) Purge(ctx context.Context, olderThan time.Duration) (int64, error) {
	if olderThan <= 0 {
		return 0, nil
	}
	var total int64
	for {
		res := s.db.WithContext(ctx).Exec(`DELETE FROM callbacks WHERE id IN (
			SELECT id FROM callbacks
			WHERE status IN ('delivered', 'failed')
			  AND finished_at < now() - make_interval(secs => @age)
			LIMIT @batch
			FOR UPDATE SKIP LOCKED)`,
			map[string]any{"age": olderThan.Seconds(), "batch": PurgeBatch})
		if res.Error != nil {
			return total, fmt.Errorf("purge callbacks: %w", res.Error)
		}
		total += res.RowsAffected
		if res.RowsAffected < PurgeBatch {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("purge callbacks: %w", err)
		}
	}
}
