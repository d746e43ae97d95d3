#!/usr/bin/env bash
# Installs (apt) what the whole test suite needs on a fresh Debian 12
# machine, so that `make test` runs every suite instead of skipping the
# ones whose tools are missing. Idempotent: only missing packages are
# fetched. Root only (apt-get); otherwise it names what is missing.
set -euo pipefail

# busybox-static: the test rootfs; runc: the reference runtime for
# comparisons; iproute2 (ip netns), util-linux (flock, unshare, mount),
# procps, jq: test helpers; build-essential/pkg-config: linking the Rust
# build and the static probes the security tests compile; strace: the
# host-side read checks; umoci/skopeo: images for the unpack tests;
# golang-github-containers-common (Debian's containers-common): podman's
# seccomp.json; golang-github-docker-docker-dev: Docker's default seccomp
# profile (profiles/seccomp/default.json); gcc-multilib: the 32-bit probe
# of the seccomp architecture tests; podman/containerd/docker.io: the engine suite;
# qemu-system-x86/linux-image-amd64/cpio: the test VM (scripts/vm);
# systemd/dbus: PID 1 and the bus of the systemd VM (scripts/vm/systemd,
# which boots the host's own root filesystem); dbus-user-session: the user
# bus of its rootless systemd-driver suite;
# apparmor, checkpolicy: apparmor_parser and SELinux's policy compiler,
# packed into the VM for tests/lsm.rs; docker-registry, containernetworking-plugins:
# make k8s-test's local registry and pod network (golang-1.23-go, from
# bookworm-backports, builds cri-tools there); containernetworking-plugins and
# iptables and nftables (the MAC spoof check) also network `rrun app`'s apps;
# conmon: make bench's monitor column; curl, python3: the app tests (a
# published port from the host; raw frames in tests/app_security.rs);
# chromium, chromium-driver, python3-selenium: the status page driven in a
# headless browser (tests/serve_browser.py); python3-prometheus-client: its
# /metrics read by Prometheus' own text-format parser.
PKGS=(busybox-static runc golang-github-containers-common jq iproute2 util-linux mount procps
      build-essential gcc-multilib golang-github-docker-docker-dev pkg-config ca-certificates strace umoci skopeo podman containerd docker.io
      qemu-system-x86 linux-image-amd64 cpio systemd dbus dbus-user-session apparmor checkpolicy
      docker-registry containernetworking-plugins iptables nftables conmon curl python3
      chromium chromium-driver python3-selenium python3-prometheus-client)
# From bookworm-backports (the source is added below when missing).
BACKPORTS_PKGS=(golang-1.23-go)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${PKGS[@]}"; do
    installed "$p" || missing+=("$p")
done
missing_bp=()
for p in "${BACKPORTS_PKGS[@]}"; do
    installed "$p" || missing_bp+=("$p")
done
[ ${#missing[@]} -eq 0 ] && [ ${#missing_bp[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "test-deps: not root, cannot install: ${missing[*]} (the tests that need them will be skipped)" >&2
    exit 0
fi
echo "test-deps: installing ${missing[*]} ${missing_bp[*]}"
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing_bp[@]} -gt 0 ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat >/etc/apt/sources.list.d/bookworm-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
apt-get update -q
[ ${#missing[@]} -eq 0 ] || apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
[ ${#missing_bp[@]} -eq 0 ] || apt-get install -y -q --no-install-recommends -t bookworm-backports "${missing_bp[@]}" </dev/null
