#!/usr/bin/env bash
# Builds the stand-ins for every image critest (cri-tools v1.32.0) pulls,
# from the host's busybox-static, into one OCI layout (umoci), tagged with
# the registry path each one is pushed to (scripts/k8s/k8s-test.sh).
#
#   scripts/k8s/mkimages.sh LAYOUT
#
# Each stand-in does what the specs check of the real image (the names and
# the checks come from cri-tools' pkg/validate and pkg/framework):
#   e2e-test-images/busybox:1.29-2   the default container: sh, sleep, id, ...
#   e2e-test-images/nginx:1.14-2     a web server on :80 whose PID has "nginx"
#                                    as its name and "master process" in its
#                                    cmdline, pid in /var/run/nginx.pid
#   e2e-test-images/httpd:2.4.39-4   a web server on :80 that logs "httpd"
#   e2e-test-images/nonewprivs:1.3   a setuid-root program printing
#                                    "Effective uid: N" (its euid)
#   pause:3.6                        the sandbox: waits, exits on TERM/INT
#   k8s-staging-cri-tools/...        test-image-{latest,tag:test,tag:all},
#       three different images (test-image-1/2/3), one image under three
#       tags (test-image-tags:1/2/3), USER 1002 / www-data / 1003:users /
#       www-data:www-data (test-image-user-*), the predefined-group image
#       (USER 1000, member of gid 50000 in /etc/group) and hostnet-nginx
#       (the web server on :12003).
# The digest-pinned test-image-digest cannot be stood in for (its digest is
# the real image's); k8s-test.sh skips that spec.
#
# Needs umoci, busybox-static and a C compiler with a static libc (the
# nonewprivs program). Root: the layers keep uid 0 and the setuid bit.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 LAYOUT" >&2; exit 2; }
LAYOUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
for t in umoci cc; do
    command -v "$t" >/dev/null || { echo "mkimages: $t not found (scripts/test-deps.sh installs it)" >&2; exit 1; }
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The base: the project's busybox rootfs with the accounts of the real
# busybox image (critest runs as "nobody" by name; www-data is uid 33).
"$HERE/../mkrootfs.sh" "$WORK/base" >/dev/null 2>&1
cat >"$WORK/base/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
cat >"$WORK/base/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
mail:x:8:
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
EOF
rm -rf "$WORK/base/home/user"
# Debian's busybox has no ipcs and no pgrep applet: the HostIpc specs run
# `ipcs -m` and look for a segment id, the execSync timeout spec
# `pgrep sleep` (empty output: the timed-out exec is gone).
cat >"$WORK/base/usr/bin/ipcs" <<'EOF2'
#!/bin/sh
# Stand-in for ipcs -m: System V shared memory segments, from /proc.
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes      nattch"
awk 'NR > 1 { printf "0x%08x %-10s %-10s %-10s %-10s %-10s\n", $1, $2, $8, $3, $4, $7 }' /proc/sysvipc/shm
EOF2
cat >"$WORK/base/usr/bin/pgrep" <<'EOF2'
#!/bin/sh
# Stand-in for pgrep PATTERN: the pids whose name matches; 1 when none does.
found=1
for d in /proc/[0-9]*; do
    { read -r comm <"$d/comm"; } 2>/dev/null || continue
    if echo "$comm" | grep -q -- "$1"; then
        echo "${d#/proc/}"
        found=0
    fi
done
exit $found
EOF2
chmod 755 "$WORK/base/usr/bin/ipcs" "$WORK/base/usr/bin/pgrep"

rm -rf "$LAYOUT"
umoci init --layout "$LAYOUT"
umoci new --image "$LAYOUT:base"
umoci insert --image "$LAYOUT:base" "$WORK/base" / >/dev/null
umoci config --image "$LAYOUT:base" --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.cmd sh

# from BASE TAG: a new tag of BASE (umoci edits tags in place).
from() {
    umoci tag --image "$LAYOUT:$1" "$2"
}
# layer TAG DIR: DIR's tree added as a layer over TAG.
layer() {
    umoci insert --image "$LAYOUT:$1" "$2" / >/dev/null
}
config() {
    local tag=$1
    shift
    umoci config --image "$LAYOUT:$tag" "$@"
}
# The config digest is the image id CRI reports: a label keeps stand-ins
# that must differ apart even when their files do not.
label() { config "$1" --config.label "rrun.k8s.standin=$1"; }

from base e2e-busybox
label e2e-busybox

