// Package rendition defines the named renditions (presets) that clients
// ask for and the resizer renders: fit inside a box or crop to it, never
// upscaled, encoded as JPEG or PNG. ingest-api and the resizer must agree
// on them, so both load them from the same RENDITIONS setting.
package rendition

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/photopipe/photopipe/shared/envconfig"
)

// Mode is how an image is brought to a preset's box.
type Mode string

// Modes.
const (
	// Fit scales the image to fit inside the box, keeping its aspect ratio.
	Fit Mode = "fit"
	// Crop scales the image to cover the box and cuts the centre out.
	Crop Mode = "crop"
)

// Preset is a named rendition.
type Preset struct {
	Name    string
	Width   int
	Height  int
	Mode    Mode
	Format  string // "jpeg" or "png"
	Quality int    // JPEG quality, 1-100
}

// DefaultPresets are the renditions photopipe offers out of the box.
func DefaultPresets() Presets {
	return Presets{
		"thumb":     {Name: "thumb", Width: 320, Height: 320, Mode: Fit, Format: "jpeg", Quality: 85},
		"preview":   {Name: "preview", Width: 3500, Height: 3500, Mode: Fit, Format: "png"},
		"resized":   {Name: "resized", Width: 800, Height: 600, Mode: Fit, Format: "jpeg", Quality: 85},
		"small":     {Name: "small", Width: 128, Height: 128, Mode: Fit, Format: "jpeg", Quality: 85},
		"square100": {Name: "square100", Width: 100, Height: 100, Mode: Crop, Format: "jpeg", Quality: 85},
	}
}

// ParsePreset reads "name=mode:WxH:format[:quality]", e.g.
// "banner=crop:1200x300:jpeg:80", the form of the RENDITIONS setting.
func ParsePreset(s string) (Preset, error) {
	name, spec, ok := strings.Cut(strings.TrimSpace(s), "=")
	parts := strings.Split(spec, ":")
	if !ok || name == "" || len(parts) < 3 || len(parts) > 4 {
		return Preset{}, fmt.Errorf("rendition %q: want name=fit|crop:WIDTHxHEIGHT:jpeg|png[:quality]", s)
	}
	p := Preset{Name: name, Mode: Mode(parts[0]), Format: parts[2], Quality: 85}
	w, h, ok := strings.Cut(parts[1], "x")
	var err1, err2 error
	p.Width, err1 = strconv.Atoi(w)
	p.Height, err2 = strconv.Atoi(h)
	if !ok || err1 != nil || err2 != nil {
		return Preset{}, fmt.Errorf("rendition %q: size %q is not WIDTHxHEIGHT", s, parts[1])
	}
	if len(parts) == 4 {
		q, err := strconv.Atoi(parts[3])
		if err != nil {
			return Preset{}, fmt.Errorf("rendition %q: quality %q is not a number", s, parts[3])
		}
		p.Quality = q
	}
	return p, p.Validate()
}

// Validate reports what makes the preset unusable. The name becomes part
// of a storage key, so it is limited to 1-64 letters, digits, '-' and '_'.
func (p Preset) Validate() error {
	switch {
	case !validName(p.Name):
		return fmt.Errorf("rendition %q: name must be 1-64 letters, digits, '-' or '_'", p.Name)
	case p.Mode != Fit && p.Mode != Crop:
		return fmt.Errorf("rendition %s: mode %q is neither fit nor crop", p.Name, p.Mode)
	case p.Width < 1 || p.Height < 1 || p.Width > 10000 || p.Height > 10000:
		return fmt.Errorf("rendition %s: size %dx%d is outside 1..10000", p.Name, p.Width, p.Height)
	case p.Format != "jpeg" && p.Format != "png":
		return fmt.Errorf("rendition %s: format %q is neither jpeg nor png", p.Name, p.Format)
	case p.Format == "jpeg" && (p.Quality < 1 || p.Quality > 100):
		return fmt.Errorf("rendition %s: quality %d is outside 1..100", p.Name, p.Quality)
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Extension is the file extension of the preset's output.
func (p Preset) Extension() string {
	if p.Format == "png" {
		return "png"
	}
	return "jpg"
}

// FitSize returns the size of a w x h image scaled to fit in the box
// maxW x maxH with its aspect ratio kept, never larger than it was.
func FitSize(w, h, maxW, maxH int) (int, int) {
	if w <= maxW && h <= maxH {
		return w, h
	}
	// Compare w/maxW with h/maxH without floating point.
	if w*maxH >= h*maxW {
		nh := (h*maxW + w/2) / w
		return maxW, max(nh, 1)
	}
	nw := (w*maxH + h/2) / h
	return max(nw, 1), maxH
}

// Presets are the renditions a deployment offers, by name.
type Presets map[string]Preset

// Default is the rendition made when a request names none.
const Default = "thumb"

// LoadPresets returns the default presets plus those of RENDITIONS
// ("name=mode:WxH:format[:quality];..."), which may also override them.
func LoadPresets(r *envconfig.Reader) Presets {
	ps := DefaultPresets()
	for _, spec := range strings.Split(r.String("RENDITIONS", ""), ";") {
		if strings.TrimSpace(spec) == "" {
			continue
		}
		p, err := ParsePreset(spec)
		if err != nil {
			r.Fail("RENDITIONS", "%v", err)
			continue
		}
		ps[p.Name] = p
	}
	return ps
}

// Names returns the preset names, sorted.
func (ps Presets) Names() []string {
	out := make([]string, 0, len(ps))
	for n := range ps {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ErrUnknown is returned by Check for a name no preset has.
var ErrUnknown = errors.New("unknown rendition")

// Check returns the requested names with duplicates removed, [Default]
// for none, or an error naming the first unknown one.
func (ps Presets) Check(names []string) ([]string, error) {
	if len(names) == 0 {
		return []string{Default}, nil
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if _, ok := ps[n]; !ok {
			return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknown, n, strings.Join(ps.Names(), ", "))
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}
