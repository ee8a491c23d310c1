package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/database"
	"github.com/photopipe/photopipe/shared/event"
	"github.com/photopipe/photopipe/shared/groupcommit"
	"github.com/photopipe/photopipe/shared/outbox"
)

// RequestProcessing starts a new attempt for every listed photo that has no
// request outstanding, each with its PhotoRequested in the outbox and the
// photo processing that attempt.
//
// POST /photos/process is the API's most frequent write. Each batch of
// requests takes one round trip: one statement (atomic on its own) moves
// every photo that may start an attempt to its next one, processing, and
// writes the PhotoRequested of each photo it moved, and returns what it
// found of the others, from which their outcome is decided. The row
// locks of the update decide between concurrent requests (the photo's
// state is checked again on the row it locks), so a photo is queued once;
// a photo that looked queueable but changed under the statement (a
// concurrent request, the recorder) is decided again in another round.
//
// Requests that arrive while a batch runs wait and go together in the next
// one (shared/groupcommit): under load the round trips, statements and
// commits are shared by many requests instead of paid by each, and with no
// load a request runs at once, alone.
//
// The ids are distinct UUIDs in canonical form (app.Service checks and
// canonicalizes them): results are matched to them by their text.
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

// maxBatchPhotos bounds the photos one batch writes (a call with more goes
// alone): one statement of a few hundred KB at most.
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
// and answers each call; no two calls name the same photo. When the
// statement fails, what was decided before stands; if the photos left
// undecided belong to several calls, each of those calls is tried again
// alone, so that a call is answered with an error only when its own photos
// cannot be queued.
func (r *Repository) processBatch(ctx context.Context, calls []*processCall) {
	var all []photoSlot
	for _, c := range calls {
		c.results = make([]app.ProcessResult, len(c.ids))
		for i, id := range c.ids {
			c.results[i] = app.ProcessResult{UUID: id, Outcome: app.OutcomeNotFound}
			all = append(all, photoSlot{c, i})
		}
	}
	queued, left, err := r.decide(ctx, all)
	defer func() {
		if queued > 0 {
			r.notify()
		}
	}()
	if err == nil {
		return
	}
	byCall := map[*processCall][]photoSlot{}
	var order []*processCall
	for _, s := range left {
		if byCall[s.call] == nil {
			order = append(order, s.call)
		}
		byCall[s.call] = append(byCall[s.call], s)
	}
	for _, c := range order {
		if len(order) > 1 {
			var n int
			n, _, err = r.decide(ctx, byCall[c])
			queued += n
		}
		if err != nil {
			c.results, c.err = nil, err
		}
	}
}

// photoSlot is one photo of a call: c.ids[i], answered in c.results[i].
type photoSlot struct {
	call *processCall
	i    int
}

func (s photoSlot) id() string { return s.call.ids[s.i] }

// decide queues what may be queued of the photos in slots and sets their
// results, in rounds: a photo that changed under a round's statement is
// decided again in the next. It returns how many photos it queued and, on
// an error, the photos still undecided (what was decided stands: each
// round's statement commits on its own).
func (r *Repository) decide(ctx context.Context, slots []photoSlot) (queued int, left []photoSlot, err error) {
	todo := slots
	for round := 0; len(todo) > 0; round++ {
		if round == maxProcessRounds {
			return queued, todo, fmt.Errorf("request processing: photos changed %d times while being queued", round)
		}
		in := make([]attemptRequest, len(todo))
		where := make(map[string]photoSlot, len(todo))
		for i, s := range todo {
			req, err := newAttemptRequest(s.id(), s.call.opts, s.call.correlationID)
			if err != nil {
				return queued, todo, err
			}
			req.Ord = i
			in[i] = req
			where[s.id()] = s
		}
		found, err := r.startAttempts(ctx, in)
		if err != nil {
			return queued, todo, err
		}
		todo = nil
		for _, f := range found {
			s := where[f.UUID]
			if f.Moved != nil {
				s.call.results[s.i] = app.ProcessResult{UUID: f.UUID, Outcome: app.OutcomeQueued, Attempt: *f.Moved}
				queued++
				continue
			}
			p := database.Photo{Attempt: f.Attempt, StatusAttempt: f.StatusAttempt, Status: f.Status}
			res := app.ProcessResult{UUID: f.UUID, Outcome: outcome(p, true, s.call.opts.Reprocess), Attempt: f.Attempt}
			if f.InJob {
				res.Outcome = app.OutcomeInJob
			}
			if res.Outcome == app.OutcomeQueued {
				todo = append(todo, s) // changed under the statement: decide again
				continue
			}
			s.call.results[s.i] = res
		}
	}
	return queued, nil, nil
}

// maxProcessRounds bounds how often a batch meets photos that keep
// changing under it; each round that loses a race sees the winner's
// request, so two are the most a photo needs in practice.
const maxProcessRounds = 8

// attemptRequest asks startAttempts to move one photo to its next attempt.
// Event is the photo's PhotoRequested without what only the photo row
// knows (its attempt, URL or original, filename and renditions), which the
// statement fills in.
type attemptRequest struct {
	Ord        int             `json:"ord"` // its place in the batch: events are written in this order
	UUID       string          `json:"uuid"`
	Renditions []string        `json:"renditions"` // replace the photo's when not empty
	Reprocess  bool            `json:"reprocess"`  // a completed photo too
	MessageID  string          `json:"message_id"`
	Event      json.RawMessage `json:"event"`
	Metadata   json.RawMessage `json:"metadata"`
}

