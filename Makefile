# rrun — build, demo and test targets.
SHELL := /bin/bash
# All targets expect to run as root (containers need real namespaces).

CARGO   ?= cargo
RRUN    ?= target/debug/rrun
ROOTFS  := bundles/busybox/rootfs
DEMO_ROOT ?= /tmp/rrun-demo
TEST_THREADS ?= 4

# rustup installs cargo in ~/.cargo/bin, which a fresh shell may not have.
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: all deps test-deps build rootfs demo lint fmt test test-runc clean

all: build

# Binaries are static and land in target/x86_64-unknown-linux-gnu/ (see
# .cargo/config.toml); target/debug/ gets links for the familiar paths.
build:
	$(CARGO) build
	mkdir -p target/debug
	ln -sfn ../x86_64-unknown-linux-gnu/debug/rrun target/debug/rrun
	rm -f target/debug/rrun-init  # embedded in rrun since it became no-std

rootfs: $(ROOTFS)/.done

$(ROOTFS)/.done: scripts/mkrootfs.sh
	scripts/mkrootfs.sh $(ROOTFS)
	touch $@

# What building and the demo need on a fresh Debian 12 machine: a C
# toolchain for the Rust build and busybox-static for the rootfs.
deps:
	@command -v busybox >/dev/null 2>&1 && command -v cc >/dev/null 2>&1 || { \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static build-essential </dev/null; }
	@command -v cargo >/dev/null 2>&1 || { echo "make: cargo not found (install Rust, e.g. with rustup)" >&2; exit 1; }

# Run the example busybox bundle in the foreground, then clean up.
demo: deps build rootfs
	$(RRUN) --root $(DEMO_ROOT) run -b bundles/busybox demo-$$$$

# init/ is its own (no-std) crate, built by build.rs: linted on its own.
lint:
	$(CARGO) fmt --check
	$(CARGO) fmt --check --manifest-path init/Cargo.toml
	$(CARGO) clippy --all-targets -- -D warnings
	cd init && $(CARGO) clippy --target x86_64-unknown-linux-gnu --target-dir ../target/init -- -D warnings

fmt:
	$(CARGO) fmt
	$(CARGO) fmt --manifest-path init/Cargo.toml

# Installs what the whole suite needs first (scripts/test-deps.sh: apt, as
# root), so nothing is skipped for a missing package on a fresh machine; the
# run ends with a summary of every skipped test and its reason.
test-deps: deps
	scripts/test-deps.sh

test: test-deps lint build fuzz-check
	TEST_THREADS=$(TEST_THREADS) scripts/run-tests.sh

# The same suite against runc, the reference implementation: every test
# file runs (--no-fail-fast), and the run ends with the tests runc fails.
# A difference rrun keeps on purpose is skipped under runc with its reason
# (README, "Deliberate differences from runc").
test-runc:
	@RRUN_BIN=$$(command -v runc) $(CARGO) test --no-fail-fast -- --test-threads=$(TEST_THREADS) 2>&1 \
	  | tee target/test-runc-output.log; rc=$${PIPESTATUS[0]}; \
	  echo; echo "==== tests runc fails ===="; \
	  grep -a '^test .* FAILED$$' target/test-runc-output.log || echo "none"; exit $$rc

clean:
	$(CARGO) clean
	rm -rf $(ROOTFS) $(DEMO_ROOT)

# Pure cgroup v2 smoke test in a QEMU VM (TCG: no KVM needed; as root, for
# apt-get and /boot). scripts/vm/build-initramfs.sh packs the host kernel,
# busybox, rrun and a test rootfs into $(VM_DIR); scripts/vm/run.sh boots it
# (~4-8 s under TCG) and runs scripts/vm/smoke.sh inside. Any other script:
#   scripts/vm/run.sh --initramfs $(VM_DIR)/initramfs.cpio.gz SCRIPT
VM_DIR ?= target/vm

.PHONY: vm-test
vm-test: build
	RRUN_BIN=$(RRUN) scripts/vm/build-initramfs.sh $(VM_DIR)
	scripts/vm/run.sh --initramfs $(VM_DIR)/initramfs.cpio.gz scripts/vm/smoke.sh

# A real systemd host with pure cgroup v2, in QEMU (TCG): Debian's kernel,
# the host's own root filesystem read-only over 9p under a tmpfs overlay,
# the host's systemd as PID 1 (scripts/vm/systemd/). `make vm-systemd`
# builds the kernel + initramfs into $(VM_SYSTEMD_DIR) (cached); run any
# script in it as root with
#   scripts/vm/systemd/run.sh [--want UNIT]... [--env N=V]... SCRIPT [ARGS...]
# `make vm-systemd-test` runs the suites of scripts/vm/systemd/suites.sh in
# it (engines on their systemd defaults, lifecycle/exec/cgroups, the v2
# cgroup checks, the built-in init as a service; rrun and runc), one
# PASS/FAIL line each; SUITES="engines-rrun init-unit" narrows the list,
# RUNTIMES=rrun drops the runc comparison runs.
VM_SYSTEMD_DIR ?= target/vm-systemd
SUITES ?=
RUNTIMES ?= rrun runc

.PHONY: vm-systemd vm-systemd-test
vm-systemd:
	scripts/vm/systemd/build.sh $(VM_SYSTEMD_DIR)

vm-systemd-test: build
	VM_SYSTEMD_DIR=$(VM_SYSTEMD_DIR) RUNTIMES="$(RUNTIMES)" scripts/vm/systemd/test.sh $(SUITES)

