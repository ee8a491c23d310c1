package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/photopipe/photopipe/services/ingest-api/internal/app"
	"github.com/photopipe/photopipe/shared/rendition"
	"github.com/photopipe/photopipe/shared/storage"
)

// fakeRepo is a hand-written app.Repository that records what the service
// asks of it and answers with canned values.
type fakeRepo struct {
	mu sync.Mutex

	created []createCall
	process []processCall
	pending []pendingCall
	got     []string

	err     error       // returned by every method when set
	listed  []app.Photo // returned by ListPending
	results []app.ProcessResult
}

type createCall struct {
	photos        []app.NewPhoto
	process       bool
	correlationID string
}

type processCall struct {
	ids           []string
	opts          app.ProcessOptions
	correlationID string
}

type pendingCall struct {
	after string
	limit int
}

var _ app.Repository = (*fakeRepo)(nil)

func (r *fakeRepo) Create(_ context.Context, photos []app.NewPhoto, process bool, correlationID string) ([]app.Photo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.created = append(r.created, createCall{photos, process, correlationID})
	if r.err != nil {
		return nil, r.err
	}
	out := make([]app.Photo, len(photos))
	for i, p := range photos {
		out[i] = app.Photo{UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), URL: p.URL, Status: "pending", Renditions: p.Renditions}
	}
	return out, nil
}

func (r *fakeRepo) RequestProcessing(_ context.Context, ids []string, opts app.ProcessOptions, correlationID string) ([]app.ProcessResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.process = append(r.process, processCall{ids, opts, correlationID})
	if r.err != nil {
		return nil, r.err
	}
	if r.results != nil {
		return r.results, nil
	}
	out := make([]app.ProcessResult, len(ids))
	for i, id := range ids {
		out[i] = app.ProcessResult{UUID: id, Outcome: app.OutcomeQueued, Attempt: 1}
	}
	return out, nil
}

func (r *fakeRepo) ListPending(_ context.Context, after string, limit int) ([]app.Photo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending = append(r.pending, pendingCall{after, limit})
	if r.err != nil {
		return nil, r.err
	}
	return r.listed, nil
}

func (r *fakeRepo) Get(_ context.Context, id string) (app.Photo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, id)
	if r.err != nil {
		return app.Photo{}, r.err
	}
	return app.Photo{UUID: id}, nil
}

// fakeStore is a storage.Store whose every method fails with err.
type fakeStore struct{ err error }

var _ storage.Store = fakeStore{}

func (s fakeStore) Put(context.Context, string, io.Reader) (int64, error) { return 0, s.err }
func (s fakeStore) Open(context.Context, string) (storage.Object, error)  { return nil, s.err }
func (s fakeStore) Delete(context.Context, string) error                  { return s.err }

var testLimits = app.Limits{MaxPhotos: 3, MaxURLLength: 40, PageSize: 2, MaxPageSize: 5}

func newService(repo app.Repository, store storage.Store) *app.Service {
	return app.NewService(repo, store, rendition.DefaultPresets(), testLimits)
}

// requireInvalid fails unless err is an *app.InvalidError with code whose
// message contains every one of subs.
func requireInvalid(tb testing.TB, err error, code string, subs ...string) {
	tb.Helper()
	var inv *app.InvalidError
	if !errors.As(err, &inv) {
		tb.Fatalf("error = %v (%T), want *app.InvalidError with code %q", err, err, code)
	}
	if inv.Code != code {
		tb.Fatalf("code = %q (%s), want %q", inv.Code, inv.Message, code)
	}
	for _, s := range subs {
		if !strings.Contains(inv.Message, s) {
			tb.Errorf("message %q does not mention %q", inv.Message, s)
		}
	}
}

