#!/usr/bin/env bash
# The two test suites. `npm test` (suite "main") runs every test/**/*.test.ts except the
# slow ones and must stay within minutes; `npm run test:slow` runs test/**/*.slow.test.ts:
# scenarios that must wait minutes (long outages, package builds). Both end with the
# leftover check: a process the run started that is still alive fails the run. Both build
# dist/ first (scripts/build.ts).
set -u
cd "$(dirname "$0")/.."
suite="${1:-main}"
export REEF_TEST_RUN="npm-test-$suite-$$"
case "$suite" in
  # End-to-end files first: they are the long ones (tens of seconds each, against well
  # under ten for most others), and started last they would leave one lane running alone.
  main) files=$( { find test/e2e -name '*.test.ts' ! -name '*.slow.test.ts' | sort; find test -name '*.test.ts' ! -name '*.slow.test.ts' ! -path 'test/e2e/*' | sort; } ); concurrency=3; args=(--test-timeout=180000) ;;
  slow) files=$(find test -name '*.slow.test.ts' | sort); concurrency=2; args=(--test-timeout=1200000) ;;
  *) echo "usage: scripts/run-tests.sh main|slow" >&2; exit 2 ;;
esac
if [ -z "$files" ]; then echo "no $suite tests"; exit 0; fi
# The end-to-end tests run the CLIs as users do, from the compiled dist/: build it first so
# they never run a stale one.
node --import tsx scripts/build.ts || exit 1
# The usual report (spec on a terminal, TAP otherwise), then the slowest files: the figures
# that keep each suite within its budget.
if [ -t 1 ]; then report=spec; else report=tap; fi
export REEF_TEST_CONCURRENCY=$concurrency
# shellcheck disable=SC2086 # one word per file: the paths hold no spaces
node --import tsx --test --test-concurrency="$concurrency" "${args[@]}" \
  --test-reporter="$report" --test-reporter-destination=stdout \
  --test-reporter=./scripts/test-file-times.mjs --test-reporter-destination=stdout $files
code=$?
node --import tsx scripts/check-leftovers.ts || code=1
exit $code
