package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/groupcommit"
	"github.com/photopipe/photopipe/shared/outbox"
)

// RequestProcessing starts a new attempt for every listed photo that has no
// request outstanding, each with its PhotoRequested in the outbox and the
// photo processing that attempt.
//
// POST /photos/process is the API's most frequent write. Each batch of
// requests takes two round trips: it reads the photos, decides in Go, then
// one statement (atomic on its own) bumps each chosen photo's attempt and
// marks it processing, only if the photo is still in the state it was read
// in (compare and swap), and writes the events of the photos it bumped. A
// photo that changed in between (a concurrent request, the recorder) is
// read and decided again, so concurrent requests still queue a photo once.
//
// Requests that arrive while a batch runs wait and go together in the next
// one (shared/groupcommit): under load the round trips, statements and
// commits are shared by many requests instead of paid by each, and with no
// load a request runs at once, alone.
func (r *Repository) RequestProcessing(ctx context.Context, ids []string, opts app.ProcessOptions, correlationID string) ([]app.ProcessResult, error) {
	c := &processCall{ids: ids, opts: opts, correlationID: correlationID}
	if err := r.batches.Do(ctx, c); err != nil {
		return nil, err
	}
	return c.results, c.err
}

// processCall is one RequestProcessing call: what it asks for and, once
// its batch has run, its answer.
type processCall struct {
	ids           []string
	opts          app.ProcessOptions
	correlationID string

	results []app.ProcessResult
	err     error
}

// newProcessBatches returns the queue of RequestProcessing calls.
func (r *Repository) newProcessBatches() *groupcommit.Queue[*processCall] {
	return &groupcommit.Queue[*processCall]{Run: r.processBatch, Select: selectProcessBatch, Timeout: batchTimeout}
}

// maxBatchPhotos bounds the photos one batch reads and writes (a call with
// more goes alone): 9 parameters a photo stay far below Postgres's 65,535.
const maxBatchPhotos = 1000

// batchTimeout bounds one batch. A batch serves several requests, so it
// does not end with its leader's request; it ends by this deadline when the
// database does not answer.
const batchTimeout = 30 * time.Second

// selectProcessBatch picks the oldest call, then every later one that
// fits and names none of the photos already picked (those wait for a later
// batch, so that each photo is decided once per batch, and the requests
// naming one photo in the order they came).
func selectProcessBatch(waiting []*processCall) []bool {
	pick := make([]bool, len(waiting))
	taken := map[string]bool{}
	photos := 0
	for i, c := range waiting {
		fits := i == 0 || photos+len(c.ids) <= maxBatchPhotos
		for _, id := range c.ids {
			if !fits {
				break
			}
			fits = !taken[id]
		}
		if !fits {
			continue
		}
		for _, id := range c.ids {
			taken[id] = true
		}
		photos += len(c.ids)
		pick[i] = true
	}
	return pick
}

// processBatch decides and queues the photos of every call in the batch
// and answers each call; no two calls name the same photo. An error
// answers only the calls with photos still undecided when it came: what
// the others queued is committed, and their answers stand.
func (r *Repository) processBatch(ctx context.Context, calls []*processCall) {
	type slot struct {
		call *processCall
		i    int
	}
	where := map[string]slot{}
	var todo []string
	for _, c := range calls {
		c.results = make([]app.ProcessResult, len(c.ids))
		for i, id := range c.ids {
			where[id] = slot{c, i}
			todo = append(todo, id)
		}
	}
	queued := 0
	defer func() {
		if queued > 0 {
			r.notify()
		}
	}()
	fail := func(err error) {
		for _, id := range todo {
			c := where[id].call
			c.results, c.err = nil, err
		}
	}
	for round := 0; len(todo) > 0; round++ {
		if round == maxProcessRounds {
			fail(fmt.Errorf("request processing: photos changed %d times while being queued", round))
			return
		}
		for _, id := range todo {
			s := where[id]
			s.call.results[s.i] = app.ProcessResult{UUID: id, Outcome: app.OutcomeNotFound}
		}
		var rows []database.Photo
		if err := r.db.WithContext(ctx).
			Select("uuid", "attempt", "status_attempt", "status", "url", "filename", "renditions", "original_key").
			Where("uuid IN ?", todo).Find(&rows).Error; err != nil {
			fail(fmt.Errorf("read photos: %w", err))
			return
		}
		var swaps []attemptSwap
		for _, p := range rows {
			s := where[p.UUID]
			res := app.ProcessResult{UUID: p.UUID, Outcome: outcome(p, true, s.call.opts.Reprocess), Attempt: p.Attempt}
			s.call.results[s.i] = res
			if res.Outcome == app.OutcomeQueued {
				swaps = append(swaps, attemptSwap{Photo: p, Renditions: s.call.opts.Renditions, CorrelationID: s.call.correlationID})
			}
		}
		won, err := r.startAttempts(ctx, swaps)
		if err != nil {
			todo = todo[:0]
			for _, sw := range swaps {
				todo = append(todo, sw.Photo.UUID)
			}
			fail(err)
			return
		}
		todo = nil
		for _, sw := range swaps {
			s := where[sw.Photo.UUID]
			if won[sw.Photo.UUID] {
				s.call.results[s.i].Attempt = sw.Photo.Attempt + 1
				queued++
				continue
			}
			todo = append(todo, sw.Photo.UUID) // changed since read: decide again
		}
	}
}

