package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeAPI answers like ingest-api's admin endpoints and records requests.
func fakeAPI(t *testing.T) (*httptest.Server, *[]string) {
	t.Helper()
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" "+string(body))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/admin/dead-letters":
			_, _ = io.WriteString(w, `{"queues":[{"service":"resizer","queue":"dead-letter.resizer","count":2,"reasons":{"disk full":2}},{"service":"recorder","queue":"dead-letter.recorder","count":0,"reasons":{}}]}`)
		case r.URL.Path == "/admin/dead-letters/resizer":
			_, _ = io.WriteString(w, `{"summary":{"service":"resizer","queue":"dead-letter.resizer","count":1,"reasons":{"disk full":1}},"entries":[{"message_id":"m1","photo_id":"p1","event":"PhotoDownloaded","queue":"PhotoDownloaded_resizer","reason":"disk full","dead_lettered_at":"2026-01-01T00:00:00Z"}]}`)
		case strings.HasSuffix(r.URL.Path, "/replay"):
			_, _ = io.WriteString(w, `{"replayed":2}`)
		case strings.HasSuffix(r.URL.Path, "/discard"):
			_, _ = io.WriteString(w, `{"discarded":1}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"code":"unknown_service","error":"unknown service \"x\""}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

func TestCLI(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		wantOut []string
		wantReq string
		wantErr string
	}{
		{"list all", []string{"dlq", "list"}, []string{"resizer", "dead-letter.resizer", "2", "disk full"}, "GET /admin/dead-letters ", ""},
		{"list one", []string{"dlq", "list", "resizer"}, []string{"1 message(s)", "m1", "p1", "PhotoDownloaded_resizer"}, "GET /admin/dead-letters/resizer?limit=1000", ""},
		{"replay all", []string{"dlq", "replay", "resizer", "--all"}, []string{"replayed 2"}, `POST /admin/dead-letters/resizer/replay {"all":true}`, ""},
		{"replay ids", []string{"dlq", "replay", "resizer", "--id", "m1", "--id", "m2"}, nil, `{"message_ids":["m1","m2"]}`, ""},
		{"discard photo", []string{"dlq", "discard", "resizer", "--photo", "p1"}, []string{"discarded 1"}, `POST /admin/dead-letters/resizer/discard {"photo_ids":["p1"]}`, ""},
		{"api error", []string{"dlq", "list", "x"}, nil, "", "unknown service"},
		{"no selection", []string{"dlq", "replay", "resizer"}, nil, "", "needs a service and"},
		{"bad flag", []string{"dlq", "discard", "resizer", "--everything"}, nil, "", "unexpected"},
		{"unknown command", []string{"frobnicate"}, nil, "", "unknown command"},
		{"no command", nil, nil, "", "no command"},
		{"help", []string{"--help"}, []string{"usage:", "dlq discard"}, "", ""},
		{"submit help", []string{"submit", "--help"}, []string{"usage:", "submit [-r RENDITIONS]"}, "", ""},
		{"dlq help", []string{"dlq", "-h"}, []string{"usage:"}, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, seen := fakeAPI(t)
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"--api", srv.URL}, tc.args...), func(string) string { return "" }, nil, &out, srv.Client())
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			for _, s := range tc.wantOut {
				require.Contains(t, out.String(), s)
			}
			if tc.wantReq == "" {
				require.Empty(t, *seen, "help asks the API nothing")
				return
			}
			require.NotEmpty(t, *seen)
			require.Contains(t, strings.Join(*seen, "\n"), tc.wantReq)
		})
	}
}

func TestSelectionJSON(t *testing.T) {
	t.Parallel()
	sel, err := selection([]string{"--all", "--photo", "p"})
	require.NoError(t, err)
	b, err := json.Marshal(sel)
	require.NoError(t, err)
	require.JSONEq(t, `{"all":true,"photo_ids":["p"]}`, string(b))
}

func TestAPIFromEnvironment(t *testing.T) {
	t.Parallel()
	srv, seen := fakeAPI(t)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"dlq", "list"}, func(k string) string {
		if k == "PHOTOPIPE_API" {
			return srv.URL
		}
		return ""
	}, nil, &out, srv.Client()))
	require.Len(t, *seen, 1)
}
