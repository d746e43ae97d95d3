# Sourced by the VM test runners: `binary NAME` prints the newest cargo
# test binary of a suite in $DEPS (cargo names them NAME-HASH), or nothing.
binary() {
    local f best=
    for f in "$DEPS/$1"-*; do
        case $f in *.d | *.rmeta | *.rlib) continue ;; esac
        [ -x "$f" ] || continue
        if [ -z "$best" ] || [ "$f" -nt "$best" ]; then best=$f; fi
    done
    printf '%s' "$best"
}
