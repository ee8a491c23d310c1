package config

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/rendition"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		env     map[string]string
		wantErr []string // substrings of the error; none means no error
		check   func(t *testing.T, c Config)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c Config) {
				require.Equal(t, "./var/storage", c.StorageDir)
				require.Equal(t, 2*runtime.GOMAXPROCS(0), c.Workers, "a photo stores while another renders")
				require.Equal(t, runtime.GOMAXPROCS(0), c.RenderWorkers)
				require.Equal(t, int64(100_000_000), c.MaxPixels)
				require.Equal(t, rendition.DefaultPresets(), c.Presets)
			},
		},
		{
			name: "settings",
			env: map[string]string{
				"STORAGE_DIR": "/data", "WORKERS": "3", "MAX_PIXELS": "1000",
				"RENDITIONS": "banner=crop:1200x300:jpeg:80",
			},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "/data", c.StorageDir)
				require.Equal(t, 3, c.Workers)
				require.Equal(t, min(runtime.GOMAXPROCS(0), 3), c.RenderWorkers)
				require.Equal(t, int64(1000), c.MaxPixels)
				require.Equal(t, 1200, c.Presets["banner"].Width)
			},
		},
		{
			name: "pdf defaults",
			check: func(t *testing.T, c Config) {
				require.Equal(t, 200, c.PDFDPI)
				require.Equal(t, 200, c.PDFMaxPages)
				require.Equal(t, 2*time.Minute, c.PDFTimeout)
				require.Equal(t, int64(1<<30), c.PDFMemoryLimit)
				require.Empty(t, c.PDFCacheDir)
			},
		},
		{
			name: "pdf settings",
			env: map[string]string{
				"PDF_DPI": "300", "PDF_MAX_PAGES": "12", "PDF_TIMEOUT": "30s", "PDF_MEMORY_LIMIT": "256MiB",
				"PDF_CACHE_DIR": "/cache",
			},
			check: func(t *testing.T, c Config) {
				require.Equal(t, 300, c.PDFDPI)
				require.Equal(t, 12, c.PDFMaxPages)
				require.Equal(t, 30*time.Second, c.PDFTimeout)
				require.Equal(t, int64(256<<20), c.PDFMemoryLimit)
				require.Equal(t, "/cache", c.PDFCacheDir)
			},
		},
		{
			name: "invalid pdf settings",
			env: map[string]string{
				"PDF_DPI": "5000", "PDF_MAX_PAGES": "0", "PDF_TIMEOUT": "-1s", "PDF_MEMORY_LIMIT": "1MiB",
			},
			wantErr: []string{"PDF_DPI", "PDF_MAX_PAGES", "PDF_TIMEOUT", "PDF_MEMORY_LIMIT"},
		},
		{name: "bad rendition", env: map[string]string{"RENDITIONS": "x=fit:0x0:gif"}, wantErr: []string{"RENDITIONS"}},
		{name: "bad number", env: map[string]string{"MAX_PIXELS": "lots"}, wantErr: []string{"MAX_PIXELS"}},
		{
			name: "one worker renders alone",
			env:  map[string]string{"WORKERS": "1"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, 1, c.Workers)
				require.Equal(t, 1, c.RenderWorkers)
			},
		},
		{
			name: "render workers",
			env:  map[string]string{"WORKERS": "6", "RENDER_WORKERS": "5"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, 6, c.Workers)
				require.Equal(t, 5, c.RenderWorkers)
			},
		},
		{
			name:    "invalid values",
			env:     map[string]string{"WORKERS": "0", "MAX_PIXELS": "-1", "SHUTDOWN_TIMEOUT": "-1s"},
			wantErr: []string{"WORKERS", "MAX_PIXELS", "SHUTDOWN_TIMEOUT"},
		},
		{name: "more render workers than workers", env: map[string]string{"WORKERS": "2", "RENDER_WORKERS": "3"}, wantErr: []string{"RENDER_WORKERS"}},
		{name: "no render workers", env: map[string]string{"RENDER_WORKERS": "0"}, wantErr: []string{"RENDER_WORKERS"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(func(k string) string { return tc.env[k] })
			if len(tc.wantErr) > 0 {
				require.Error(t, err)
				for _, s := range tc.wantErr {
					require.ErrorContains(t, err, s)
				}
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}
