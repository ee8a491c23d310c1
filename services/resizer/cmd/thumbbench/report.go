package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is what make bench writes to report.json (and, readable, to
// report.md).
type Report struct {
	Date     string                        `json:"date"`
	Machine  string                        `json:"machine"`
	Corpus   string                        `json:"corpus"`
	Images   []stageCost                   `json:"images"`
	Tools    []toolResult                  `json:"tools"`
	Missing  []string                      `json:"missing_tools,omitempty"`
	Largest  string                        `json:"largest"`
	E2E      map[string]map[string]float64 `json:"e2e,omitempty"`
	E2EFrom  string                        `json:"e2e_from,omitempty"`
	Targets  []target                      `json:"targets"`
	Totals   map[string]float64            `json:"photopipe_totals"`
	RunsEach int                           `json:"runs_each"`
}

type target struct {
	Name     string  `json:"name"`
	Measured string  `json:"measured"`
	Goal     string  `json:"goal"`
	Pass     bool    `json:"pass"`
	Margin   string  `json:"margin"`
	Value    float64 `json:"value"`
	Known    bool    `json:"known"`
}

func compare(corpus, outDir string, runs int, e2eFile string, stdout io.Writer) error {
	files, err := listJPEGs(corpus)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	rep := Report{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Corpus: corpus, RunsEach: runs}
	largest, err := largestFile(files)
	if err != nil {
		return err
	}
	ts, missing := tools(self)
	rep.Missing = missing
	// Peak RSS first, while this process is still small: Linux carries a
	// parent's peak RSS at fork into the child's ru_maxrss.
	rss := make([]float64, len(ts))
	for i, t := range ts {
		dir, err := os.MkdirTemp("", "thumbbench-rss-")
		if err != nil {
			return err
		}
		name, args, env := t.cmd(dir, files[largest:largest+1])
		r, err := timeProcess(name, args, env)
		os.RemoveAll(dir)
		if err != nil {
			return err
		}
		rss[i] = float64(r.MaxKB) / 1024
	}
	fmt.Fprintf(stdout, "thumbbench: %d JPEGs in %s; photopipe stages in process (GOMAXPROCS=1)...\n", len(files), corpus)
	rep.Images, err = measureStages(files, 3)
	if err != nil {
		return err
	}
	rep.Largest = fmt.Sprintf("%s (%dx%d, %.1f MP)", rep.Images[largest].File, rep.Images[largest].Width, rep.Images[largest].Height,
		float64(rep.Images[largest].Width*rep.Images[largest].Height)/1e6)
	// The tools take turns, run after run, so that a slower or faster
	// spell of a shared machine weighs on all of them alike; each keeps
	// its best (least CPU) run.
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	fmt.Fprintf(stdout, "thumbbench: %s, %d rounds over the corpus, taking turns...\n", strings.Join(names, ", "), runs)
	best := make([]procResult, len(ts))
	outs := make([]string, len(ts))
	defer func() {
		for _, d := range outs {
			os.RemoveAll(d)
		}
	}()
	for i := range runs {
		for ti, t := range ts {
			dir, err := os.MkdirTemp("", "thumbbench-"+t.Name+"-")
			if err != nil {
				return err
			}
			name, args, env := t.cmd(dir, files)
			r, err := timeProcess(name, args, env)
			if err != nil {
				os.RemoveAll(dir)
				return err
			}
			if i == 0 || r.CPU < best[ti].CPU {
				best[ti] = r
			}
			os.RemoveAll(outs[ti])
			outs[ti] = dir
		}
	}
	for ti, t := range ts {
		n := float64(len(files))
		rep.Tools = append(rep.Tools, toolResult{
			Name: t.Name, Version: t.Version, Method: t.Method,
			CPUPerImage: ms(best[ti].CPU) / n, WallPerImg: ms(best[ti].Wall) / n,
			ImagesPerS: n / best[ti].CPU.Seconds(), PeakRSSMB: rss[ti],
			PSNR: outputsPSNR(outs[ti], files, rep.Images),
		})
	}
	for i := range rep.Tools {
		rep.Tools[i].RatioCPU = rep.Tools[i].CPUPerImage / rep.Tools[0].CPUPerImage
	}
	var dec, rsz, enc, tot, std float64
	minPSNR := math.Inf(1)
	for _, c := range rep.Images {
		dec, rsz, enc, tot, std = dec+c.DecodeMS, rsz+c.ResizeMS, enc+c.EncodeMS, tot+c.TotalMS, std+c.StdlibMS
		minPSNR = min(minPSNR, c.PSNR)
	}
	n := float64(len(rep.Images))
	rep.Totals = map[string]float64{
		"decode_ms_per_image": dec / n, "resize_ms_per_image": rsz / n, "encode_ms_per_image": enc / n,
		"total_ms_per_image": tot / n, "images_per_s_per_core": 1000 * n / tot,
		"stdlib_ms_per_image": std / n, "min_psnr_db": minPSNR,
	}
	if e2eFile != "" {
		rep.E2E, err = parseBench(e2eFile)
		if err != nil {
			return err
		}
		if st, err := os.Stat(e2eFile); err == nil {
			rep.E2EFrom = fmt.Sprintf("%s, written %s", e2eFile, st.ModTime().UTC().Format(time.RFC3339))
		}
	}
	rep.Targets = targets(&rep)
	if err := writeJSON(filepath.Join(outDir, "report.json"), rep); err != nil {
		return err
	}
	md := markdown(&rep)
	if err := os.WriteFile(filepath.Join(outDir, "report.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprint(stdout, summary(&rep))
	fmt.Fprintf(stdout, "report: %s, %s\n", filepath.Join(outDir, "report.md"), filepath.Join(outDir, "report.json"))
	return nil
}

// largestFile is the index of the JPEG with the most pixels.
func largestFile(files []string) (int, error) {
	best, bestPx := 0, 0
	for i, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return 0, err
		}
		cfg, _, err := image.DecodeConfig(f)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p, err)
		}
		if px := cfg.Width * cfg.Height; px > bestPx {
			best, bestPx = i, px
		}
	}
	return best, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, model, _ = strings.Cut(l, ":")
				model = strings.TrimSpace(model)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			kb, _ := strconv.Atoi(f[1])
			mem = fmt.Sprintf(", %.0f GB RAM", float64(kb)/1024/1024)
		}
	}
	return fmt.Sprintf("%s, %d CPUs%s, %s %s/%s", model, runtime.NumCPU(), mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// outputsPSNR is the mean PSNR of a tool's thumbnails (in dir, named after
// the inputs) against each image's reference; a thumbnail whose size is
// off by more than a pixel from the reference is left out.
func outputsPSNR(dir string, files []string, costs []stageCost) float64 {
	var sum float64
	var n int
	for i, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)) + ".jpg"
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		img, err := jpeg.Decode(bytesReader(b))
		if err != nil {
			continue
		}
		if p := psnr(img, costs[i].reference); !math.IsNaN(p) {
			sum += p
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// psnr compares R, G and B of a and b over their common area; sizes
// that differ by more than one pixel give NaN.
func psnr(a, b image.Image) float64 {
	ab, bb := a.Bounds(), b.Bounds()
	if abs(ab.Dx()-bb.Dx()) > 1 || abs(ab.Dy()-bb.Dy()) > 1 {
		return math.NaN()
	}
	w, h := min(ab.Dx(), bb.Dx()), min(ab.Dy(), bb.Dy())
	var se float64
	for y := range h {
		for x := range w {
			ca := color.RGBAModel.Convert(a.At(ab.Min.X+x, ab.Min.Y+y)).(color.RGBA)
			cb := color.RGBAModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y)).(color.RGBA)
			dr, dg, db := float64(ca.R)-float64(cb.R), float64(ca.G)-float64(cb.G), float64(ca.B)-float64(cb.B)
			se += dr*dr + dg*dg + db*db
		}
	}
	mse := se / float64(3*w*h)
	if mse == 0 {
		return 99
	}
	return 10 * math.Log10(255*255/mse)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// parseBench reads go test -bench output: every benchmark's metrics by
