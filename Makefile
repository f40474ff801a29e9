# dashcam — see README.md. Every target works on a clean clone.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X main.version=$(VERSION)
# Fuzz budgets are execution counts, not durations: with a duration, Go
# 1.26's fuzz coordinator can fail a run with a spurious "context deadline
# exceeded" at the end of -fuzztime on a loaded machine (golang/go#75804,
# fixed in Go 1.27). A count has no deadline to race.
FUZZ_READ    ?= 50000x
FUZZ_CMDLINE ?= 200000x

.PHONY: all build test test-short fuzz bench fmt-check vet clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/dashcam ./cmd/dashcam

# The full suite: unit tests, real-kernel tests (need root; under CI=true
# they fail instead of skipping), CLI scripts, and a short fuzz run.
test: fmt-check vet
	$(GO) test -count=1 -race ./...
	$(GO) test -run='^$$' -fuzz=FuzzRead -fuzztime=$(FUZZ_READ) ./bundle
	$(GO) test -run='^$$' -fuzz=FuzzCmdline -fuzztime=$(FUZZ_CMDLINE) ./capture/redact

test-short:
	$(GO) test -short ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzRead -fuzztime=5m ./bundle

# Benchmarks (speed and memory targets live here, never in tests).
# Results go to docs/BENCHMARKS.md with the command that produced them.
bench:
	./scripts/bench.sh
	./scripts/bench-capture.sh
	./scripts/bench-arm.sh

clean:
	rm -rf bin