# A two-service compose project started AT BOOT by systemd from the units
# `rrun app unit` makes, in the systemd VM: order (db healthy first), the
# published port, a crash of web's program absorbed by rrun's init, a clean
# `systemctl stop` (scripts/vm/boot-test.sh). Needs `make vm-systemd`.
.PHONY: vm-boot-test
vm-boot-test: build
	VM_SYSTEMD_DIR=$(VM_SYSTEMD_DIR) scripts/vm/boot-test.sh

# ---- benchmark: rrun against runc, crun and youki (docs/bench.md) ----
# Peers: apt-get install runc crun tini catatonit umoci golang-github-containers-common
# conmon containerd (the per-app monitor column: conmon, containerd-shim-runc-v2)
BENCH_OUT   ?= target/bench
BENCH_BIN   := target/x86_64-unknown-linux-gnu
YOUKI       ?= $(BENCH_OUT)/youki/bin/youki
BENCH_ARGS  ?=

.PHONY: bench bench-smoke bench-youki rootfs-script-check

# youki's default build lacks cgroup v1; build it once with v1 (slow: many
# minutes), tolerate failure: the bench then skips youki with a note.
bench-youki:
	@if [ ! -x $(YOUKI) ]; then \
	    echo "bench: building youki (cargo install youki --features v1, 40 min timeout)"; \
	    timeout 2400 $(CARGO) install youki --features v1 --root $(BENCH_OUT)/youki \
	        >$(BENCH_OUT)/youki-install.log 2>&1 \
	    || echo "bench: youki did not build (see $(BENCH_OUT)/youki-install.log); it will be skipped"; \
	fi

bench: rootfs-script-check
	mkdir -p $(BENCH_OUT)
	$(MAKE) bench-youki
	$(CARGO) build --release --bin rrun --bin rrun-bench
	$(BENCH_BIN)/release/rrun-bench --rrun $(BENCH_BIN)/release/rrun --youki $(YOUKI) --out $(BENCH_OUT) $(BENCH_ARGS)

# CI: a few repetitions, 10 parallel containers, tiny image, no youki build.
bench-smoke: build
	$(BENCH_BIN)/debug/rrun-bench --smoke --rrun $(BENCH_BIN)/debug/rrun --youki $(YOUKI) --out $(BENCH_OUT) $(BENCH_ARGS)

# Regenerates scripts/hot-functions.txt, the release link's function order
# (uprobes on an unstripped release build; root, tracefs): docs/bench.md.
.PHONY: hot-order
hot-order: rootfs
	scripts/hot-order.py

rootfs-script-check:
	@test -x scripts/mkrootfs.sh

# Long soak of tests/robustness.rs (create/start/kill/delete and run cycles
# over a mix of configs, then a leak check): docs/robustness.md.
SOAK_CYCLES ?= 10000

.PHONY: soak
soak: build
	RRUN_SOAK_CYCLES=$(SOAK_CYCLES) $(CARGO) test --test robustness -- --nocapture soak_

# ---- fuzzing: cargo-fuzz targets in fuzz/ (docs/robustness.md) ----
# fuzz/ compiles rrun's pure modules from src/ with #[path]. fuzz-check
# builds it with the default (stable) toolchain and runs every target's
# body over fuzz/seeds/ (no fuzzing, no nightly), so a module that uses
# something fuzz/src/lib.rs lacks fails `make test` instead of rotting
# unnoticed. `make fuzz` needs nightly and cargo-fuzz (cargo install
# cargo-fuzz); corpora grow in fuzz/corpus/, crashes land in fuzz/artifacts/.
FUZZ_CARGO   ?= cargo +nightly
FUZZ_TIME    ?= 60
FUZZ_TARGETS ?= $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs)))

.PHONY: fuzz-check fuzz
fuzz-check:
	@$(CARGO) test --manifest-path fuzz/Cargo.toml --target-dir target/fuzz-check || { \
	    echo "make: fuzz/ failed: a module it includes from src/ uses something fuzz/src/lib.rs" \
	         "or fuzz/Cargo.toml lacks, or a seed in fuzz/seeds/ is refused (docs/robustness.md, Fuzzing)" >&2; exit 1; }

fuzz:
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	    mkdir -p corpus/$$t && \
	    $(FUZZ_CARGO) fuzz run $$t corpus/$$t seeds/$$t -- -max_total_time=$(FUZZ_TIME) || exit 1; \
	done

# ---- Kubernetes: critest through containerd's CRI plugin (docs/engines.md) ----
# cri-tools' source release comes from THIRD_PARTY (default: ../shared/third-party
# next to the repo); absent, the target skips with the reason. Everything it
# writes is under K8S_DIR. K8S_SYSTEMD_CGROUP=1: SystemdCgroup = true (systemd hosts).
THIRD_PARTY        ?= $(abspath $(CURDIR)/../shared/third-party)
K8S_DIR            ?= target/k8s
K8S_RUN_DIR        ?= $(K8S_DIR)/run
K8S_SYSTEMD_CGROUP ?= 0
K8S_HANDLERS       ?= runc rrun
K8S_FOCUS          ?=
K8S_SKIP           ?=

.PHONY: k8s-test
k8s-test: build
	scripts/test-deps.sh
	RRUN=$(RRUN) THIRD_PARTY=$(THIRD_PARTY) K8S_DIR=$(K8S_DIR) K8S_RUN_DIR=$(K8S_RUN_DIR) K8S_SYSTEMD_CGROUP=$(K8S_SYSTEMD_CGROUP) \
	  K8S_HANDLERS="$(K8S_HANDLERS)" K8S_FOCUS="$(K8S_FOCUS)" K8S_SKIP="$(K8S_SKIP)" \
	  scripts/k8s/k8s-test.sh