func TestRegisterRejects(t *testing.T) {
	t.Parallel()
	long := "http://example.com/" + strings.Repeat("a", 30)
	tests := []struct {
		name       string
		urls       []string
		renditions []string
		code       string
		subs       []string
	}{
		{"nil list", nil, nil, "empty_list", nil},
		{"empty list", []string{}, nil, "empty_list", nil},
		{"over the limit", []string{"http://a/1", "http://a/2", "http://a/3", "http://a/4"}, nil, "too_many_photos", []string{"4", "3"}},
		{"unknown rendition", []string{"http://a/1"}, []string{"thumb", "huge"}, "unknown_rendition", []string{"huge"}},
		{"empty url", []string{"http://a/1", ""}, nil, "invalid_url", []string{"urls[1]"}},
		{"no scheme", []string{"example.com/a.jpg"}, nil, "invalid_url", []string{"urls[0]", "example.com/a.jpg"}},
		{"ftp", []string{"ftp://example.com/a.jpg"}, nil, "invalid_url", []string{"ftp://example.com/a.jpg"}},
		{"file", []string{"file:///etc/passwd"}, nil, "invalid_url", []string{"file:///etc/passwd"}},
		{"javascript", []string{"javascript:alert(1)"}, nil, "invalid_url", nil},
		{"scheme only", []string{"http://"}, nil, "invalid_url", []string{"no host"}},
		{"no host", []string{"http:///a.jpg"}, nil, "invalid_url", []string{"no host"}},
		{"port without host", []string{"http://:8080/a.jpg"}, nil, "invalid_url", []string{"no host"}},
		{"unparsable", []string{"http://a b/%zz"}, nil, "invalid_url", nil},
		{"too long", []string{long}, nil, "invalid_url", []string{"40"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := &fakeRepo{}
			_, err := newService(repo, nil).Register(context.Background(), tc.urls, tc.renditions, true, "corr")
			requireInvalid(t, err, tc.code, tc.subs...)
			if len(repo.created) != 0 {
				t.Errorf("repository called for an invalid request: %+v", repo.created)
			}
		})
	}
}

func TestRegisterPassesPhotosToRepository(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		urls       []string
		renditions []string
		process    bool
		want       []string // renditions of every photo
	}{
		{"default rendition", []string{"http://example.com/a.jpg"}, nil, false, []string{"thumb"}},
		{"empty renditions mean the default", []string{"https://example.com/a.jpg"}, []string{}, true, []string{"thumb"}},
		{"renditions deduplicated in order", []string{"http://example.com/a.jpg"}, []string{"small", "thumb", "small"}, true, []string{"small", "thumb"}},
		{"same URL twice is two photos", []string{"http://example.com/a.jpg", "http://example.com/a.jpg"}, nil, false, []string{"thumb"}},
		{"at the limit", []string{"http://a/1", "HTTP://a/2", "https://a:8443/3?x=1"}, []string{"preview"}, true, []string{"preview"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := &fakeRepo{}
			photos, err := newService(repo, nil).Register(context.Background(), tc.urls, tc.renditions, tc.process, "corr-1")
			if err != nil {
				t.Fatalf("Register: %v", err)
			}
			if len(photos) != len(tc.urls) {
				t.Fatalf("got %d photos, want %d", len(photos), len(tc.urls))
			}
			if len(repo.created) != 1 {
				t.Fatalf("repository Create called %d times, want 1", len(repo.created))
			}
			call := repo.created[0]
			if call.process != tc.process || call.correlationID != "corr-1" {
				t.Errorf("process, correlation id = %v, %q; want %v, %q", call.process, call.correlationID, tc.process, "corr-1")
			}
			for i, p := range call.photos {
				if p.URL != tc.urls[i] {
					t.Errorf("photo %d URL = %q, want %q", i, p.URL, tc.urls[i])
				}
				if !slices.Equal(p.Renditions, tc.want) {
					t.Errorf("photo %d renditions = %v, want %v", i, p.Renditions, tc.want)
				}
			}
		})
	}
}

func TestRegisterReturnsRepositoryError(t *testing.T) {
	t.Parallel()
	boom := errors.New("database down")
	_, err := newService(&fakeRepo{err: boom}, nil).Register(context.Background(), []string{"http://a/1"}, nil, false, "")
	if !errors.Is(err, boom) {
		t.Fatalf("error = %v, want %v", err, boom)
	}
	var inv *app.InvalidError
	if errors.As(err, &inv) {
		t.Fatalf("a repository failure must not look like a client error: %v", err)
	}
}

