package rendition

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/photopipe/photopipe/shared/envconfig"
)

func TestFitSize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name             string
		w, h, maxW, maxH int
		wantW, wantH     int
	}{
		{"landscape", 1000, 500, 320, 320, 320, 160},
		{"portrait", 500, 1000, 320, 320, 160, 320},
		{"square", 1000, 1000, 320, 320, 320, 320},
		{"already small", 100, 50, 320, 320, 100, 50},
		{"small in preview box", 200, 100, 3500, 3500, 200, 100},
		{"exact box", 320, 320, 320, 320, 320, 320},
		{"exact non-square box", 800, 600, 800, 600, 800, 600},
		{"only width over", 400, 100, 320, 320, 320, 80},
		{"only height over", 300, 1000, 320, 320, 96, 320},
		{"wide box same ratio", 1600, 1200, 800, 600, 800, 600},
		{"portrait in wide box", 1200, 1600, 800, 600, 450, 600},
		{"landscape in wide box", 3000, 1000, 800, 600, 800, 267},
		{"rounds to nearest", 1001, 500, 320, 320, 320, 160},
		{"rounds up", 1000, 499, 3, 3, 3, 1},
		{"extreme wide never 0", 10000, 1, 320, 320, 320, 1},
		{"extreme tall never 0", 1, 10000, 320, 320, 1, 320},
		{"extreme wide tiny box", 100000, 3, 1, 1, 1, 1},
		{"one pixel", 1, 1, 1, 1, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, h := FitSize(tc.w, tc.h, tc.maxW, tc.maxH)
			require.Equal(t, [2]int{tc.wantW, tc.wantH}, [2]int{w, h})
		})
	}
}

// TestFitSizeInvariants checks, over many sizes, that FitSize stays inside
// the box, never upscales, never returns 0 and keeps the aspect ratio.
func TestFitSizeInvariants(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		w, h := 1+rng.IntN(20000), 1+rng.IntN(20000)
		maxW, maxH := 1+rng.IntN(4000), 1+rng.IntN(4000)
		gw, gh := FitSize(w, h, maxW, maxH)
		// The side derived from the other is within one pixel of exact
		// (or clamped to 1).
		dh := abs(float64(gh) - float64(gw)*float64(h)/float64(w))
		dw := abs(float64(gw) - float64(gh)*float64(w)/float64(h))
		ok := gw >= 1 && gh >= 1 &&
			gw <= min(w, maxW) && gh <= min(h, maxH) &&
			(gw == w && gh == h || gw == maxW || gh == maxH) && // scaled means a side touches the box
			(dh <= 1 || dw <= 1 || gw == 1 || gh == 1)
		if !ok {
			t.Fatalf("%dx%d in %dx%d -> %dx%d", w, h, maxW, maxH, gw, gh)
		}
	}
}

func TestParsePreset(t *testing.T) {
	t.Parallel()
	valid := []struct {
		in   string
		want Preset
	}{
		{"banner=crop:1200x300:jpeg:80", Preset{Name: "banner", Width: 1200, Height: 300, Mode: Crop, Format: "jpeg", Quality: 80}},
		{"big=fit:2000x1000:png", Preset{Name: "big", Width: 2000, Height: 1000, Mode: Fit, Format: "png", Quality: 85}},
		{"  small_2-x=fit:1x1:jpeg  ", Preset{Name: "small_2-x", Width: 1, Height: 1, Mode: Fit, Format: "jpeg", Quality: 85}},
		{"max=fit:10000x10000:jpeg:100", Preset{Name: "max", Width: 10000, Height: 10000, Mode: Fit, Format: "jpeg", Quality: 100}},
		{"q=fit:10x10:jpeg:1", Preset{Name: "q", Width: 10, Height: 10, Mode: Fit, Format: "jpeg", Quality: 1}},
	}
	for _, tc := range valid {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePreset(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}

	invalid := []struct {
		name, in string
	}{
		{"empty", ""},
		{"no equals", "banner"},
		{"no name", "=fit:10x10:jpeg"},
		{"no spec", "banner="},
		{"too few parts", "banner=fit:10x10"},
		{"too many parts", "banner=fit:10x10:jpeg:80:x"},
		{"bad mode", "banner=scale:10x10:jpeg"},
		{"size without x", "banner=fit:100:jpeg"},
		{"size not numbers", "banner=fit:axb:jpeg"},
		{"size with three parts", "banner=fit:10x10x10:jpeg"},
		{"zero width", "banner=fit:0x10:jpeg"},
		{"negative height", "banner=fit:10x-1:jpeg"},
		{"too wide", "banner=fit:10001x10:jpeg"},
		{"too tall", "banner=fit:10x10001:jpeg"},
		{"bad format", "banner=fit:10x10:webp"},
		{"quality not a number", "banner=fit:10x10:jpeg:high"},
		{"empty quality", "banner=fit:10x10:jpeg:"},
		{"quality zero", "banner=fit:10x10:jpeg:0"},
		{"quality over 100", "banner=fit:10x10:jpeg:101"},
		{"name leaves directory", "../x=fit:10x10:jpeg"},
		{"name with slash", "a/b=fit:10x10:jpeg"},
		{"name with space", "a b=fit:10x10:jpeg"},
		{"name too long", strings.Repeat("a", 65) + "=fit:10x10:jpeg"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParsePreset(tc.in)
			require.Error(t, err)
			require.Contains(t, err.Error(), "rendition")
		})
	}
}

