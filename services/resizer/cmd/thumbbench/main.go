// Command thumbbench measures the resizer's thumbnailing on a corpus of
// real JPEGs side by side with Pillow, vipsthumbnail and ImageMagick, and
// writes the report of make bench (scripts/bench.sh runs it).
//
//	thumbbench compare -corpus DIR -out DIR [-runs 3] [-e2e FILE]
//	thumbbench render -out DIR FILE...   (one process over files, as the tools run)
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/nfnt/resize"

	"github.com/photopipe/photopipe/services/resizer/internal/imaging"
	"github.com/photopipe/photopipe/shared/imagetype"
	"github.com/photopipe/photopipe/shared/rendition"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "thumbbench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: thumbbench compare|render ...")
	}
	switch args[0] {
	case "render":
		fs := flag.NewFlagSet("render", flag.ContinueOnError)
		out := fs.String("out", "", "directory for the thumbnails")
		repeat := fs.Int("repeat", 1, "render every file this many times")
		parallel := fs.Int("parallel", 1, "goroutines rendering at once")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *repeat <= 1 && *parallel <= 1 {
			return renderFiles(*out, fs.Args())
		}
		t0 := time.Now()
		if err := renderRepeated(*out, fs.Args(), *repeat, *parallel); err != nil {
			return err
		}
		n := *repeat * len(fs.Args())
		_, err := fmt.Fprintf(stdout, "rendered %d images in %s: %.2f images/s\n", n, time.Since(t0), float64(n)/time.Since(t0).Seconds())
		return err
	case "compare":
		fs := flag.NewFlagSet("compare", flag.ContinueOnError)
		corpus := fs.String("corpus", "", "directory of JPEGs")
		out := fs.String("out", "bench/out", "report directory")
		runs := fs.Int("runs", 3, "timed runs per tool (the fastest counts)")
		e2e := fs.String("e2e", "", "go test -bench output of tests/e2e to include")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return compare(*corpus, *out, *runs, *e2e, stdout)
	}
	return fmt.Errorf("unknown mode %q", args[0])
}

// thumb is the preset every tool makes: fit in 320x320, JPEG quality 85.
var thumb = rendition.DefaultPresets()["thumb"]

var limits = imaging.Limits{MaxPixels: 100_000_000}

// renderOne renders the thumbnail of one file as the resizer does: from
// an open file, EXIF orientation applied.
func renderOne(path string) (*imaging.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	o, err := imagetype.ReadOrientation(f)
	if err != nil {
		return nil, err
	}
	return imaging.RenderImage(f, []rendition.Preset{thumb}, o, limits)
}