const (
	id1 = "6f1c2a4e-0b7d-4c3e-9a51-2d8e7f6a5b41"
	id2 = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
	id3 = "0c8a7e52-51d4-4b8e-8f0e-6a1f3c9d2b77"
	id4 = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
)

func TestProcessRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		ids        []string
		renditions []string
		code       string
		subs       []string
	}{
		{"nil list", nil, nil, "empty_list", nil},
		{"empty list", []string{}, nil, "empty_list", nil},
		{"over the limit", []string{id1, id2, id3, id4}, nil, "too_many_photos", []string{"4", "3"}},
		{"malformed uuid", []string{id1, "not-a-uuid"}, nil, "invalid_uuid", []string{"uuids[1]", "not-a-uuid"}},
		{"empty uuid", []string{""}, nil, "invalid_uuid", []string{"uuids[0]"}},
		{"truncated uuid", []string{id1[:35]}, nil, "invalid_uuid", nil},
		{"unknown rendition", []string{id1}, []string{"huge"}, "unknown_rendition", []string{"huge"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := &fakeRepo{}
			_, err := newService(repo, nil).Process(context.Background(), tc.ids, app.ProcessOptions{Renditions: tc.renditions}, "")
			requireInvalid(t, err, tc.code, tc.subs...)
			if len(repo.process) != 0 {
				t.Errorf("repository called for an invalid request: %+v", repo.process)
			}
		})
	}
}

func TestProcessNormalisesAndDeduplicates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ids  []string
		want []string
	}{
		{"canonical", []string{id1}, []string{id1}},
		{"upper case", []string{strings.ToUpper(id1)}, []string{id1}},
		{"duplicates count once, first order kept", []string{id2, id1, strings.ToUpper(id2)}, []string{id2, id1}},
		{"braces, urn and no dashes", []string{"{" + id1 + "}", "urn:uuid:" + id2, strings.ReplaceAll(id1, "-", "")}, []string{id1, id2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := &fakeRepo{}
			res, err := newService(repo, nil).Process(context.Background(), tc.ids, app.ProcessOptions{}, "corr-2")
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			if len(repo.process) != 1 {
				t.Fatalf("RequestProcessing called %d times, want 1", len(repo.process))
			}
			if got := repo.process[0].ids; !slices.Equal(got, tc.want) {
				t.Errorf("ids passed = %v, want %v", got, tc.want)
			}
			if repo.process[0].correlationID != "corr-2" {
				t.Errorf("correlation id = %q", repo.process[0].correlationID)
			}
			if len(res) != len(tc.want) {
				t.Errorf("got %d results, want %d", len(res), len(tc.want))
			}
		})
	}
}

func TestProcessOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   app.ProcessOptions
		want app.ProcessOptions
	}{
		{"no renditions keep the photo's", app.ProcessOptions{}, app.ProcessOptions{}},
		{"renditions deduplicated", app.ProcessOptions{Renditions: []string{"small", "small", "thumb"}}, app.ProcessOptions{Renditions: []string{"small", "thumb"}}},
		{"reprocess passed on", app.ProcessOptions{Reprocess: true}, app.ProcessOptions{Reprocess: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := &fakeRepo{}
			if _, err := newService(repo, nil).Process(context.Background(), []string{id1}, tc.in, ""); err != nil {
				t.Fatalf("Process: %v", err)
			}
			got := repo.process[0].opts
			if got.Reprocess != tc.want.Reprocess || !slices.Equal(got.Renditions, tc.want.Renditions) {
				t.Errorf("options = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPending(t *testing.T) {
	t.Parallel()
	page := func(ids ...string) []app.Photo {
		out := make([]app.Photo, len(ids))
		for i, id := range ids {
			out[i] = app.Photo{UUID: id, Status: "pending"}
		}
		return out
	}
	tests := []struct {
		name      string
		after     string
		limit     int
		listed    []app.Photo
		wantCall  pendingCall
		wantNext  string
		wantCount int
	}{
		{"default page size, short page", "", 0, page(id1), pendingCall{"", 2}, "", 1},
		{"default page size, full page", "", 0, page(id1, id2), pendingCall{"", 2}, id2, 2},
		{"explicit limit, full page", "", 1, page(id2), pendingCall{"", 1}, id2, 1},
		{"maximum limit", "", 5, page(id1), pendingCall{"", 5}, "", 1},
		{"empty", "", 3, nil, pendingCall{"", 3}, "", 0},
		{"cursor normalised", strings.ToUpper(id1), 0, nil, pendingCall{id1, 2}, "", 0},
		{"urn cursor normalised", "urn:uuid:" + id2, 0, nil, pendingCall{id2, 2}, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := &fakeRepo{listed: tc.listed}
			photos, next, err := newService(repo, nil).Pending(context.Background(), tc.after, tc.limit)
			if err != nil {
				t.Fatalf("Pending: %v", err)
			}
			if len(repo.pending) != 1 || repo.pending[0] != tc.wantCall {
				t.Errorf("ListPending calls = %+v, want [%+v]", repo.pending, tc.wantCall)
			}
			if len(photos) != tc.wantCount || next != tc.wantNext {
				t.Errorf("got %d photos, next %q; want %d, %q", len(photos), next, tc.wantCount, tc.wantNext)
			}
		})
	}
}

func TestPendingRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		after string
		limit int
		code  string
	}{
		{"negative limit", "", -1, "invalid_limit"},
		{"limit over the maximum", "", 6, "invalid_limit"},
		{"malformed cursor", "nope", 0, "invalid_cursor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			repo := &fakeRepo{}
			_, _, err := newService(repo, nil).Pending(context.Background(), tc.after, tc.limit)
			requireInvalid(t, err, tc.code)
			if len(repo.pending) != 0 {
				t.Errorf("repository called for an invalid request")
			}
		})
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	t.Run("normalised", func(t *testing.T) {
		t.Parallel()
		repo := &fakeRepo{}
		p, err := newService(repo, nil).Get(context.Background(), strings.ToUpper(id1))
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if p.UUID != id1 || !slices.Equal(repo.got, []string{id1}) {
			t.Errorf("Get asked the repository for %v and returned %q, want %q", repo.got, p.UUID, id1)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		t.Parallel()
		repo := &fakeRepo{}
		_, err := newService(repo, nil).Get(context.Background(), "../etc")
		requireInvalid(t, err, "invalid_uuid")
		if len(repo.got) != 0 {
			t.Errorf("repository called for a malformed uuid")
		}
	})
	t.Run("not found", func(t *testing.T) {
		t.Parallel()
		_, err := newService(&fakeRepo{err: fmt.Errorf("photo %s: %w", id1, app.ErrNotFound)}, nil).Get(context.Background(), id1)
		if !errors.Is(err, app.ErrNotFound) {
			t.Fatalf("error = %v, want app.ErrNotFound", err)
		}
	})
}

func TestOpenFileClassifiesErrors(t *testing.T) {
	t.Parallel()
	disk := errors.New("input/output error")
	tests := []struct {
		name     string
		err      error
		code     string // an *app.InvalidError with this code
		notFound bool
	}{
		{"invalid key", fmt.Errorf("%w: %q", storage.ErrInvalidKey, "../x"), "invalid_key", false},
		{"missing", fmt.Errorf("open a: %w", storage.ErrNotFound), "", true},
		{"other", disk, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := newService(&fakeRepo{}, fakeStore{tc.err}).OpenFile(context.Background(), "k")
			switch {
			case tc.code != "":
				requireInvalid(t, err, tc.code)
			case tc.notFound:
				if !errors.Is(err, app.ErrNotFound) {
					t.Fatalf("error = %v, want app.ErrNotFound", err)
				}
			default:
				var inv *app.InvalidError
				if !errors.Is(err, disk) || errors.As(err, &inv) || errors.Is(err, app.ErrNotFound) {
					t.Fatalf("error = %v, want the store's own error unclassified", err)
				}
			}
		})
	}
}