// unit. A benchmark run several times (-count) gets the median of each
// metric and a "runs" metric: on a shared machine one run can be a third
// slower than the next.
func parseBench(path string) (map[string]map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	all := map[string]map[string][]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		fields := strings.Fields(m[2])
		if all[m[1]] == nil {
			all[m[1]] = map[string][]float64{}
		}
		for i := 0; i+1 < len(fields); i += 2 {
			if v, err := strconv.ParseFloat(fields[i], 64); err == nil {
				all[m[1]][fields[i+1]] = append(all[m[1]][fields[i+1]], v)
			}
		}
	}
	out := make(map[string]map[string]float64, len(all))
	for name, units := range all {
		out[name] = map[string]float64{}
		runs := 0
		for u, vs := range units {
			out[name][u] = median(vs)
			runs = max(runs, len(vs))
		}
		if runs > 1 {
			out[name]["runs"] = float64(runs)
		}
	}
	return out, sc.Err()
}

// median of vs (the mean of the middle two for an even count).
func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func toolByName(rep *Report, name string) (toolResult, bool) {
	for _, t := range rep.Tools {
		if t.Name == name {
			return t, true
		}
	}
	return toolResult{}, false
}

// targets are the goals, as ratios measured in this run.
func targets(rep *Report) []target {
	var ts []target
	pp := rep.Tools[0]
	for _, name := range []string{"Pillow", "vipsthumbnail"} {
		t, ok := toolByName(rep, name)
		tg := target{Name: "thumbnail CPU per image vs " + name, Goal: "<= 1.00x", Known: ok}
		if ok {
			r := pp.CPUPerImage / t.CPUPerImage
			tg.Value, tg.Pass = r, r <= 1
			tg.Measured = fmt.Sprintf("%.2fx (%.1f ms vs %.1f ms)", r, pp.CPUPerImage, t.CPUPerImage)
			tg.Margin = margin(r, 1, false)
		}
		ts = append(ts, tg)
	}
	mp := rep.Totals["min_psnr_db"]
	ts = append(ts, target{Name: "thumbnail quality: PSNR vs full decode + Lanczos3 (worst image)", Goal: ">= 30 dB", Known: true,
		Value: mp, Pass: mp >= 30, Measured: fmt.Sprintf("%.1f dB", mp), Margin: fmt.Sprintf("%+.1f dB", mp-30)})
	if v, ok := toolByName(rep, "vipsthumbnail"); ok {
		r := pp.PeakRSSMB / v.PeakRSSMB
		ts = append(ts, target{Name: "peak RSS, largest photo, vs vipsthumbnail", Goal: "<= 1.00x", Known: true, Value: r, Pass: r <= 1,
			Measured: fmt.Sprintf("%.2fx (%.0f MB vs %.0f MB)", r, pp.PeakRSSMB, v.PeakRSSMB), Margin: margin(r, 1, false)})
	}
	e2e := func(bench, unit string) (float64, bool) {
		m, ok := rep.E2E[bench]
		if !ok {
			return 0, false
		}
		v, ok := m[unit]
		return v, ok
	}
	// The "small photos" are the pipeline-overhead case,
	// BenchmarkEndToEndTiny (64x48); 640x480 (EndToEndSmall) is in the table.
	tg := target{Name: "end to end, 1,000 small photos (64x48, BenchmarkEndToEndTiny)", Goal: ">= 300 photos/s"}
	if v, ok := e2e("EndToEndTiny", "photos/s"); ok {
		tg.Known, tg.Value, tg.Pass = true, v, v >= 300
		tg.Measured, tg.Margin = fmt.Sprintf("%.0f photos/s", v), margin(v, 300, true)
		if cpu, ok := e2e("EndToEndTiny", "cpu-ms/photo-total"); ok && cpu > 0 {
			tg.Measured += cpuBound(cpu, "photo")
		}
	}
	ts = append(ts, tg)
	tg = target{Name: "pipeline overhead over in-process rendering, large photos", Goal: "<= 15%"}
	if v, ok := e2e("EndToEndLarge", "overhead-%"); ok {
		tg.Known, tg.Value, tg.Pass = true, v, v <= 15
		tg.Measured, tg.Margin = fmt.Sprintf("%.0f%%", v), fmt.Sprintf("%+.0f points", v-15)
	}
	ts = append(ts, tg)
	for _, ep := range []string{"get", "process"} {
		tg = target{Name: "ingest-api " + ep + " p99 at 2,000 req/s", Goal: "<= 10 ms"}
		if v, ok := e2e("IngestAPILoad", ep+"-p99-ms"); ok {
			tg.Known, tg.Value, tg.Pass = true, v, v <= 10
			tg.Measured, tg.Margin = fmt.Sprintf("%.1f ms", v), margin(v, 10, false)
			if cpu, ok := e2e("IngestAPILoad", "cpu-ms/"+ep+"-total"); ok && cpu > 0 {
				tg.Measured += cpuBound(cpu, "request")
			}
		}
		ts = append(ts, tg)
	}
	return ts
}

// cpuBound says what a CPU cost per unit (all processes, the broker and
// the database included) allows on this machine's cores at most.
func cpuBound(ms float64, unit string) string {
	cores := runtime.NumCPU()
	return fmt.Sprintf("; CPU %.2f ms per %s in all processes: %d cores allow at most %.0f/s", ms, unit, cores, float64(cores)*1000/ms)
}

// margin says by how much v beats or misses goal, in percent of goal.
func margin(v, goal float64, higherBetter bool) string {
	d := (v - goal) / goal * 100
	if !higherBetter {
		d = -d
	}
	if d >= 0 {
		return fmt.Sprintf("%.0f%% better than the goal", d)
	}
	if !higherBetter && v > 2*goal {
		return fmt.Sprintf("%.0fx the goal", v/goal)
	}
	return fmt.Sprintf("%.0f%% short of the goal", -d)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