// maxProcessRounds bounds how often a batch reads photos that keep
// changing under it; each round that loses a race sees the winner's
// request, so two are the most a photo needs in practice.
const maxProcessRounds = 8

// attemptSwap is a photo as read, to move to its next attempt, with what
// the request that moves it asked for.
type attemptSwap struct {
	Photo         database.Photo
	Renditions    []string // replace the photo's when not empty
	CorrelationID string
}

// startAttempts moves each photo that is still as read to its next attempt,
// processing that attempt with the last one's failure and dead letter
// cleared, and writes its PhotoRequested, in one statement; it returns the
// photos it moved.
func (r *Repository) startAttempts(ctx context.Context, swaps []attemptSwap) (map[string]bool, error) {
	if len(swaps) == 0 {
		return nil, nil
	}
	values := make([]string, len(swaps))
	args := make([]any, 0, len(swaps)*9)
	for i, sw := range swaps {
		p := sw.Photo
		p.Attempt++
		var renditions any // NULL: keep the photo's
		if len(sw.Renditions) > 0 {
			p.Renditions = sw.Renditions
			renditions = renditionsJSON(sw.Renditions)
		}
		rows, err := outbox.Rows(sw.CorrelationID, requested(p))
		if err != nil {
			return nil, err
		}
		meta, err := json.Marshal(rows[0].Metadata)
		if err != nil {
			return nil, fmt.Errorf("encode outbox metadata: %w", err)
		}
		values[i] = "(?::uuid, ?::int, ?::int, ?::photo_status, ?::jsonb, ?::text, ?::text, ?::bytea, ?::jsonb)"
		args = append(args, sw.Photo.UUID, sw.Photo.Attempt, sw.Photo.StatusAttempt, string(sw.Photo.Status), renditions,
			rows[0].Topic, rows[0].MessageID, rows[0].Payload, string(meta))
	}
	var moved []struct{ UUID string }
	err := r.db.WithContext(ctx).Raw(`WITH v (uuid, attempt, status_attempt, status, renditions, topic, message_id, payload, metadata) AS (
			VALUES `+strings.Join(values, ", ")+`),
		moved AS (
			UPDATE photos p SET attempt = p.attempt + 1, renditions = COALESCE(v.renditions, p.renditions),
			    status = 'processing', status_attempt = p.attempt + 1, updated_at = now(),
			    failure_stage = NULL, failure_code = NULL, failure_message = NULL, failure_retryable = NULL,
			    dead_letter_service = NULL, dead_letter_queue = NULL, dead_letter_reason = NULL, dead_lettered_at = NULL
			FROM v
			WHERE p.uuid = v.uuid AND p.attempt = v.attempt AND p.status_attempt = v.status_attempt AND p.status = v.status
			RETURNING p.uuid)
		INSERT INTO outbox (topic, message_id, payload, metadata)
		SELECT v.topic, v.message_id, v.payload, v.metadata FROM v JOIN moved USING (uuid)
		RETURNING (SELECT v.uuid FROM v WHERE v.message_id = outbox.message_id) AS uuid`, args...).Scan(&moved).Error
	if err != nil {
		return nil, fmt.Errorf("start attempts: %w", err)
	}
	won := make(map[string]bool, len(moved))
	for _, m := range moved {
		won[m.UUID] = true
	}
	return won, nil
}

// outcome decides what a processing request does to photo p. A photo
// queued by ingest-api is processing its new attempt at once, so a second
// request finds it already processing; already_queued (an attempt newer than
// the status) is left for rows queued before ingest-api set processing
// itself, whose request the recorder had yet to pick up.
func outcome(p database.Photo, found, reprocess bool) string {
	switch {
	case !found:
		return app.OutcomeNotFound
	case p.Attempt > p.StatusAttempt:
		return app.OutcomeAlreadyQueued
	case p.Status == database.StatusProcessing:
		return app.OutcomeAlreadyProcessing
	case p.Status == database.StatusCompleted && !reprocess:
		return app.OutcomeAlreadyCompleted
	}
	return app.OutcomeQueued
}