// renderFiles is the process the tools are compared with.
func renderFiles(out string, files []string) error {
	for _, p := range files {
		res, err := renderOne(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if out != "" {
			name := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p)) + ".jpg"
			if err := os.WriteFile(filepath.Join(out, name), res.Renditions[0].Data, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// renderRepeated renders every file repeat times with parallel
// goroutines, as a resizer with that many rendering workers
// (RENDER_WORKERS) would: the in-process throughput the pipeline's is
// compared with.
func renderRepeated(out string, files []string, repeat, parallel int) error {
	jobs := make(chan int)
	errs := make(chan error, parallel)
	for range max(parallel, 1) {
		go func() {
			for i := range jobs {
				p := files[i%len(files)]
				res, err := renderOne(p)
				if err == nil && out != "" {
					err = os.WriteFile(filepath.Join(out, fmt.Sprintf("%d.jpg", i)), res.Renditions[0].Data, 0o644)
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", p, err)
					for range jobs {
					}
					return
				}
			}
			errs <- nil
		}()
	}
	for i := range repeat * len(files) {
		jobs <- i
	}
	close(jobs)
	var first error
	for range max(parallel, 1) {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// stageCost is photopipe's in-process cost for one image, GOMAXPROCS=1.
type stageCost struct {
	File               string  `json:"file"`
	Width              int     `json:"width"`
	Height             int     `json:"height"`
	Progressive        bool    `json:"progressive"`
	Bytes              int     `json:"bytes"`
	Scale              int     `json:"scale"`
	DecodeMS           float64 `json:"decode_ms"`
	ResizeMS           float64 `json:"resize_ms"`
	EncodeMS           float64 `json:"encode_ms"`
	TotalMS            float64 `json:"total_ms"`
	StdlibMS           float64 `json:"stdlib_ms"` // image/jpeg full decode + nfnt Lanczos3, before shrink-on-load
	PSNR               float64 `json:"psnr_db"`   // rendered (before encoding) vs the reference
	PSNREncoded        float64 `json:"psnr_encoded_db"`
	ReferenceW, RefH   int     `json:"-"`
	reference          image.Image
	photopipeThumbnail []byte
}

// measureStages times decode, resize and encode of every file in this
// process on one core: the mean of reps runs after a warm-up.
func measureStages(files []string, reps int) ([]stageCost, error) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	var out []stageCost
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		c := stageCost{File: filepath.Base(p), Bytes: len(data), Progressive: isProgressive(data)}
		var t imaging.Timings
		var res *imaging.Result
		for i := range reps + 1 {
			r := bytes.NewReader(data)
			o, err := imagetype.ReadOrientation(r)
			if err != nil {
				return nil, err
			}
			res, err = imaging.RenderImage(r, []rendition.Preset{thumb}, o, limits)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			if i > 0 {
				t.Decode += res.Timings.Decode
				t.Resize += res.Timings.Resize
				t.Encode += res.Timings.Encode
			}
		}
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(reps) }
		c.Width, c.Height, c.Scale = res.Width, res.Height, res.Scale
		c.DecodeMS, c.ResizeMS, c.EncodeMS = ms(t.Decode), ms(t.Resize), ms(t.Encode)
		c.TotalMS = c.DecodeMS + c.ResizeMS + c.EncodeMS
		c.photopipeThumbnail = res.Renditions[0].Data

		// The reference: the whole image decoded by image/jpeg, Lanczos3
		// straight to the thumbnail size (what the resizer did before).
		t0 := time.Now()
		full, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: image/jpeg: %w", p, err)
		}
		fb := full.Bounds()
		nw, nh := rendition.FitSize(fb.Dx(), fb.Dy(), thumb.Width, thumb.Height)
		ref := resize.Resize(uint(nw), uint(nh), full, resize.Lanczos3)
		var enc bytes.Buffer
		_ = jpeg.Encode(&enc, ref, &jpeg.Options{Quality: thumb.Quality})
		c.StdlibMS = float64(time.Since(t0)) / float64(time.Millisecond)
		full = nil
		c.reference = ref
		c.PSNR = psnr(res.Renditions[0].Image, ref)
		if dec, err := jpeg.Decode(bytes.NewReader(c.photopipeThumbnail)); err == nil {
			c.PSNREncoded = psnr(dec, ref)
		}
		out = append(out, c)
		runtime.GC()
	}
	return out, nil
}

// isProgressive reports whether a JPEG's frame is progressive (SOF2).
func isProgressive(b []byte) bool {
	for i := 2; i+3 < len(b); {
		if b[i] != 0xFF {
			return false
		}
		m := b[i+1]
		if m == 0xC2 {
			return true
		}
		if m == 0xC0 || m == 0xC1 || m == 0xDA {
			return false
		}
		i += 2 + int(b[i+2])<<8 + int(b[i+3])
	}
	return false
}

// procResult is one timed process: wall time, CPU time of all its
// threads (user + system) and peak RSS.
type procResult struct {
	Wall  time.Duration
	CPU   time.Duration
	MaxKB int64
}

func timeProcess(name string, args []string, env []string) (procResult, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return procResult{}, fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	ps := cmd.ProcessState
	r := procResult{Wall: time.Since(t0), CPU: ps.UserTime() + ps.SystemTime()}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		r.MaxKB = ru.Maxrss
	}
	return r, nil
}

// tool is a thumbnailer run as one process over the whole corpus.
type tool struct {
	Name    string
	Version string
	Method  string
	cmd     func(out string, files []string) (string, []string, []string)
}

