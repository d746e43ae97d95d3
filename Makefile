# rrun — build, demo and test targets.
# All targets expect to run as root (containers need real namespaces).

CARGO   ?= cargo
RRUN    ?= target/debug/rrun
ROOTFS  := bundles/busybox/rootfs
DEMO_ROOT ?= /tmp/rrun-demo
TEST_THREADS ?= 4

.PHONY: all build rootfs demo lint fmt test test-runc clean

all: build

# Binaries are static and land in target/x86_64-unknown-linux-gnu/ (see
# .cargo/config.toml); target/debug/ gets links for the familiar paths.
build:
	$(CARGO) build
	mkdir -p target/debug
	for b in rrun rrun-init; do ln -sfn ../x86_64-unknown-linux-gnu/debug/$$b target/debug/$$b; done

rootfs: $(ROOTFS)/.done

$(ROOTFS)/.done: scripts/mkrootfs.sh
	scripts/mkrootfs.sh $(ROOTFS)
	touch $@

# Run the example busybox bundle in the foreground, then clean up.
demo: build rootfs
	$(RRUN) --root $(DEMO_ROOT) run -b bundles/busybox demo-$$$$

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

test: lint build
	$(CARGO) test -- --test-threads=$(TEST_THREADS)

# The same suite against runc, the reference implementation.
test-runc:
	RRUN_BIN=$$(command -v runc) $(CARGO) test -- --test-threads=$(TEST_THREADS)

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

# Long soak of tests/robustness.rs (create/start/kill/delete and run cycles
# over a mix of configs, then a leak check): docs/robustness.md.
SOAK_CYCLES ?= 10000

.PHONY: soak
soak: build
	RRUN_SOAK_CYCLES=$(SOAK_CYCLES) $(CARGO) test --test robustness -- --nocapture soak_
