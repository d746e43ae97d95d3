#!/usr/bin/env bash
# `make test`'s test run: the cargo suite with its output kept in
# target/test-output.log, then the bench smoke run, then a summary of every
# test that was skipped and why (tests print `SKIPPED <test>: <reason>`), so
# that a skip never hides in the scroll-back. The exit status is the
# suite's: a skip is reported, never counted as a failure.
set -uo pipefail

threads=${TEST_THREADS:-4}
log=target/test-output.log
mkdir -p target

cargo test -- --test-threads="$threads" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 0 ]; then
    make --no-print-directory bench-smoke 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
fi

skips=$(grep -a '^SKIPPED ' "$log" | sed 's/ \[runtime: [^]]*\]$//' | sort -u)
echo
echo "==== skipped tests ===="
if [ -z "$skips" ]; then
    echo "none: every test ran"
else
    printf '%s\n' "$skips"
    echo "---- $(printf '%s\n' "$skips" | wc -l) skipped, by reason:"
    printf '%s\n' "$skips" | sed 's/^SKIPPED [^ ]*: //' | sort | uniq -c | sort -rn
fi
exit "$rc"
