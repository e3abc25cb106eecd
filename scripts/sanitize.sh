#!/usr/bin/env bash
# `npm run sanitize`: the addon built with AddressSanitizer (and UBSan), then
# the fuzz run and the whole test suite under it. Clean means: not a single
# sanitizer report from any process (main, vitest workers, experiment
# children, worker threads), and the fuzz passes.
#
# Why ASan, and what it can and cannot say here. ASan instruments the
# addon's own code (every load and store in native/*.cc: the live set, the
# plan executor's scratch and result records, the buffers handed to JS) and,
# preloaded into node, replaces malloc/free process-wide with its own
# allocator, which checks every free. So a double free, a free of a foreign
# or misaligned pointer, a use after free or an overflow by the addon is
# reported with a stack, which is the addon's promise ("glibc never sees a
# bad pointer") checked from outside. The price: glibc's malloc is no longer
# the one answering, so chunk headers, mallinfo2, arenas and tcache are
# ASan's or empty, and the tests that check glibc's behaviour (most of the
# suite) fail by design under it. The suite is run anyway, for coverage of
# every native path; its failures are listed, not judged; the sanitizer
# logs are. valgrind memcheck has the same blind spot (it replaces malloc
# too), runs node 20-50x slower, and cannot run the fuzz at all: its own
# allocator panics ("the 'impossible' happened: VG_(arena_memalign)") on
# the 1 TiB alignment the fuzz asks posix_memalign for, where glibc and ASan
# answer EINVAL/ENOMEM.
#
# Usage: scripts/sanitize.sh [--calls N] [--seed N] [--no-suite]
# (HEAPSCOPE_SANITIZE_KEEP=1 keeps the temporary copy and its logs.)
# The build goes to a temporary copy of the repository: build/Release of
# this checkout is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

calls=100000
seed=${HEAPSCOPE_FUZZ_SEED:-$((RANDOM * 32768 + RANDOM))}
suite=1
while [ $# -gt 0 ]; do
  case "$1" in
    --calls) calls=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --no-suite) suite=0; shift ;;
    *) echo "usage: $0 [--calls N] [--seed N] [--no-suite]" >&2; exit 2 ;;
  esac
done

if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node_api.h ]; then
  export npm_config_nodedir=/usr
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/heapscope-sanitize-XXXXXX")
if [ -z "${HEAPSCOPE_SANITIZE_KEEP:-}" ]; then trap 'rm -rf "$work"' EXIT; fi
echo "sanitize: building an ASan+UBSan addon in $work"
tar -C "$ROOT" --exclude=./node_modules --exclude=./build --exclude=./prebuilds --exclude=./.git -cf - . | tar -C "$work" -xf -
ln -s "$ROOT/node_modules" "$work/node_modules"
cd "$work"
npx tsc -p tsconfig.json
CXXFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g" \
  LDFLAGS="-fsanitize=address,undefined" npx node-gyp rebuild >"$work/build.log" 2>&1 ||
  { tail -30 "$work/build.log"; exit 1; }
# (Captured first: grep -q would close the pipe early, and pipefail count that.)
linked=$(ldd build/Release/heapscope.node)
grep -q libasan <<<"$linked" || { echo "sanitize: the addon is not linked against libasan" >&2; exit 1; }

logs="$work/logs"
mkdir -p "$logs"
asan_lib=$(gcc -print-file-name=libasan.so)
# detect_leaks=0: LeakSanitizer would list everything node and V8 keep until
# exit; heapscope's leaks are the fuzz's live-set and uordblks checks.
# allocator_may_return_null=1: the fuzz asks for impossible sizes on purpose
# and expects ENOMEM, as glibc gives, not an ASan abort.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:log_path=$logs/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan"
sanitized() { LD_PRELOAD="$asan_lib" "$@"; }

status=0
# The node binary must really run ASan's allocator: glibc's mallinfo2 then
# sees an untouched heap.
sanitized node -e "const h = require('./dist/index.js'); const a = h.malloc(100); \
  if (h.mallinfo2().uordblks !== 0) { console.error('ASan is not the allocator'); process.exit(1); } a.free();" || exit 1

echo "sanitize: fuzz, seed $seed, $calls calls"
sanitized node scripts/fuzz.mjs --seed "$seed" --calls "$calls" >"$work/fuzz.txt" 2>&1 || status=1
if [ "$status" = 0 ]; then tail -1 "$work/fuzz.txt"; else cat "$work/fuzz.txt"; fi

if [ "$suite" = 1 ]; then
  echo "sanitize: the test suite under ASan (failures of glibc-specific tests expected and not judged)"
  # A test's own child is killed after three minutes here, not ten
  # (test/helpers/sync-child.ts): under ASan's allocator the walks of a big
  # heap run for many minutes each, and the suite did not end within 50.
  HEAPSCOPE_TEST_CHILD_TIMEOUT=180000 sanitized npx vitest run --exclude test/pack.test.ts --reporter=json --outputFile="$work/suite.json" >"$logs/suite.txt" 2>&1 || true
  node -e "
    const r = require('$work/suite.json');
    const failed = r.testResults.flatMap((f) => f.assertionResults.filter((a) => a.status === 'failed'));
    console.log('sanitize: suite ran ' + r.numTotalTests + ' tests in ' + r.testResults.length + ' files: ' +
      r.numPassedTests + ' passed, ' + failed.length + ' failed without glibc malloc');
  "
fi

# Any report at all, from any process, fails the run. Allocation failures the
# fuzz provokes on purpose are warnings, not reports.
# UBSan writes to the stderr of whichever process tripped it, so the fuzz's
# and the suite's output are searched too.
cp "$work/fuzz.txt" "$logs/fuzz.txt"
if grep -qE '==[0-9]+==ERROR|runtime error:|SUMMARY: (Address|Undefined)' "$logs"/* 2>/dev/null; then
  echo "sanitize: FAIL, sanitizer reports:"
  grep -hE -A12 '==[0-9]+==ERROR|runtime error:' "$logs"/* | head -200
  status=1
else
  echo "sanitize: no ASan or UBSan report from any process"
fi

[ "$status" = 0 ] && echo "sanitize: clean" || echo "sanitize: NOT clean"
exit "$status"
