# keepwatch build, test, lint, fuzz and bench entry points. `make test` is what
# CI runs (.ci/run); it installs what the test tiers need on a fresh machine.

GO        ?= go
BIN       := bin/keepwatch
PKGS      := ./...
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
FUZZTIME  ?= 60s
SOAK      ?= 10m
STATICCHECK_VERSION ?= v0.6.1
export PATH := $(PATH):$(shell $(GO) env GOPATH)/bin

.PHONY: all build deps test unit lint fuzz fuzz-short bench soak dashboards mixin vectors clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/keepwatch

# deps installs the Debian packages and Go tools the test tiers need (root, apt-get).
deps:
	./deploy/test-deps.sh

# test is the whole suite: lint, every tier (unit, network, kernel, e2e), a short fuzz pass.
# The unit tier runs first under the race detector; namespace tests skip in
# that pass (KEEPWATCH_UNIT_TIER, nskittest.Require) and run in the next one
# without -race, so the detector's slowdown never touches their timing.
# The kernel tier (TestKernel*: a Debian kernel under qemu -accel tcg) takes a
# whole core while it runs, so it runs after the timing-sensitive network
# tier, one package at a time, rather than beside it.
test: deps lint
	KEEPWATCH_UNIT_TIER=1 $(GO) test -race -short -count=1 -timeout 25m -skip '^TestKernel' $(PKGS)
	$(GO) test -count=1 -timeout 25m -skip '^TestKernel' $(PKGS)
	$(GO) test -count=1 -timeout 15m -p 1 -run '^TestKernel' $(PKGS)
	$(MAKE) fuzz-short

unit:
	KEEPWATCH_UNIT_TIER=1 $(GO) test -short -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	staticcheck $(PKGS)

# fuzz runs every fuzz target for FUZZTIME each; fuzz-short is the pass make test runs.
fuzz:
	./deploy/fuzz.sh $(FUZZTIME)

fuzz-short:
	./deploy/fuzz.sh 5s

bench:
	./deploy/bench.sh

# soak runs the chaos soak (deploy/lab TestSoak, root) for SOAK (make soak
# SOAK=30m; SOAK_KEEPALIVED=1 makes node 3 the Debian keepalived). make test
# runs it for 60 s with the rest of the network tier. No test timeout: the
# run's length is the caller's choice, and the lab's daemons die with it.
soak:
	KEEPWATCH_SOAK=$(SOAK) KEEPWATCH_SOAK_KEEPALIVED=$(SOAK_KEEPALIVED) \
	  $(GO) test -count=1 -v -timeout 0 -run '^TestSoak$$' ./deploy/lab

# dashboards regenerates dashboards/*.json from the Go code (a test fails when they differ).
dashboards:
	$(GO) generate ./dashboards

# vectors captures keepalived's own packets again (root, the Debian keepalived)
# into engine/vrrp/vrrptest/testdata, the codec and announcer tests' golden input.
vectors:
	./deploy/vectors/capture.sh

# mixin renders the monitoring mixin (alerts/mixin, go-jsonnet) into the committed rule file,
# Alertmanager example and Kubernetes PrometheusRule (tests fail when they differ).
mixin: dashboards
	$(GO) test -count=1 ./alerts -run TestMixin -update
	$(GO) test -count=1 ./deploy/packaging -run TestPrometheusRule -update

clean:
	rm -rf bin
