// Package app holds ingest-api's use cases: register photos, request their
// processing (one PhotoRequested each, through the outbox) and read them.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/photopipe/photopipe/shared/rendition"
	"github.com/photopipe/photopipe/shared/storage"
)

// InvalidError is a request the client must change; Code is stable.
type InvalidError struct {
	Code    string
	Message string
}

func (e *InvalidError) Error() string { return e.Message }

func invalid(code, format string, args ...any) error {
	return &InvalidError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrNotFound is returned for an unknown photo or file.
var ErrNotFound = errors.New("not found")

// Photo is a photo as the API shows it.
type Photo struct {
	UUID        string
	URL         string
	Status      string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Attempt     int
	Renditions  []string
	Filename    string
	Original    *Original
	Failure     *Failure
	CompletedAt *time.Time
	Thumbnails  []Thumbnail
	DeadLetter  *DeadLetter
	Callback    *Callback
}

// Callback statuses beyond those of a callbacks row (pending, delivered,
// failed): waiting means the photo or job has not finished yet; expired
// that it finished so long ago that its callback's record was purged
// (the recorder's CALLBACK_RETENTION).
const (
	CallbackWaiting = "waiting"
	CallbackExpired = "expired"
)

// Callback is where the callback of a photo's current attempt, or of a
// job, stands: every try at delivering it so far.
type Callback struct {
	URL           string
	Status        string
	NextAttemptAt *time.Time // when pending: the next try
	LastError     string
	Attempts      []CallbackAttempt
}

// CallbackAttempt is one try at delivering a callback.
type CallbackAttempt struct {
	Attempt    int
	At         time.Time
	StatusCode int // 0: no response
	Error      string
	DurationMS int64
}

// DeadLetter says the photo's processing waits in a service's dead-letter
// queue until an operator replays or discards the message.
type DeadLetter struct {
	Service string
	Queue   string
	Reason  string
	Since   time.Time
}

// Original describes the stored original of a photo.
type Original struct {
	Key         string
	ContentType string
	Bytes       int64
	Width       int
	Height      int
	Pages       int
}

// Failure says why a photo failed.
type Failure struct {
	Stage     string
	Code      string
	Message   string
	Retryable bool
}

// Thumbnail is one stored rendition.
type Thumbnail struct {
	Rendition string
	Page      int
	Key       string
	Width     int
	Height    int
	Format    string
	Bytes     int64
}

// NewPhoto is a photo to register.
type NewPhoto struct {
	URL        string
	Renditions []string
	// CallbackURL, when set, receives a signed POST when the photo's
	// processing ends (each attempt).
	CallbackURL string
}

// Outcome of a processing request for one photo. A photo queued is
// processing its new attempt at once, so asking again answers
// already_processing; already_queued is for photos queued before ingest-api
// marked them processing itself, while the recorder had not yet.
const (
	OutcomeQueued            = "queued"
	OutcomeNotFound          = "not_found"
	OutcomeAlreadyQueued     = "already_queued"
	OutcomeAlreadyProcessing = "already_processing"
	OutcomeAlreadyCompleted  = "already_completed"
	// The photo belongs to a job that is still running: its group requests
	// it in turn (a photo of a finished job can be processed again, which
	// leaves the job's result as it is).
	OutcomeInJob = "in_job"
)

// ProcessResult is the outcome of a processing request for one photo.
type ProcessResult struct {
	UUID    string
	Outcome string
	Attempt int
}

// ProcessOptions qualify a processing request.
type ProcessOptions struct {
	// Renditions replaces the photo's renditions when not empty.
	Renditions []string
	// Reprocess starts a new attempt for completed photos too.
	Reprocess bool
}

// Repository stores photos and, in the same transaction, the events that
// request their processing.
type Repository interface {
	Create(ctx context.Context, photos []NewPhoto, process bool, correlationID string) ([]Photo, error)
	RequestProcessing(ctx context.Context, ids []string, opts ProcessOptions, correlationID string) ([]ProcessResult, error)
	ListPending(ctx context.Context, after string, limit int) ([]Photo, error)
	Get(ctx context.Context, id string) (Photo, error)
}

// Limits bound requests.
type Limits struct {
	MaxPhotos    int
	MaxURLLength int
	PageSize     int
	MaxPageSize  int
}

// Service implements the use cases.
type Service struct {
	repo    Repository
	store   storage.Store
	presets rendition.Presets
	limits  Limits
}

// NewService returns a Service.
func NewService(repo Repository, store storage.Store, presets rendition.Presets, limits Limits) *Service {
	return &Service{repo: repo, store: store, presets: presets, limits: limits}
}

// Registration is a request to register photos by URL.
type Registration struct {
	URLs       []string
	Renditions []string
	// Process requests processing at once.
	Process bool
	// CallbackURL, when set, is called when each photo's processing ends.
	CallbackURL string
}

// Register creates one photo per URL, all with the same renditions, and
// requests their processing at once when process is set.
func (s *Service) Register(ctx context.Context, urls []string, renditions []string, process bool, correlationID string) ([]Photo, error) {
	return s.RegisterPhotos(ctx, Registration{URLs: urls, Renditions: renditions, Process: process}, correlationID)
}

// RegisterPhotos creates one photo per URL of reg, all with the same
// renditions and callback URL, and requests their processing at once when
// reg.Process is set.
func (s *Service) RegisterPhotos(ctx context.Context, reg Registration, correlationID string) ([]Photo, error) {
	urls, renditions, process := reg.URLs, reg.Renditions, reg.Process
	if len(urls) == 0 {
		return nil, invalid("empty_list", "no photo URLs given")
	}
	if len(urls) > s.limits.MaxPhotos {
		return nil, invalid("too_many_photos", "%d photos in one request; the limit is %d", len(urls), s.limits.MaxPhotos)
	}
	names, err := s.presets.Check(renditions)
	if err != nil {
		return nil, invalid("unknown_rendition", "%v", err)
	}
	if err := s.checkCallbackURL(reg.CallbackURL); err != nil {
		return nil, err
	}
	photos := make([]NewPhoto, 0, len(urls))
	for i, raw := range urls {
		if err := s.checkURL(raw); err != nil {
			return nil, invalid("invalid_url", "urls[%d]: %v", i, err)
		}
		photos = append(photos, NewPhoto{URL: raw, Renditions: names, CallbackURL: reg.CallbackURL})
	}
	return s.repo.Create(ctx, photos, process, correlationID)
}

func (s *Service) checkURL(raw string) error { return checkURL(raw, s.limits.MaxURLLength) }

// checkURL accepts an absolute http or https URL with a host, at most
// maxLen long.
func checkURL(raw string, maxLen int) error {
	if len(raw) > maxLen {
		return fmt.Errorf("longer than %d characters", maxLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an http or https URL", raw)
	}
	// Hostname, not Host: "http://:8080/a.jpg" has a Host but no host name.
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	return nil
}

// checkCallbackURL accepts "" (no callback) or an absolute http or https
// URL with a host, at most MaxURLLength long. Whether its address may be
// called is decided when it is called (the recorder's network guard, the
// same rules as downloads).
func (s *Service) checkCallbackURL(raw string) error {
	return checkCallbackURL(raw, s.limits.MaxURLLength)
}

func checkCallbackURL(raw string, maxLen int) error {
	if raw == "" {
		return nil
	}
	if err := checkURL(raw, maxLen); err != nil {
		return invalid("invalid_callback_url", "callback_url: %v", err)
	}
	return nil
}

// Process requests processing of the photos: exactly one PhotoRequested per
// photo (duplicates in ids count once), and an outcome for every id.
func (s *Service) Process(ctx context.Context, ids []string, opts ProcessOptions, correlationID string) ([]ProcessResult, error) {
	if len(ids) == 0 {
		return nil, invalid("empty_list", "no photo uuids given")
	}
	if len(ids) > s.limits.MaxPhotos {
		return nil, invalid("too_many_photos", "%d photos in one request; the limit is %d", len(ids), s.limits.MaxPhotos)
	}
	unique := make([]string, 0, len(ids))
	seen := map[string]bool{}
	for i, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, invalid("invalid_uuid", "uuids[%d]: %q is not a UUID", i, id)
		}
		id = u.String()
		if !seen[id] {
			seen[id] = true
			unique = append(unique, id)
		}
	}
	if len(opts.Renditions) > 0 {
		names, err := s.presets.Check(opts.Renditions)
		if err != nil {
			return nil, invalid("unknown_rendition", "%v", err)
		}
		opts.Renditions = names
	}
	return s.repo.RequestProcessing(ctx, unique, opts, correlationID)
}

