# Sourced by scripts/vm/run.sh and scripts/vm/systemd/run.sh: the part of
# a VM run after qemu started in the background. `vm_wait` runs a
# watchdog that stops qemu ($QPID) after $TIMEOUT seconds (and marks
# $TMP/timed-out), waits for qemu, then for the console tee ($TEEPID).
# Sets qrc (qemu's exit code) and end (a timestamp); clears QPID, WPID
# and TEEPID as each is done, so the callers' exit traps skip them.
vm_wait() {
    # Polls once a second so that killing it leaves nothing behind.
    (
        n=0
        while [ "$n" -lt "$TIMEOUT" ]; do
            sleep 1
            kill -0 "$QPID" 2>/dev/null || exit 0
            n=$((n + 1))
        done
        echo "run.sh: timeout after ${TIMEOUT}s, killing qemu" >&2
        touch "$TMP/timed-out"
        kill -TERM "$QPID" 2>/dev/null
        sleep 5
        kill -KILL "$QPID" 2>/dev/null
    ) &
    WPID=$!
    qrc=0
    wait "$QPID" || qrc=$?
    QPID=
    end=$(date +%s.%N)
    kill "$WPID" 2>/dev/null || true
    wait "$WPID" 2>/dev/null || true
    WPID=
    wait "$TEEPID" || true
    TEEPID=
}
