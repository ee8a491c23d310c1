package main

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strings"
)

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func passMiss(t target) string {
	switch {
	case !t.Known:
		return "not measured"
	case t.Pass:
		return "PASS"
	}
	return "MISS"
}

func targetTable(b *strings.Builder, rep *Report) {
	b.WriteString("| target | goal | measured | result | margin |\n|---|---|---|---|---|\n")
	for _, t := range rep.Targets {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", t.Name, t.Goal, orDash(t.Measured), passMiss(t), orDash(t.Margin))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func f1(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

func markdown(rep *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# photopipe benchmark report\n\n%s on %s.\n\n", rep.Date, rep.Machine)
	b.WriteString("## Targets (issue #7)\n\n")
	targetTable(&b, rep)
	fmt.Fprintf(&b, "\n## Thumbnails: max 320x320, JPEG q85, one core\n\nCorpus: %d JPEGs from %s (largest %s).\n\n",
		len(rep.Images), rep.Corpus, rep.Largest)
	b.WriteString("Method: each tool runs as **one process over the whole corpus** (its start-up included, nothing subtracted), ")
	fmt.Fprintf(&b, "%d times, the tools taking turns (one run of each per round); the run with the least CPU time (user + system, all threads, from the kernel's rusage) counts, ", rep.RunsEach)
	b.WriteString("because CPU time is what a core pays and is less disturbed than wall time on a shared machine. ")
	b.WriteString("Every tool is limited to one thread. Peak RSS is the same tool on the largest photo alone (max RSS of the process). ")
	b.WriteString("PSNR compares each tool's thumbnails with a reference: the whole image decoded by Go's image/jpeg and scaled by Lanczos3 straight to the thumbnail size.\n\n")
	b.WriteString("| tool | version | CPU ms/image | wall ms/image | images/s per core | CPU vs photopipe | peak RSS (largest) | PSNR vs reference |\n|---|---|---|---|---|---|---|---|\n")
	for _, t := range rep.Tools {
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f | %.2fx | %.0f MB | %s dB |\n",
			t.Name, t.Version, t.CPUPerImage, t.WallPerImg, t.ImagesPerS, t.RatioCPU, t.PeakRSSMB, f1(t.PSNR))
	}
	b.WriteString("\nHow each tool was run:\n\n")
	for _, t := range rep.Tools {
		fmt.Fprintf(&b, "- %s: %s\n", t.Name, t.Method)
	}
	for _, m := range rep.Missing {
		fmt.Fprintf(&b, "- not installed, not measured: %s\n", m)
	}
	tt := rep.Totals
	fmt.Fprintf(&b, "\n### photopipe per stage (in process, GOMAXPROCS=1, mean of 3 runs)\n\n"+
		"Mean per image: decode %.1f ms, resize %.1f ms, encode %.1f ms, total %.1f ms (%.1f images/s per core); "+
		"before shrink-on-load (image/jpeg + Lanczos3 on the full image) %.1f ms.\n\n",
		tt["decode_ms_per_image"], tt["resize_ms_per_image"], tt["encode_ms_per_image"], tt["total_ms_per_image"], tt["images_per_s_per_core"], tt["stdlib_ms_per_image"])
	b.WriteString("| image | size | kind | KB | scale | decode ms | resize ms | encode ms | total ms | before ms | PSNR dB (rendered / encoded) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	imgs := append([]stageCost(nil), rep.Images...)
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].Width*imgs[i].Height > imgs[j].Width*imgs[j].Height })
	for _, c := range imgs {
		kind := "baseline"
		if c.Progressive {
			kind = "progressive"
		}
		fmt.Fprintf(&b, "| %s | %dx%d | %s | %d | 1/%d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f / %.1f |\n",
			c.File, c.Width, c.Height, kind, c.Bytes/1024, c.Scale, c.DecodeMS, c.ResizeMS, c.EncodeMS, c.TotalMS, c.StdlibMS, c.PSNR, c.PSNREncoded)
	}
	if len(rep.E2E) > 0 {
		b.WriteString("\n## Through the real services (tests/e2e benchmarks, RabbitMQ and Postgres on this machine)\n\n")
		fmt.Fprintf(&b, "From %s. EndToEnd*: photos sent at once (1,000 tiny 64x48, 1,000 small 640x480, 200 large: the corpus's largest photo), "+
			"latency from request to completed, so it includes the queue of the burst; Large also renders the same photo in process "+
			"(thumbbench, one goroutine per core) and reports the pipeline's overhead over that. IngestAPILoad: open-loop load at a fixed "+
			"rate (latency from each request's scheduled time), GET /photos/{id} then POST /photos/process, each measured after a second at the same rate, "+
			"ingest-api alone with Postgres and RabbitMQ, the load generator on the same 2 cores. cpu-ms/...-logs is the log collectors' "+
			"(each service's output goes through a pipe to a process of its own, as with a container runtime). A benchmark with a runs figure ran that many times; each of its figures is the median.\n\n| benchmark | metrics |\n|---|---|\n", rep.E2EFrom)
		names := make([]string, 0, len(rep.E2E))
		for n := range rep.E2E {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			units := make([]string, 0, len(rep.E2E[n]))
			for u := range rep.E2E[n] {
				if u != "ns/op" {
					units = append(units, u)
				}
			}
			sort.Strings(units)
			var parts []string
			for _, u := range units {
				parts = append(parts, fmt.Sprintf("%.1f %s", rep.E2E[n][u], u))
			}
			fmt.Fprintf(&b, "| %s | %s |\n", n, strings.Join(parts, ", "))
		}
	}
	return b.String()
}

func summary(rep *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n== thumbnails, %d JPEGs, one core (CPU ms per image; ratio to photopipe)\n", len(rep.Images))
	for _, t := range rep.Tools {
		fmt.Fprintf(&b, "  %-14s %7.1f ms  %6.1f img/s  %5.2fx  RSS(largest) %4.0f MB  PSNR %s dB\n",
			t.Name, t.CPUPerImage, t.ImagesPerS, t.RatioCPU, t.PeakRSSMB, f1(t.PSNR))
	}
	tt := rep.Totals
	fmt.Fprintf(&b, "  photopipe stages: decode %.1f, resize %.1f, encode %.1f ms/image (before shrink-on-load: %.1f)\n",
		tt["decode_ms_per_image"], tt["resize_ms_per_image"], tt["encode_ms_per_image"], tt["stdlib_ms_per_image"])
	b.WriteString("== targets\n")
	for _, t := range rep.Targets {
		fmt.Fprintf(&b, "  %-12s %s: %s (goal %s; %s)\n", passMiss(t), t.Name, orDash(t.Measured), t.Goal, orDash(t.Margin))
	}
	return b.String()
}
