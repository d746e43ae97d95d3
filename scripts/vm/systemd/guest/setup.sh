#!/bin/sh
# Prepares the systemd VM's root before systemd starts (busybox sh, run by
# scripts/vm/systemd/init in the initramfs):  setup.sh NEWROOT IODIR
#
# NEWROOT is the overlay (host root read-only + tmpfs), IODIR the run
# directory written by scripts/vm/systemd/run.sh.
set -eu
R=$1
IO=$2
SYS=$R/etc/systemd/system

# Container storage must be on a filesystem overlayfs accepts as an upper
# layer (an overlay is not one); /tmp and /var/tmp are tmpfs as on most
# systemd hosts, so that tests' scratch space is as well.
for d in tmp var/tmp var/lib/containers var/lib/containerd var/lib/docker; do
    mkdir -p "$R/$d"
    mount -t tmpfs -o mode=0755 "tmpfs" "$R/$d"
done
chmod 1777 "$R/tmp" "$R/var/tmp"

# No host mounts, no host network setup, a name of its own.
: > "$R/etc/fstab"
# The host may itself be a container: systemd must not take those markers
# for its own (it would then ignore the kernel command line).
rm -f "$R/.dockerenv" "$R/run/.containerenv"
echo rrun-vm-systemd > "$R/etc/hostname"
# Host state that must not leak in: running engines' runtime files live in
# /run (a fresh tmpfs under systemd), but the host's machine-id is shared;
# give the VM one of its own (systemd treats an empty file as "generate").
: > "$R/etc/machine-id"

# The test units, and whatever run.sh asked to start before the script.
cp "$IO"/guest/*.service "$IO"/guest/*.target "$SYS/"
if [ -d "$IO/unit.d" ]; then
    mkdir -p "$SYS/rrun-vm-test.service.d"
    cp "$IO"/unit.d/*.conf "$SYS/rrun-vm-test.service.d/"
fi

# Units given with run.sh --units, enabled there (--enable): the VM boots
# rrun-vm.target, so what is enabled into multi-user.target is wanted by
# rrun-vm.target as well, and starts at boot.
if [ -d "$IO/units/etc/systemd/system" ]; then
    cp -a "$IO/units/etc/systemd/system/." "$SYS/"
    for l in "$IO"/units/etc/systemd/system/multi-user.target.wants/*; do
        [ -e "$l" ] || [ -L "$l" ] || continue
        mkdir -p "$SYS/rrun-vm.target.wants"
        ln -sfn "/etc/systemd/system/${l##*/}" "$SYS/rrun-vm.target.wants/${l##*/}"
    done
fi

# Units that are useless without hardware, network or persistence, or slow
# under TCG; only what rrun-vm.target pulls in (basic.target and the test)
# starts at all, plus what the test itself asks for.
for u in \
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
    systemd-udev-trigger.service systemd-udev-settle.service \
    systemd-timesyncd.service systemd-pstore.service apparmor.service \
    systemd-hwdb-update.service ldconfig.service systemd-random-seed.service \
    systemd-journal-flush.service systemd-update-utmp.service \
    e2scrub_reap.service e2scrub_all.timer fstrim.timer man-db.timer \
    apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
    podman-auto-update.timer podman-auto-update.service podman-restart.service \
    networking.service ifupdown-wait-online.service \
    systemd-networkd-wait-online.service postgresql.service docker-registry.service \
    getty@tty1.service serial-getty@ttyS0.service; do
    ln -sfn /dev/null "$SYS/$u"
done

mkdir -p "$R/etc/systemd/journald.conf.d"
cat > "$R/etc/systemd/journald.conf.d/rrun-vm.conf" <<EOT
[Journal]
Storage=volatile
EOT