func newAttemptRequest(id string, opts app.ProcessOptions, correlationID string) (attemptRequest, error) {
	rows, err := outbox.Rows(correlationID, &event.PhotoRequested{Header: event.NewHeader(id, 0)})
	if err != nil {
		return attemptRequest{}, err
	}
	meta, err := json.Marshal(rows[0].Metadata)
	if err != nil {
		return attemptRequest{}, fmt.Errorf("encode outbox metadata: %w", err)
	}
	return attemptRequest{UUID: id, Renditions: opts.Renditions, Reprocess: opts.Reprocess,
		MessageID: rows[0].MessageID, Event: rows[0].Payload, Metadata: meta}, nil
}

// foundPhoto is what startAttempts found of a requested photo: its state
// before the statement, and the attempt it moved to, if it moved it.
type foundPhoto struct {
	UUID          string
	Attempt       int
	StatusAttempt int
	Status        database.Status
	InJob         bool // of a job that is still running: its group requests it
	Moved         *int
}

// startAttempts moves each requested photo that may start an attempt
// (pending or failed, completed when reprocessed, no attempt outstanding,
// not of a job still running: its group requests its photos in order)
// to its next attempt, processing that attempt with the last one's failure
// and dead letter cleared, and writes its PhotoRequested, in one statement.
// It returns the photos found, each with the attempt it was moved to or,
// when it was not, its state as the statement found it.
//
// The events' own fields come from newAttemptRequest; the statement adds
// the photo's, as requested() does for a photo in Go (url, or the stored
// original of an upload; filename; renditions). TestStartAttemptsEvents
// holds the two to the same event.
func (r *Repository) startAttempts(ctx context.Context, in []attemptRequest) ([]foundPhoto, error) {
	param, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode process requests: %w", err)
	}
	// The photos are also named as an array (of UUIDs, which the service
	// has checked: nothing in them needs quoting), which the planner matches to
	// the primary key whatever it guesses of the JSON's rows; the status is
	// tested with <> (pending or failed, or completed when reprocessed: the
	// other two of the four), which no index serves, so that the planner
	// never scans the status index instead (it did, for every photo in the
	// status, where the table had no statistics yet).
	ids := make([]string, len(in))
	for i, a := range in {
		ids[i] = a.UUID
	}
	var found []foundPhoto
	err = database.Scan(r.db.WithContext(ctx).Raw(`WITH v AS (
			SELECT * FROM jsonb_to_recordset(CAST(@in AS jsonb))
			    AS v(ord int, uuid uuid, renditions jsonb, reprocess bool, message_id text, event jsonb, metadata jsonb)),
		cur AS (
			SELECT uuid, attempt, status_attempt, status,
			    job_uuid IS NOT NULL AND EXISTS (SELECT 1 FROM jobs j WHERE j.uuid = job_uuid AND j.status = 'ongoing') AS in_job
			FROM photos WHERE uuid = ANY(CAST(@ids AS uuid[]))),
		moved AS (
			UPDATE photos p SET attempt = p.attempt + 1,
			    renditions = CASE WHEN jsonb_array_length(COALESCE(v.renditions, '[]')) > 0 THEN v.renditions ELSE p.renditions END,
			    status = 'processing', status_attempt = p.attempt + 1, updated_at = now(),
			    failure_stage = NULL, failure_code = NULL, failure_message = NULL, failure_retryable = NULL,
			    dead_letter_service = NULL, dead_letter_queue = NULL, dead_letter_reason = NULL, dead_lettered_at = NULL
			FROM v
			WHERE p.uuid = ANY(CAST(@ids AS uuid[])) AND p.uuid = v.uuid AND p.attempt = p.status_attempt
			  AND p.status <> 'processing' AND (p.status <> 'completed' OR v.reprocess)
			  AND (p.job_uuid IS NULL OR NOT EXISTS (SELECT 1 FROM jobs j WHERE j.uuid = p.job_uuid AND j.status = 'ongoing'))
			RETURNING p.uuid, p.attempt, p.url, p.original_key, p.filename, p.renditions,
			    v.message_id, v.event, v.metadata, v.ord),
		events AS (
			INSERT INTO outbox (topic, message_id, payload, metadata)
			SELECT @topic, m.message_id,
			    convert_to((m.event || jsonb_build_object('attempt', m.attempt, 'renditions', m.renditions)
			        || jsonb_strip_nulls(jsonb_build_object(
			            'url', NULLIF(m.url, ''),
			            'original_key', CASE WHEN m.url = '' THEN NULLIF(m.original_key, '') END,
			            'filename', NULLIF(m.filename, ''))))::text, 'UTF8'),
			    m.metadata
			FROM moved m ORDER BY m.ord)
		SELECT cur.uuid::text AS uuid, cur.attempt, cur.status_attempt, cur.status, cur.in_job, moved.attempt AS moved
		FROM v JOIN cur USING (uuid) LEFT JOIN moved USING (uuid)
		ORDER BY v.ord`,
		map[string]any{"in": string(param), "ids": "{" + strings.Join(ids, ",") + "}", "topic": event.Topic(&event.PhotoRequested{})}), &found).Error
	if err != nil {
		return nil, fmt.Errorf("request processing: %w", err)
	}
	return found, nil
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
