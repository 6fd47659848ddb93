# filecache: `make run` builds and runs the main job; `make test` installs
# what it needs, builds, and runs every test. See README.md.
.DELETE_ON_ERROR:
.PHONY: FORCE all build run test lint unit integration check-static deps bench vmlinux-full vmtest clean \
	release build-arm64 check-release docs

GO        ?= go
CLANG     ?= clang-19
STRIP     ?= llvm-strip-19
ARCH      := x86
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

LIBBPF_OUT := $(CURDIR)/libbpf/out
LIBBPF_A   := $(LIBBPF_OUT)/lib/libbpf.a
BPF_OBJ    := cgo/filecache.bpf.o
# One object: filecache.bpf.c includes the page walk, the cgroup walk, the overlay code and the dentry walk.
BPF_SRC    := bpf/filecache.bpf.c bpf/overlay.bpf.c bpf/pages.bpf.c bpf/cgwalk.bpf.c bpf/dir.bpf.c bpf/filecache.h bpf/vmlinux.h
BIN        := bin/filecache

# cgo flags for the vendored static libbpf; Debian's static libelf needs zstd.
export CGO_CFLAGS  := -I$(LIBBPF_OUT)/include
export CGO_LDFLAGS := -L$(LIBBPF_OUT)/lib -lbpf -lelf -lz -lzstd
GO_TAGS    := netgo,osusergo
GO_LDFLAGS := -s -w -buildid= -X main.version=$(VERSION) -X main.commit=$(COMMIT) -linkmode external -extldflags "-static"
# -trimpath, -buildvcs=false and an empty build id: the same commit gives the same bytes.
GO_BUILD   := $(GO) build -trimpath -buildvcs=false -tags $(GO_TAGS) -ldflags '$(GO_LDFLAGS)'
# -fdebug-prefix-map: BTF line info names the source relative to the checkout.
BPF_CFLAGS := -target bpf -O2 -g -Wall -Werror -fdebug-prefix-map=$(CURDIR)=. -Ibpf -I$(LIBBPF_OUT)/include
GO_SRC     := $(shell find cmd cgo bpf -name '*.go') $(wildcard cgo/*/*.c) go.mod go.sum

all: build

build: $(BIN)

$(LIBBPF_A): vendor.sh
	./vendor.sh
	touch $@ # vendor.sh leaves a built library alone

$(BPF_OBJ): $(BPF_SRC) $(LIBBPF_A)
	$(CLANG) $(BPF_CFLAGS) -D__TARGET_ARCH_$(ARCH) -c $< -o $@
	$(STRIP) -g $@

# The version and commit the binaries say: the stamp is rewritten, and the
# binaries linked again, only when they change.
VERSION_STAMP := bin/.version
$(VERSION_STAMP): FORCE
	@mkdir -p $(@D); echo '$(VERSION) $(COMMIT)' | cmp -s - $@ || echo '$(VERSION) $(COMMIT)' >$@
FORCE:

$(BIN): $(BPF_OBJ) $(LIBBPF_A) $(GO_SRC) $(VERSION_STAMP)
	@mkdir -p bin
	$(GO_BUILD) -o $@ ./cmd/filecache

# The main job: measure a file this target just wrote, as JSON.
run: $(BIN)
	@f=$$(mktemp /tmp/filecache-run.XXXXXX) && \
	  head -c 8388608 /dev/urandom > "$$f" && \
	  ./$(BIN) --json "$$f"; rc=$$?; rm -f "$$f"; exit $$rc

deps:
	./scripts/deps.sh

# One step after another, also under make -j: two suites at once would
# measure each other's page cache. vmtest runs the root suite on this
# kernel (its host rows) and in the guests.
test: deps
	$(MAKE) build
	$(MAKE) check-static
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) check-release
	$(MAKE) vmtest

# Static checks, no kernel needed: go.mod and go.sum tidy and matching the
# module cache; gofmt; go vet with and without cgo (the plain-Go packages
# build without it); staticcheck at the version go.mod pins as a tool; and
# shellcheck on the scripts.
lint: $(BPF_OBJ) $(LIBBPF_A)
	$(GO) mod tidy -diff
	$(GO) mod verify
	@bad=$$(gofmt -l .); if [ -n "$$bad" ]; then echo "gofmt -l: not formatted:" $$bad >&2; exit 1; fi
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./...
	$(GO) tool staticcheck ./...
	shellcheck scripts/*.sh vendor.sh

unit: $(BPF_OBJ) $(LIBBPF_A)
	FILECACHE_BPF_OBJECT=$(CURDIR)/$(BPF_OBJ) $(GO) test -count=1 ./...

# Root tests against the running kernel, comparing with cachestat and mincore,
# once per configuration of scripts/vmtest.sh (its host rows, no guest).
integration: $(BIN)
	VMTEST_SUITES= VMTEST_HOST=1 ./scripts/vmtest.sh

# The integration suite on this kernel and on the newest Debian cloud kernel
# of bullseye (5.10), bookworm (6.1), trixie (6.12) and sid, each in QEMU;
# and with the arm64 build ($(ARM64_BIN), below) on the arm64 kernel of each
# of those suites; one table.
vmtest: $(BIN)
	./scripts/vmtest.sh

check-static: $(BIN)
	./scripts/check-static.sh $(BIN)

bench: $(BIN)
	./scripts/bench.sh
	./scripts/bench-top.sh
	# snapshot and restore of a 2 GiB tree against vmtouch -t (on disk: /var/tmp)
	./scripts/bench-warm.sh
	# top's two walks alone, loaded once: ns an inode (cgo/walk_test.go)
	$(GO) test -run '^$$' -bench Walk -benchtime 40x -count 5 ./cgo/

# The full vmlinux.h of the running kernel, to compare with the trimmed one.
vmlinux-full:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux-full.h

clean:
	rm -rf bin dist $(BPF_OBJ) bpf/vmlinux-full.h

# ---------------------------------------------------------------------------
# Release: `make release` writes dist/filecache-VERSION-linux-{amd64,arm64}.tar.gz
# and dist/sha256sums.txt (scripts/release.sh; byte-identical for one commit).
# arm64 is cross-compiled: Debian's aarch64 gcc, the arm64 static libelf, zlib
# and zstd from arm64 .debs (scripts/sysroot.sh), libbpf built for arm64
# (vendor.sh arm64), and the BPF object compiled for __TARGET_ARCH_arm64,
# embedded in place of the x86 one through go build -overlay.
DIST         ?= dist
ARM64_ROOT   := $(CURDIR)/.cache/sysroot/arm64/root
ARM64_LIBBPF := $(CURDIR)/libbpf/out-arm64
ARM64_OBJ    := bin/arm64/filecache.bpf.o
ARM64_BIN    := bin/arm64/filecache
# The page and completions, generated from the kong grammar; checked in, and
# held to the grammar by the cli package's tests (make docs rewrites them).
DOCS         := cmd/filecache/docs/filecache.1 cmd/filecache/docs/completions/filecache.bash cmd/filecache/docs/completions/_filecache cmd/filecache/docs/completions/filecache.fish

release: $(BIN) $(ARM64_BIN) $(DOCS) README.md LICENSE
	./scripts/check-static.sh $(BIN)
	./scripts/check-static.sh $(ARM64_BIN)
	./scripts/release.sh $(DIST) $(VERSION) $(BIN):amd64 $(ARM64_BIN):arm64

build-arm64: $(ARM64_BIN)

# make vmtest boots arm64 guests with it (a rule of its own here, where
# ARM64_BIN is defined: make expands prerequisites as it reads them).
vmtest: $(ARM64_BIN)

$(ARM64_ROOT)/.packages: scripts/sysroot.sh
	./scripts/sysroot.sh arm64 $(dir $(ARM64_ROOT))
	touch $@ # sysroot.sh leaves the same packages alone

$(ARM64_LIBBPF)/lib/libbpf.a: vendor.sh $(ARM64_ROOT)/.packages
	SYSROOT=$(ARM64_ROOT) ./vendor.sh arm64
	touch $@ # vendor.sh leaves a built library alone

$(ARM64_OBJ): $(BPF_SRC) $(LIBBPF_A)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -D__TARGET_ARCH_arm64 -c $< -o $@
	$(STRIP) -g $@

$(ARM64_BIN): $(ARM64_OBJ) $(ARM64_LIBBPF)/lib/libbpf.a $(GO_SRC) $(VERSION_STAMP)
	@mkdir -p $(@D)
	printf '{"Replace":{"%s":"%s"}}\n' $(CURDIR)/$(BPF_OBJ) $(CURDIR)/$(ARM64_OBJ) >$(@D)/overlay.json
	CGO_ENABLED=1 GOARCH=arm64 CC=aarch64-linux-gnu-gcc \
	CGO_CFLAGS='-I$(ARM64_LIBBPF)/include' \
	CGO_LDFLAGS='-L$(ARM64_LIBBPF)/lib -L$(ARM64_ROOT)/usr/lib/aarch64-linux-gnu -lbpf -lelf -lz -lzstd' \
		$(GO_BUILD) -overlay $(@D)/overlay.json -o $@ ./cmd/filecache

# make release, then again from a copy of the sources elsewhere: the same bytes?
# And what each tarball holds (scripts/check-release.sh).
check-release:
	./scripts/check-release.sh

docs:
	$(GO) test -count=1 -run TestDocs ./cmd/filecache/internal/cli -update
