#!/usr/bin/env bash
# make bench: thumbnails side by side with Pillow, vipsthumbnail and
# ImageMagick on real photos, the resizer's peak RSS, and the pipeline end
# to end (tests/e2e benchmarks); writes bench/out/report.{md,json} (git
# ignores bench/out) and prints a summary.
#
# Settings: PHOTOPIPE_CACHE (default ~/.cache/photopipe) holds the corpus;
# BENCH_OUT (default bench/out); BENCH_RUNS (timed runs per tool, default 3);
# BENCH_E2E=0 skips the end-to-end benchmarks (the report then includes the
# previous run's bench/out/e2e-bench.txt, if any).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=${PHOTOPIPE_CACHE:-$HOME/.cache/photopipe}
out=${BENCH_OUT:-$root/bench/out}
runs=${BENCH_RUNS:-3}
corpus=$cache/corpus
mkdir -p "$cache" "$out"

say() { printf '== %s\n' "$*"; }

# Temporary directories, removed when the script ends.
tmps=()
trap 'rm -rf "${tmps[@]}"' EXIT

# The tools compared, from Debian, when they are missing and apt can install
# them (as root); otherwise the report says which were not measured.
need=()
/usr/bin/python3 -c 'import PIL' 2>/dev/null || need+=(python3-pil)
command -v vipsthumbnail >/dev/null || need+=(libvips-tools)
[ -x /usr/bin/mogrify ] || need+=(imagemagick) # /usr/local/bin/convert may be a stand-in, not ImageMagick
command -v dpkg-deb >/dev/null || need+=(dpkg)
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >"$out/apt.log" 2>&1 ||
			{ apt-get update >>"$out/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >>"$out/apt.log" 2>&1; } ||
			echo "bench: could not install ${need[*]} (see $out/apt.log); those tools are left out of the comparison" >&2
	else
		echo "bench: ${need[*]} missing and apt-get is not usable here (not root?); install them to compare, e.g. sudo apt-get install ${need[*]}" >&2
	fi
fi

# The corpus: real photos from Debian's plasma-workspace-wallpapers (the
# largest JPEG of each wallpaper: 18 photos of 4 to 15 MP, 5 of them
# progressive), plus one 18 MP photo made from one of them (the peak-RSS
# case). Kept in the cache, never in git.
if [ ! -s "$corpus/.complete" ]; then
	say "fetching the corpus into $corpus"
	tmp=$(mktemp -d)
	tmps+=("$tmp")
	(cd "$tmp" && apt-get download plasma-workspace-wallpapers >/dev/null) ||
		{ echo "bench: apt-get download plasma-workspace-wallpapers failed; put JPEGs in $corpus yourself" >&2; exit 1; }
	dpkg-deb -x "$tmp"/plasma-workspace-wallpapers_*.deb "$tmp/x"
	rm -rf "$corpus" && mkdir -p "$corpus"
	for d in "$tmp"/x/usr/share/wallpapers/*/; do
		f=$(ls -S "$d"contents/images/*.jpg 2>/dev/null | head -1) || true
		[ -n "$f" ] && cp "$f" "$corpus/$(basename "$d")-$(basename "$f")"
	done
	if [ -x /usr/bin/convert ] && [ -f "$corpus/SafeLanding-5120x2880.jpg" ]; then
		/usr/bin/convert "$corpus/SafeLanding-5120x2880.jpg" -resize '5184x3456!' -quality 92 "$corpus/SafeLanding-18MP-5184x3456.jpg"
	fi
	ls "$corpus" >"$corpus/.complete"
fi

e2e_out=""
if [ "${BENCH_E2E:-1}" = 0 ] && [ -s "$out/e2e-bench.txt" ]; then
	e2e_out=$out/e2e-bench.txt # from an earlier make bench; the report says when
elif [ "${BENCH_E2E:-1}" != 0 ]; then
	say "end to end through the real services (tests/e2e)"
	bash scripts/deps.sh
	e2e_out=$out/e2e-bench.txt
	: >"$e2e_out"
	# The services' storage of every run stays until the script ends: a
	# run's cleanup deleting thousands of files would load the next run
	# (tests/e2e/harness_test.go, storageDir).
	keep=$(mktemp -d "${TMPDIR:-/tmp}/photopipe-bench-XXXXXX")
	tmps+=("$keep")
	export PHOTOPIPE_E2E_KEEP_DIR=$keep
	# 1,000 tiny and small photos, 200 large ones (a corpus photo), and
	# the ingest-api under an open-loop load, and a 10,000-image job with
	# GET /jobs/{id} and /api/status polled while it runs.
	# The tiny and small photo benchmarks run three times each (the report
	# gives the medians): on this shared machine one run can be a third
	# slower than the next. The large one runs once (it measures its
	# in-process baseline before and after the pipeline).
	for spec in '^BenchmarkEndToEnd(Tiny|Small)$:1000x:3' '^BenchmarkEndToEndLarge$:200x:1' '^BenchmarkIngestAPILoad$:1x:1' '^BenchmarkJob10k$:1x:1'; do
		IFS=: read -r pattern times count <<<"$spec"
		(cd tests/e2e && PHOTOPIPE_CORPUS=$corpus go test -run '^$' -bench "$pattern" -benchtime "$times" -count "$count" -timeout 60m .) | tee -a "$e2e_out"
	done
fi

say "thumbnails: photopipe, Pillow, vipsthumbnail, ImageMagick"
(cd services/resizer && go build -o "$out/thumbbench" ./cmd/thumbbench)
"$out/thumbbench" compare -corpus "$corpus" -out "$out" -runs "$runs" ${e2e_out:+-e2e "$e2e_out"}
