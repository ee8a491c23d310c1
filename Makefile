# photopipe: make run (the whole pipeline, natively), make test (every test).
SERVICES := ingest-api downloader resizer recorder
GO       ?= go
# The same static build as deployments/Dockerfile.
BUILD    := CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w"
MODULES   = $(shell $(GO) list -m -f '{{.Dir}}')

.PHONY: all build run deps db-schema test test-short fuzz bench fmt lint vet up down clean

all: build

build: $(addprefix bin/,$(SERVICES)) bin/photopipe

# The command line (photopipe submit, photopipe dlq).
bin/photopipe: FORCE
	$(BUILD) -o $@ ./services/ingest-api/cmd/photopipe

bin/%: FORCE
	$(BUILD) -o $@ ./services/$*

FORCE:

deps:
	@bash scripts/deps.sh

db-schema: deps bin/ingest-api
	bin/ingest-api migrate

run: deps build
	@bash scripts/run.sh

# Every test of every module, against the real PostgreSQL and RabbitMQ.
test: deps
	@set -e; for m in $(MODULES); do echo "== $${m#$(CURDIR)/}"; (cd $$m && $(GO) test -race -count=1 -timeout 20m ./...); done
	@$(MAKE) --no-print-directory fuzz FUZZTIME=3s

# Fuzz targets (package:function): hostile request bodies, file sniffing and
# decoding, storage keys. Each runs for FUZZTIME (scripts/fuzz.sh, which runs a
# target again once when Go's fuzztime deadline race fails it); what it finds
# that fails is kept in the package's testdata/fuzz and replayed by every go test.
FUZZ_TARGETS := ./shared/storage:FuzzCleanKey ./shared/storage:FuzzLocalKeys ./shared/imagetype:FuzzDetect \
	./services/resizer/internal/imaging:FuzzDecode ./services/resizer/internal/imaging:FuzzRenderImage \
	./services/resizer/internal/jpegscale:FuzzDecodeScaled \
	./services/ingest-api/internal/ginhttp:FuzzCreatePhotos ./services/ingest-api/internal/ginhttp:FuzzProcessPhotos
FUZZTIME ?= 5s

fuzz:
	@GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh $(FUZZ_TARGETS)

# Unit tests only (no servers needed).
test-short:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -short -count=1 ./...); done

fmt:
	gofmt -w $(MODULES)

vet:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

lint: vet
	@test -z "$$(gofmt -l $(MODULES))" || { gofmt -l $(MODULES); exit 1; }

up:
	docker compose up --build -d

down:
	docker compose down

clean:
	rm -rf bin var

# Benchmarks (scripts/bench.sh): thumbnails against Pillow, vipsthumbnail and
# ImageMagick on real photos it fetches (cached in ~/.cache/photopipe), the
# resizer's peak RSS, the pipeline end to end and the ingest-api under load;
# report in bench/out/report.md and .json. BENCH_E2E=0: thumbnails only.
bench: deps
	@bash scripts/bench.sh
