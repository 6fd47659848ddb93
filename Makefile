# filecache: `make run` builds and runs the main job; `make test` installs
# what it needs, builds, and runs every test. See README.md.
.DELETE_ON_ERROR:
.PHONY: all build run test unit integration check-static deps bench vmlinux-full vmtest clean

GO        ?= go
CLANG     ?= clang-19
STRIP     ?= llvm-strip-19
ARCH      := x86
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

LIBBPF_OUT := $(CURDIR)/libbpf/out
LIBBPF_A   := $(LIBBPF_OUT)/lib/libbpf.a
BPF_OBJ    := cgo/filecache.bpf.o
BIN        := bin/filecache

# cgo flags for the vendored static libbpf; Debian's static libelf needs zstd.
export CGO_CFLAGS  := -I$(LIBBPF_OUT)/include
export CGO_LDFLAGS := -L$(LIBBPF_OUT)/lib -lbpf -lelf -lz -lzstd
GO_TAGS    := netgo,osusergo
GO_LDFLAGS := -s -w -X main.version=$(VERSION) -linkmode external -extldflags "-static"
GO_SRC     := $(shell find cmd cgo bpf -name '*.go') go.mod go.sum

all: build

build: $(BIN)

$(LIBBPF_A): vendor.sh
	./vendor.sh

$(BPF_OBJ): bpf/filecache.bpf.c bpf/filecache.h bpf/vmlinux.h $(LIBBPF_A)
	$(CLANG) -target bpf -O2 -g -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
		-Ibpf -I$(LIBBPF_OUT)/include -c $< -o $@
	$(STRIP) -g $@

$(BIN): $(BPF_OBJ) $(LIBBPF_A) $(GO_SRC)
	@mkdir -p bin
	$(GO) build -trimpath -tags $(GO_TAGS) -ldflags '$(GO_LDFLAGS)' -o $@ ./cmd/filecache

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
	$(MAKE) unit
	$(MAKE) vmtest

unit: $(BPF_OBJ) $(LIBBPF_A)
	$(GO) vet ./...
	FILECACHE_BPF_OBJECT=$(CURDIR)/$(BPF_OBJ) $(GO) test -count=1 ./...

# Root tests against the running kernel, comparing with cachestat and mincore,
# once per configuration of scripts/vmtest.sh (its host rows, no guest).
integration: $(BIN)
	VMTEST_SUITES= VMTEST_HOST=1 ./scripts/vmtest.sh

# The integration suite on this kernel and on the newest Debian cloud kernel
# of bullseye (5.10), bookworm (6.1), trixie (6.12) and sid, each in QEMU.
vmtest: $(BIN)
	./scripts/vmtest.sh

check-static: $(BIN)
	./scripts/check-static.sh $(BIN)

bench: $(BIN)
	./scripts/bench.sh
	./scripts/bench-top.sh

# The full vmlinux.h of the running kernel, to compare with the trimmed one.
vmlinux-full:
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux-full.h

clean:
	rm -rf bin $(BPF_OBJ) bpf/vmlinux-full.h