func TestDefaultPresets(t *testing.T) {
	t.Parallel()
	ps := DefaultPresets()
	require.Equal(t, []string{"preview", "resized", "small", "square100", "thumb"}, ps.Names())
	for name, p := range ps {
		require.Equal(t, name, p.Name)
		require.NoError(t, p.Validate())
	}
	require.Contains(t, ps, Default)
	require.Equal(t, Preset{Name: "thumb", Width: 320, Height: 320, Mode: Fit, Format: "jpeg", Quality: 85}, ps["thumb"])
	require.Equal(t, Preset{Name: "square100", Width: 100, Height: 100, Mode: Crop, Format: "jpeg", Quality: 85}, ps["square100"])
	require.Equal(t, "png", ps["preview"].Extension())
	require.Equal(t, "jpg", ps["thumb"].Extension())

	// Each call returns a fresh map, so LoadPresets cannot change the defaults.
	ps["thumb"] = Preset{}
	require.Equal(t, 320, DefaultPresets()["thumb"].Width)
}

func TestLoadPresets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		renditions string
		wantErr    []string // substrings of the error; none means no error
		check      func(t *testing.T, ps Presets)
	}{
		{
			name: "unset gives defaults",
			check: func(t *testing.T, ps Presets) {
				require.Equal(t, DefaultPresets(), ps)
			},
		},
		{
			name:       "adds a preset",
			renditions: "banner=crop:1200x300:jpeg:80",
			check: func(t *testing.T, ps Presets) {
				require.Len(t, ps, len(DefaultPresets())+1)
				require.Equal(t, Preset{Name: "banner", Width: 1200, Height: 300, Mode: Crop, Format: "jpeg", Quality: 80}, ps["banner"])
			},
		},
		{
			name:       "overrides a default and skips empty specs",
			renditions: " ; thumb=fit:256x256:png ;; banner=crop:1200x300:jpeg ;",
			check: func(t *testing.T, ps Presets) {
				require.Len(t, ps, len(DefaultPresets())+1)
				require.Equal(t, Preset{Name: "thumb", Width: 256, Height: 256, Mode: Fit, Format: "png", Quality: 85}, ps["thumb"])
				require.Equal(t, DefaultPresets()["small"], ps["small"])
			},
		},
		{
			name:       "bad spec is an error naming RENDITIONS, good ones still load",
			renditions: "banner=crop:1200x300:jpeg:80;broken=fit:0x0:jpeg;nosize=fit",
			wantErr:    []string{"RENDITIONS", "broken", "nosize"},
			check: func(t *testing.T, ps Presets) {
				require.Contains(t, ps, "banner")
				require.NotContains(t, ps, "broken")
				require.NotContains(t, ps, "nosize")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"RENDITIONS": tc.renditions}
			r := envconfig.New(func(k string) string { return env[k] })
			ps := LoadPresets(r)
			err := r.Err()
			if len(tc.wantErr) == 0 {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				for _, s := range tc.wantErr {
					require.Contains(t, err.Error(), s)
				}
			}
			tc.check(t, ps)
		})
	}
}

func TestPresetsCheck(t *testing.T) {
	t.Parallel()
	ps := DefaultPresets()
	cases := []struct {
		name    string
		in      []string
		want    []string
		unknown string
	}{
		{name: "nil means default", in: nil, want: []string{Default}},
		{name: "empty means default", in: []string{}, want: []string{Default}},
		{name: "one", in: []string{"preview"}, want: []string{"preview"}},
		{name: "order kept, duplicates removed", in: []string{"small", "thumb", "small", "thumb"}, want: []string{"small", "thumb"}},
		{name: "unknown", in: []string{"thumb", "huge"}, unknown: "huge"},
		{name: "first unknown named", in: []string{"nope", "huge"}, unknown: "nope"},
		{name: "empty name", in: []string{""}, unknown: `""`},
		{name: "case matters", in: []string{"Thumb"}, unknown: "Thumb"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ps.Check(tc.in)
			if tc.unknown != "" {
				require.ErrorIs(t, err, ErrUnknown)
				require.Contains(t, err.Error(), tc.unknown)
				require.Contains(t, err.Error(), "preview, resized, small, square100, thumb")
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := Preset{Name: "p", Width: 10, Height: 10, Mode: Fit, Format: "png"}
	require.NoError(t, ok.Validate(), "png needs no quality")
	bad := ok
	bad.Name = ""
	require.Error(t, bad.Validate())
	bad = ok
	bad.Format = "jpeg"
	require.ErrorContains(t, bad.Validate(), "quality")
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