func tools(self string) ([]tool, []string) {
	var ts []tool
	var missing []string
	ts = append(ts, tool{
		Name: "photopipe", Version: runtime.Version(),
		Method: "thumbbench render (imaging.RenderImage, as the resizer), GOMAXPROCS=1",
		cmd: func(out string, files []string) (string, []string, []string) {
			return self, append([]string{"render", "-out", out}, files...), []string{"GOMAXPROCS=1"}
		},
	})
	if v, err := exec.Command("/usr/bin/python3", "-c", "import PIL; print(PIL.__version__)").Output(); err == nil {
		ts = append(ts, tool{
			Name: "Pillow", Version: strings.TrimSpace(string(v)),
			Method: "Image.open, Image.thumbnail((320, 320)) (draft mode: libjpeg shrink-on-load, then reduce + bicubic), save quality=85; one /usr/bin/python3 process",
			cmd: func(out string, files []string) (string, []string, []string) {
				script := `import sys, os
from PIL import Image
out = sys.argv[1]
for f in sys.argv[2:]:
    im = Image.open(f)
    im.thumbnail((320, 320))
    im.save(os.path.join(out, os.path.splitext(os.path.basename(f))[0] + ".jpg"), quality=85)
`
				return "/usr/bin/python3", append([]string{"-c", script, out}, files...), []string{"OMP_NUM_THREADS=1"}
			},
		})
	} else {
		missing = append(missing, "Pillow (/usr/bin/python3 with python3-pil)")
	}
	if v, err := exec.Command("vipsthumbnail", "--version").Output(); err == nil {
		ts = append(ts, tool{
			Name: "vipsthumbnail", Version: strings.TrimSpace(string(v)),
			Method: "vipsthumbnail -s 320x320 -o DIR/%s.jpg[Q=85] over all files in one process (shrink-on-load), VIPS_CONCURRENCY=1",
			cmd: func(out string, files []string) (string, []string, []string) {
				return "vipsthumbnail", append([]string{"-s", "320x320", "-o", out + "/%s.jpg[Q=85]"}, files...), []string{"VIPS_CONCURRENCY=1"}
			},
		})
	} else {
		missing = append(missing, "vipsthumbnail (libvips-tools)")
	}
	if v, err := exec.Command("/usr/bin/mogrify", "-version").Output(); err == nil {
		ver, _, _ := strings.Cut(string(v), "\n")
		f := strings.Fields(strings.TrimPrefix(ver, "Version: "))
		ts = append(ts, tool{
			Name: "ImageMagick", Version: strings.Join(f[:min(3, len(f))], " "),
			Method: "mogrify -path DIR -format jpg -define jpeg:size=640x640 (libjpeg shrink-on-load) -thumbnail 320x320 -quality 85, one process, MAGICK_THREAD_LIMIT=1",
			cmd: func(out string, files []string) (string, []string, []string) {
				return "/usr/bin/mogrify", append([]string{"-path", out, "-format", "jpg", "-define", "jpeg:size=640x640", "-thumbnail", "320x320", "-quality", "85"}, files...),
					[]string{"MAGICK_THREAD_LIMIT=1", "OMP_NUM_THREADS=1"}
			},
		})
	} else {
		missing = append(missing, "ImageMagick (/usr/bin/mogrify, imagemagick)")
	}
	return ts, missing
}

// toolResult is a tool's cost over the corpus and its peak RSS on the
// largest photo.
type toolResult struct {
	Name        string  `json:"name"`
	Version     string  `json:"version"`
	Method      string  `json:"method"`
	CPUPerImage float64 `json:"cpu_ms_per_image"`
	WallPerImg  float64 `json:"wall_ms_per_image"`
	ImagesPerS  float64 `json:"images_per_s_per_core"`
	RatioCPU    float64 `json:"cpu_ratio_to_photopipe"`
	PeakRSSMB   float64 `json:"peak_rss_mb_largest"`
	PSNR        float64 `json:"psnr_db_vs_reference"` // mean, its encoded thumbnails
}

func listJPEGs(dir string) ([]string, error) {
	var files []string
	for _, pat := range []string{"*.jpg", "*.jpeg", "*.JPG"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("no JPEGs in %s", dir)
	}
	return files, nil
}
