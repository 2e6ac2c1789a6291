#!/usr/bin/env bash
# fuzz.sh: run every `func FuzzX` of every package in turn, one `go test -fuzz` call each (Go
# fuzzes one target per call), for FUZZTIME each (default 2s), with FUZZ_FLAGS.
#
# A target that fails with nothing but "context deadline exceeded" (no failing input written, no
# panic, no test failure) runs once more: that is Go's fuzz coordinator racing its own -fuzztime
# deadline under load (golang/go#75804, fixed in Go 1.27), not a finding. Any other failure, or
# the same one twice, fails the run.
set -euo pipefail

FUZZTIME="${FUZZTIME:-2s}"
read -r -a flags <<<"${FUZZ_FLAGS:-}"

# deadline_only reports whether a failed run's output is only the coordinator's deadline race.
deadline_only() {
	grep -q 'context deadline exceeded' <<<"$1" &&
		! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' <<<"$1"
}

n=0
retried=0
start=$(date +%s)
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	for name in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u); do
		cmd=(go test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" "${flags[@]}" "$dir")
		echo "${cmd[*]}"
		for attempt in 1 2; do
			if out=$("${cmd[@]}" 2>&1); then
				grep -v '^fuzz: elapsed' <<<"$out" || true
				break
			fi
			grep -v '^fuzz: elapsed' <<<"$out" || true
			if [ "$attempt" -eq 1 ] && deadline_only "$out"; then
				echo "fuzz.sh: $name: only Go's -fuzztime deadline race (golang/go#75804): once more"
				retried=$((retried + 1))
				continue
			fi
			exit 1
		done
		n=$((n + 1))
	done
done
echo "fuzz: $n targets, $FUZZTIME each, $retried rerun for the deadline race, $(($(date +%s) - start))s in all"
