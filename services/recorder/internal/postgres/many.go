package postgres

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
)

// The statements that apply many events of one kind at once: the events'
// fields arrive as one JSON array (jsonb_to_recordset), each is applied
// under the same conditions as the one-event statements in repository.go,
// and RETURNING names the photos that moved. The caller gives each photo
// at most once, by its canonical uuid (Repository.apply), the spelling
// RETURNING uses.

// rowsParam encodes the events' fields as the JSON array of @rows.
func rowsParam(rows any) (string, error) {
	b, err := json.Marshal(rows)
	if err != nil {
		return "", fmt.Errorf("encode batch: %w", err)
	}
	return string(b), nil
}

// appliedOf maps the photos an update returned to the ops' results.
func appliedOf(ops []*op, applied []string) []final {
	moved := make(map[string]bool, len(applied))
	for _, id := range applied {
		moved[id] = true
	}
	res := make([]final, len(ops))
	for i, o := range ops {
		res[i].applied = moved[o.photo]
	}
	return res
}

// completeMany is Complete for many photos: one update, one insert of
// every completed photo's renditions, then each completed photo's job
// and callbacks (photos without either cost nothing more).
func completeMany(tx *gorm.DB, ops []*op) ([]final, error) {
	type row struct {
		ID          string `json:"id"`
		Attempt     int    `json:"attempt"`
		Width       int    `json:"w"`
		Height      int    `json:"h"`
		Pages       int    `json:"pages"`
		Key         string `json:"key"`
		Filename    string `json:"filename"`
		ContentType string `json:"ct"`
		Bytes       int64  `json:"bytes"`
	}
	rows := make([]row, len(ops))
	for i, o := range ops {
		e := o.ev.(*event.ThumbnailCreated)
		rows[i] = row{ID: o.photo, Attempt: e.Attempt, Width: e.Width, Height: e.Height, Pages: e.Pages,
			Key: e.OriginalKey, Filename: e.Filename, ContentType: e.ContentType, Bytes: e.Bytes}
	}
	param, err := rowsParam(rows)
	if err != nil {
		return nil, err
	}
	var done []finalRow
	if err := database.Scan(tx.Raw(`UPDATE photos
		SET status = 'completed', status_attempt = v.attempt, updated_at = now(), completed_at = now(),
		    width = v.w, height = v.h, pages = v.pages,
		    original_key = COALESCE(NULLIF(v.key, ''), original_key),
		    filename = COALESCE(NULLIF(v.filename, ''), photos.filename),
		    content_type = COALESCE(NULLIF(v.ct, ''), content_type),
		    bytes = COALESCE(NULLIF(v.bytes, 0), photos.bytes),
		    failure_stage = NULL, failure_code = NULL, failure_message = NULL, failure_retryable = NULL,
		    dead_letter_service = NULL, dead_letter_queue = NULL, dead_letter_reason = NULL, dead_lettered_at = NULL
		FROM jsonb_to_recordset(CAST(@rows AS jsonb))
		     AS v(id uuid, attempt int, w int, h int, pages int, key text, filename text, ct text, bytes bigint)
		WHERE uuid = v.id AND `+advancesAt("v.attempt", "@rank")+`
		RETURNING uuid::text AS uuid, callback_url, job_uuid, group_key, group_seq`,
		map[string]any{"rows": param, "rank": database.StatusCompleted.Rank()}), &done).Error; err != nil {
		return nil, fmt.Errorf("complete photos: %w", err)
	}
	byPhoto := make(map[string]finalRow, len(done))
	for _, d := range done {
		byPhoto[d.UUID] = d
	}
	var renditions []database.Thumbnail
	var later []string // completing a later attempt: earlier renditions go
	for _, o := range ops {
		if _, ok := byPhoto[o.photo]; ok {
			e := o.ev.(*event.ThumbnailCreated)
			renditions = append(renditions, renditionRows(e)...)
			if e.Attempt > 1 {
				later = append(later, o.photo)
			}
		}
	}
	if err := dropRenditions(tx, later); err != nil {
		return nil, err
	}
	if err := writeRenditions(tx, renditions); err != nil {
		return nil, err
	}
	res := make([]final, len(ops))
	var finish []int // the completed ops with a job or a callback
	for i, o := range ops {
		fr, ok := byPhoto[o.photo]
		switch {
		case !ok:
		case fr.JobUUID == nil && fr.CallbackURL == nil:
			res[i] = final{applied: true}
		default:
			finish = append(finish, i)
		}
	}
	// Job order: the job and group rows are locked in the same order by
	// every batch (of any replica), so two batches of photos of the same
	// jobs wait for each other instead of deadlocking.
	slices.SortStableFunc(finish, func(a, b int) int {
		x, y := byPhoto[ops[a].photo], byPhoto[ops[b].photo]
		return cmp.Or(cmp.Compare(deref(x.JobUUID), deref(y.JobUUID)), cmp.Compare(deref(x.GroupKey), deref(y.GroupKey)))
	})
	for _, i := range finish {
		o := ops[i]
		f, err := finishCompleted(o.ctx, tx, o.photo, byPhoto[o.photo])
		if err != nil {
			return nil, err
		}
		res[i] = f
	}
	return res, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
