# dashcam — see README.md. Every target works on a clean clone.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X main.version=$(VERSION)
FUZZTIME ?= 10s

.PHONY: all build test test-short fuzz bench fmt-check vet clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/dashcam ./cmd/dashcam

# The full suite: unit tests, real-kernel tests (need root; under CI=true
# they fail instead of skipping), CLI scripts, and a short fuzz run.
test: fmt-check vet
	$(GO) test -count=1 -race ./...
	$(GO) test -run='^$$' -fuzz=FuzzRead -fuzztime=$(FUZZTIME) ./bundle
	$(GO) test -run='^$$' -fuzz=FuzzCmdline -fuzztime=$(FUZZTIME) ./capture/redact

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
