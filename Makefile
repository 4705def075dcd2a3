# llmgw. `make run` builds, migrates the default database and serves;
# `make test` is what CI runs.
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
DB      ?= ./llmgw.db
LISTEN  ?= 127.0.0.1:8080
GOFLAGS_BUILD := -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

.PHONY: build run test vet lint bench fuzz load load-affinity load-streams chaos fmt-check clean

build:
	CGO_ENABLED=0 go build $(GOFLAGS_BUILD) -o bin/llmgw ./cmd/llmgw

run: build
	./bin/llmgw --db $(DB) db migrate
	./bin/llmgw --db $(DB) serve --listen $(LISTEN)

# -race needs cgo (and so gcc); the llmgw binary itself is built without cgo.
test: fmt-check vet
	CGO_ENABLED=1 go test -race -count=1 -timeout 25m ./...

vet:
	go vet ./...

# staticcheck and golangci-lint, pinned, fetched through the Go module proxy
# on first use. golangci-lint runs only errcheck, bodyclose, sqlclosecheck and
# errorlint (.golangci.yml), on test files and the load test too.
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOLANGCI_LINT := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
lint: fmt-check vet
	go run $(STATICCHECK) ./...
	go run $(GOLANGCI_LINT) run ./...

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

bench:
	go test -run '^$$' -bench . -benchmem -count 5 ./proxy/ ./store/

# A load run on 127.0.0.1, every figure a ratio measured in the same run:
# for each mode (dialect x JSON or stream), the fake upstream directly, a bare
# httputil.ReverseProxy (cli/testdata/bareproxy) and llmgw serve, the two
# proxies as their own processes (CPU time and memory from /proc). It prints
# a Markdown table and the targets as PASS or MISS; errors or lost usage rows
# fail it. LOAD_MODES: all, or a list of modes (chat-stream), dialects
# (gemini), json or stream.
LOAD_CLIENTS ?= 50
LOAD_SECONDS ?= 3
LOAD_MODES   ?= all
load:
	LLMGW_LOAD_CLIENTS=$(LOAD_CLIENTS) LLMGW_LOAD_SECONDS=$(LOAD_SECONDS) LLMGW_LOAD_MODES=$(LOAD_MODES) go test -tags load -run '^TestLoad$$' -count=1 -v -timeout 20m ./cli/

# Session affinity measured: AFFINITY_SESSIONS conversations of AFFINITY_TURNS
# turns through llmgw serve over three accounts of a fake upstream with a
# per-account prompt cache, affinity on and then off; prints both cache hit
# ratios and the conversations per account.
AFFINITY_SESSIONS ?= 30
AFFINITY_TURNS    ?= 12
load-affinity:
	LLMGW_AFFINITY_SESSIONS=$(AFFINITY_SESSIONS) LLMGW_AFFINITY_TURNS=$(AFFINITY_TURNS) go test -tags load -run '^TestLoadAffinity$$' -count=1 -v -timeout 20m ./cli/

# LOAD_STREAMS (8000) streams open at once against a slow upstream, through the
# bare proxy and then llmgw serve: all must end whole, every usage row must be
# there; peak resident memory printed with the target.
LOAD_STREAMS ?= 8000
load-streams:
	LLMGW_LOAD_STREAMS=$(LOAD_STREAMS) go test -tags load -run '^TestLoadStreams$$' -count=1 -v -timeout 20m ./cli/

# The fault-injection storm on 127.0.0.1: llmgw serve behind a fault proxy
# (529, 429, resets, hang-ups, stalls) with 3 accounts and many clients; it
# prints its figures and checks rows, failover, slots, goroutines and fds.
# A 3-second version of it runs in `make test`.
CHAOS_SECONDS ?= 45
CHAOS_CLIENTS ?= 200
chaos:
	LLMGW_CHAOS_SECONDS=$(CHAOS_SECONDS) LLMGW_CHAOS_CLIENTS=$(CHAOS_CLIENTS) go test -run '^TestChaos' -count=1 -v -timeout 10m ./cli/

# Each request decoder for 30 s: no panic, always an error in the client's dialect.
FUZZTIME ?= 30s
fuzz:
	go test -run '^$$' -fuzz FuzzDecodeChat -fuzztime $(FUZZTIME) ./proxy/openai/
	go test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./proxy/responses/
	go test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./proxy/gemini/

clean:
	rm -rf bin
