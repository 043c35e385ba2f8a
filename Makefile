# sealnet — see README.md. Every target runs from a fresh clone.

GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
FUZZTIME ?= 1s
FUZZLONG ?= 60s
BENCHTIME ?= 2s

.PHONY: all build test vet fmtcheck unit fuzz-smoke fuzz bench testdata clean demo tor-demo sim measure hostile

all: build

## build: the sealnet binary in bin/
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/sealnet ./cmd/sealnet

## demo: a testnet, alice@a sends bob@b one sealed message, Bob reads it (about 30 s)
demo: build
	scripts/demo.sh

## tor-demo: the same over a private Tor network on loopback: onion route, mix route entering over Tor, fetch over Tor (needs tor; about 1 min)
tor-demo: build
	scripts/tor-demo.sh

## sim: the small traffic-analysis sweep (sim/scenarios/small.toml) into sim-out/, under a minute
sim: build
	bin/sealnet sim sweep --config sim/scenarios/small.toml --out sim-out

## measure: run a workload on two captured testnets (mixed, and a control with mixing and cover off), score the simulator's attacks on the captures, write measure-out/report.md (needs tcpdump and root; about 4 min)
measure: build
	scripts/measure.sh

## test: what CI runs: formatting, vet, race-enabled tests, every fuzz target briefly
test: fmtcheck vet unit fuzz-smoke

fmtcheck:
	@out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# The simulator's tests are single-threaded arithmetic but for its sweep
# workers: they run with the race detector only where goroutines meet
# (the sweeps), and otherwise without it, which is 5-10x faster. The
# tests in NORACE run without it only: the allocation tests hold the
# figures in docs/benchmarks.md.
unit:
	$(GO) test -race -count=1 -skip '$(NORACE)' $$($(GO) list ./... | grep -v '/sim$$')
	$(GO) test -count=1 ./sim/
	$(GO) test -race -count=1 -run 'Sweep|Deterministic' ./sim/
	$(GO) test -count=1 -run '$(NORACE)' ./mixnet/... ./internal/crypto/hmac256/ ./internal/loopwatch/

# Tests run without the race detector only: allocation counts (which it
# changes), and the packet layer's single-goroutine statistical tests
# (which it slows tenfold).
NORACE := Alloc|TestPositionHidden|TestOutputUniform

fuzz-smoke:
	scripts/fuzz.sh $(FUZZTIME)

## fuzz: every fuzz target for longer (FUZZLONG=10m make fuzz)
fuzz:
	scripts/fuzz.sh $(FUZZLONG)

## hostile: every listener of real daemon processes under hostile input, at full size: floods near max_conns (make test runs a smaller version; about 20 s)
hostile:
	$(GO) test -count=1 -run TestHostileInput -v ./cmd/sealnet/ -args -hostile.full

## bench: packet and relay benchmarks, each with its same-run baseline (docs/benchmarks.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./mixnet/ ./mixnet/mix/ ./internal/crypto/lioness/ ./internal/crypto/hmac256/
	$(GO) test -run '^$$' -bench RelayThroughput -benchtime 30000x ./relay/
	$(GO) test -run '^$$' -bench RelayMemory -benchtime 1x ./relay/
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./sender/seal/
	$(GO) test -run '^$$' -bench ClientIdle -benchtime 1x ./sender/

## testdata: regenerate test vectors and fuzz seed corpora (deterministic)
testdata:
	$(GO) run ./internal/cmd/testdatagen -root .

clean:
	rm -rf bin sim-out
