# janusbridge — build, check and test.
#
#   make build   bin/janusbridge (static, version from git describe)
#   make check   gofmt, go vet, staticcheck, go mod tidy -diff
#   make test    deps, then the whole suite with -race; as root inside the test network
#                namespace (scripts/netns.sh, see TESTING.md), so the Janus tests really run
#   make fuzz    every fuzz target in turn for FUZZTIME (2s) each (scripts/fuzz.sh)
#                (make test runs it after the suite); a crasher lands in the package's testdata/fuzz/
#   make deps    install the Debian packages the tests use (as root; only what is missing)
#   make bench   the load benchmarks (bench/, see BENCHMARKS.md); as root inside a network
#                namespace of their own (BENCH_NETNS). Knobs from the environment: JB_BENCH_STREAMS
#                (1,10,100,200,500), JB_BENCH_WINDOW (15s), JB_BENCH_WARMUP (3s), JB_BENCH_ROUNDS (2),
#                JB_BENCH_BIG_ROUNDS (1, from 200 viewers on), JB_BENCH_FORWARDS (100), JB_BENCH_SENDERS (20)
#   make demo    scripts/demo.sh
#   make install bin/janusbridge to $(BINDIR), the systemd unit to $(UNITDIR), the example
#                configuration to $(CONFDIR)/janusbridge.toml.example; PREFIX (/usr/local) and
#                DESTDIR (staging root) as usual. Then: systemctl daemon-reload (see README)

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

# Go lives in /usr/local/go on the project's machines, which is not always on PATH.
export PATH := $(PATH):/usr/local/go/bin

NETNS        ?= jbtest
PKGS         ?= ./...
GOTEST_FLAGS ?= -race -count=1 -timeout 15m
BENCH_FLAGS  ?= -run '^$$' -bench . -benchtime 1x -timeout 60m
# The benchmarks get a namespace of their own: tests running meanwhile in $(NETNS) would add
# packets to the port ranges they count and may install loss rules on the bridge's ports.
BENCH_NETNS  ?= jbbench
# Fuzzing: the time per target, and how long a new input is minimized (Go's default of 60s
# would stall a short run on its first interesting input).
FUZZTIME     ?= 2s
FUZZ_FLAGS   ?= -fuzzminimizetime 1s

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

# ($(shell) does not see the exported PATH above, hence PATH= on these.)
GOBIN_DIR := $(shell PATH='$(PATH)' go env GOBIN 2>/dev/null)
ifeq ($(GOBIN_DIR),)
GOBIN_DIR := $(shell PATH='$(PATH)' go env GOPATH 2>/dev/null)/bin
endif

# Debian packages of the real components the tests run against (TESTING.md); gcc and
# libc6-dev because -race needs cgo.
DEB_PACKAGES := janus janus-demos ffmpeg nginx-light libnginx-mod-rtmp iproute2 nftables \
	chromium systemd gcc libc6-dev

.PHONY: build check test fuzz deps bench demo clean netns install

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
CONFDIR ?= /etc/janusbridge

build:
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/janusbridge ./cmd/janusbridge

check:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt: these files need formatting:"; echo "$$out"; exit 1; fi
	go vet ./...
	@if ! command -v staticcheck >/dev/null 2>&1 && [ ! -x "$(GOBIN_DIR)/staticcheck" ]; then \
		echo "go install honnef.co/go/tools/cmd/staticcheck@latest"; \
		go install honnef.co/go/tools/cmd/staticcheck@latest; \
	fi
	PATH="$$PATH:$(GOBIN_DIR)" staticcheck ./...
	go mod tidy -diff

# As root: create the namespace (idempotent) and run the packages inside it, where Janus
# offers its 127.0.0.2 host candidate. Otherwise the Janus tests skip (fail when CI=true).
# The environment (CI included) passes through to the tests. With PKGS=./... the bridge package
# (most of the suite: Janus, ffmpeg feeds and faults for 8 minutes) runs on its own, then the
# other packages together: run beside another package's Janus and feeds on two cores, a VP8
# feed fell a second behind real time (CI), which recordings judged by the clock cannot tell
# from lost media.
test: deps
	@run=""; \
	if [ "$$(id -u)" -eq 0 ]; then \
		JB_NETNS=$(NETNS) bash scripts/netns.sh; \
		run="ip netns exec $(NETNS)"; \
		echo "inside network namespace $(NETNS):"; \
	else \
		echo "not root: no test network namespace, the Janus tests will skip"; \
	fi; \
	if [ "$(PKGS)" = "./..." ]; then \
		rc=0; \
		echo "go test $(GOTEST_FLAGS) ./bridge"; \
		$$run go test $(GOTEST_FLAGS) ./bridge || rc=1; \
		others=$$(go list ./... | grep -vx "$$(go list ./bridge)"); \
		echo "go test $(GOTEST_FLAGS) (every other package)"; \
		$$run go test $(GOTEST_FLAGS) $$others || rc=1; \
		exit $$rc; \
	fi; \
	echo "go test $(GOTEST_FLAGS) $(PKGS)"; \
	$$run go test $(GOTEST_FLAGS) $(PKGS)
	@$(MAKE) --no-print-directory fuzz

# Every `func FuzzX` of every package, one `go test -fuzz` call each (scripts/fuzz.sh). Not in
# the namespace: the targets need no Janus.
fuzz:
	FUZZTIME='$(FUZZTIME)' FUZZ_FLAGS='$(FUZZ_FLAGS)' bash scripts/fuzz.sh

netns:
	JB_NETNS=$(NETNS) bash scripts/netns.sh

# Installs only what is missing. apt-get update runs first only when the package lists are
# empty, and again if the install fails (stale lists). Waits for a dpkg lock held by another apt.
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages installed"; exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
		echo "deps: missing Debian packages:$$missing (run 'make deps' as root)"; exit 0; \
	fi; \
	echo "deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt="apt-get -o DPkg::Lock::Timeout=600 -y --no-install-recommends"; \
	if ! ls /var/lib/apt/lists/ 2>/dev/null | grep -q '_Packages'; then $$apt update; fi; \
	$$apt install $$missing || { $$apt update && $$apt install $$missing; }

bench:
	@if [ ! -d bench ]; then echo "no benchmarks yet"; exit 0; fi; \
	$(MAKE) --no-print-directory deps; \
	if [ "$$(id -u)" -eq 0 ]; then \
		JB_NETNS=$(BENCH_NETNS) bash scripts/netns.sh; \
		echo "go test $(BENCH_FLAGS) ./bench/...  (inside network namespace $(BENCH_NETNS))"; \
		ip netns exec $(BENCH_NETNS) go test $(BENCH_FLAGS) ./bench/...; \
	else \
		go test $(BENCH_FLAGS) ./bench/...; \
	fi

demo: deps build
	@if [ ! -f scripts/demo.sh ]; then echo "scripts/demo.sh does not exist yet"; exit 1; fi
	bash scripts/demo.sh

# The unit names the binary by its installed path: /usr/local/bin in the file, BINDIR here.
install: build
	install -D -m 0755 bin/janusbridge $(DESTDIR)$(BINDIR)/janusbridge
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/bin/janusbridge|$(BINDIR)/janusbridge|g' packaging/janusbridge.service \
		> $(DESTDIR)$(UNITDIR)/janusbridge.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/janusbridge.service
	install -D -m 0644 config.example.toml $(DESTDIR)$(CONFDIR)/janusbridge.toml.example

clean:
	rm -rf bin