# Web servers: busybox httpd under a shell that exits on TERM (PID 1 would
# otherwise ignore it and every stop would wait for the kill timeout).
mkdir -p "$WORK/web/usr/local/lib" "$WORK/web/usr/share/nginx/html" "$WORK/web/var/run" "$WORK/web/usr/sbin"
cat >"$WORK/web/usr/local/lib/serve.sh" <<'EOF'
#!/bin/sh
# serve.sh PORT: busybox httpd on PORT until TERM or INT.
httpd -f -p "$1" -h /usr/share/nginx/html &
child=$!
trap 'kill $child 2>/dev/null; exit 0' TERM INT
wait
EOF
# nginx: /usr/sbin/nginx is a copy of busybox, so the process's name is
# "nginx" (pidof nginx); argv[0] ends in /busybox so busybox runs the applet
# named by argv[1], and carries "master process" like nginx's master.
cat >"$WORK/web/usr/local/bin-nginx" <<'EOF'
#!/bin/sh
# Stand-in for nginx: pid file, name and cmdline as nginx's master has them.
echo $$ >/var/run/nginx.pid
exec -a "nginx: master process /bin/busybox" /usr/sbin/nginx sh /usr/local/lib/serve.sh "${NGINX_PORT:-80}"
EOF
mkdir -p "$WORK/web/usr/local/bin"
mv "$WORK/web/usr/local/bin-nginx" "$WORK/web/usr/local/bin/nginx-standin"
cat >"$WORK/web/usr/local/bin/httpd-foreground" <<'EOF'
#!/bin/sh
# Stand-in for Apache httpd: says its name on stderr, as httpd does at start.
echo "httpd: stand-in (busybox httpd) listening on port 80" >&2
exec sh /usr/local/lib/serve.sh 80
EOF
echo '<html><body><h1>Welcome to nginx!</h1></body></html>' >"$WORK/web/usr/share/nginx/html/index.html"
chmod 755 "$WORK/web/usr/local/lib/serve.sh" "$WORK/web/usr/local/bin/"*
cp /bin/busybox "$WORK/web/usr/sbin/nginx"

from base e2e-nginx
layer e2e-nginx "$WORK/web"
config e2e-nginx --config.cmd /usr/local/bin/nginx-standin --config.exposedports 80/tcp
label e2e-nginx

from e2e-nginx hostnet-nginx
config hostnet-nginx --config.env NGINX_PORT=12003 --config.exposedports 12003/tcp
label hostnet-nginx

from e2e-nginx e2e-httpd
config e2e-httpd --config.cmd /usr/local/bin/httpd-foreground
label e2e-httpd

# nonewprivs: a setuid-root program reporting its effective uid.
mkdir -p "$WORK/nnp/usr/local/bin"
cat >"$WORK/nnp.c" <<'EOF'
#include <stdio.h>
#include <unistd.h>
int main(void) { printf("Effective uid: %d\n", (int)geteuid()); return 0; }
EOF
cc -static -O2 -o "$WORK/nnp/usr/local/bin/nnp" "$WORK/nnp.c"
chown 0:0 "$WORK/nnp/usr/local/bin/nnp"
chmod 4755 "$WORK/nnp/usr/local/bin/nnp"
from base e2e-nonewprivs
layer e2e-nonewprivs "$WORK/nnp"
config e2e-nonewprivs --config.cmd /usr/local/bin/nnp
label e2e-nonewprivs

# pause: the sandbox's init.
mkdir -p "$WORK/pause"
cat >"$WORK/pause/pause" <<'EOF'
#!/bin/sh
# Stand-in for the pause container: waits until TERM or INT.
trap 'exit 0' TERM INT
while :; do
    sleep 3600 &
    wait
done
EOF
chmod 755 "$WORK/pause/pause"
from base pause
layer pause "$WORK/pause"
config pause --config.entrypoint /pause --clear=config.cmd
label pause

# The cri-tools test images (images/image-test, image-user,
# image-predefined-group in the cri-tools tree).
for t in test-image-latest test-image-tag test-image-tags; do
    from base "$t"
    label "$t"
done
for n in 1 2 3; do
    mkdir -p "$WORK/t$n"
    echo "$n" >"$WORK/t$n/test-image-$n"
    from base "test-image-$n"
    layer "test-image-$n" "$WORK/t$n"
    label "test-image-$n"
done
user_image() {
    from base "$1"
    config "$1" --config.user "$2"
    label "$1"
}
user_image test-image-user-uid 1002
user_image test-image-user-username www-data
user_image test-image-user-uid-group 1003:users
user_image test-image-user-username-group www-data:www-data

mkdir -p "$WORK/pg/etc" "$WORK/pg/home/default-user"
cp "$WORK/base/etc/passwd" "$WORK/base/etc/group" "$WORK/pg/etc/"
echo 'default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh' >>"$WORK/pg/etc/passwd"
printf 'default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n' >>"$WORK/pg/etc/group"
chown 1000:1000 "$WORK/pg/home/default-user"
from base test-image-predefined-group
layer test-image-predefined-group "$WORK/pg"
config test-image-predefined-group --config.user 1000
label test-image-predefined-group

umoci gc --layout "$LAYOUT"
echo "mkimages: stand-ins in $LAYOUT"