// Pending lists pending photos (never requested: a request makes a photo
// processing at once), oldest first, after the photo with uuid
// after (the cursor), at most limit (0 for the default page size). When the
// page is full, next is the cursor of the following page; otherwise "".
func (s *Service) Pending(ctx context.Context, after string, limit int) (photos []Photo, next string, err error) {
	if after != "" {
		u, err := uuid.Parse(after)
		if err != nil {
			return nil, "", invalid("invalid_cursor", "after: %q is not a UUID", after)
		}
		// Postgres does not read every form uuid.Parse accepts ("urn:uuid:...").
		after = u.String()
	}
	switch {
	case limit == 0:
		limit = s.limits.PageSize
	case limit < 0 || limit > s.limits.MaxPageSize:
		return nil, "", invalid("invalid_limit", "limit must be between 1 and %d", s.limits.MaxPageSize)
	}
	photos, err = s.repo.ListPending(ctx, after, limit)
	if err != nil {
		return nil, "", err
	}
	if len(photos) == limit {
		next = photos[len(photos)-1].UUID
	}
	return photos, next, nil
}

// Get returns one photo with its original and renditions.
func (s *Service) Get(ctx context.Context, id string) (Photo, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return Photo{}, invalid("invalid_uuid", "%q is not a UUID", id)
	}
	return s.repo.Get(ctx, u.String())
}

// OpenFile opens a stored file by key.
func (s *Service) OpenFile(ctx context.Context, key string) (storage.Object, error) {
	obj, err := s.store.Open(ctx, key)
	switch {
	case errors.Is(err, storage.ErrInvalidKey):
		return nil, invalid("invalid_key", "%q is not a valid file path", key)
	case errors.Is(err, storage.ErrNotFound):
		return nil, fmt.Errorf("file %q: %w", key, ErrNotFound)
	}
	return obj, err
}
