#!/usr/bin/env bash
# Every GPU check in one call, for a session lent the device machine (the first thing to run there):
#   run(command="bash benchmarks/gpu_check.sh", timeout_s=580)
# Writes JSON and logs under $OUT (default ./gpu_out). Each stage has its own time limit so a slow
# or out-of-memory stage cannot take the rest down. Needs no install: PYTHONPATH=. from the checkout.
#
#   bash benchmarks/gpu_check.sh --dry-run
# runs every stage at tiny sizes on the CPU (into a temporary $OUT unless given), then checks that
# every JSON file parses and holds the expected fields (benchmarks/check_gpu_out.py); exits non-zero
# when a stage or a check fails. .ci/run runs it, so that a script error never costs GPU time. The scan
# tests need pytest: without it their stage is skipped with a note (the dry run checks that path too,
# with pytest hidden).
set -u
cd "$(dirname "$0")/.."
dry=0
if [ "${1:-}" = "--dry-run" ]; then dry=1; fi
if [ $dry = 1 ]; then
  OUT=${OUT:-$(mktemp -d)}
  export JAX_PLATFORMS=cpu
  # tiny sizes: every option of the real run, small numbers
  K1="2"; K2="2"; K3="2"; UNITS="--units 8 --batch 4 --length 60"; REP="--steps-per-call 2 --repeats 1"
  FP="--members 2 --units 8 --candidates 16 --adam-steps 20 --newton-steps 2"
  TEST_SCAN="--collect-only"; LIMIT=300
else
  OUT=${OUT:-gpu_out}
  K1="1 16 64 256 1024"; K2="1 256"; K3="1 256 1024"; UNITS=""; REP="--steps-per-call 5 --repeats 3"
  FP="--members 1 64"
  TEST_SCAN=""; LIMIT=0
fi
mkdir -p "$OUT"
export PYTHONPATH=.
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # so that peak memory is what a step needs
py=${PYTHON:-python3}
failed=0
stage() {  # stage SECONDS NAME COMMAND...: run with a time limit, log to $OUT/NAME.log
  local limit=$1 name=$2; shift 2
  if [ $LIMIT -gt 0 ]; then limit=$LIMIT; fi
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then echo "stage $name: exit status $rc (see $OUT/$name.log)"; failed=1; fi
}
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi") > "$OUT/gpu.txt" 2>&1
$py -c "import jax; print(jax.__version__, jax.devices())" > "$OUT/jax.txt" 2>&1
git rev-parse HEAD > "$OUT/commit.txt" 2>/dev/null || true

# 1. correctness: every backprop variant against autodiff at full precision, at TF32 and at full
#    float32 (no pytest needed); then the scan tests, if pytest is there. Without pytest (the GPU
#    machine has none) that stage is skipped with a note in $OUT/test_scan.log, not failed.
test_scan() {  # test_scan LOG: the scan tests, or the note when `import pytest` fails
  if $py -c "import pytest" > /dev/null 2>&1; then
    stage 90 "$1" $py -m pytest -q -p no:cacheprovider $TEST_SCAN tests/test_scan.py
  else
    echo "stage $1: skipped, pytest is not installed for $py (pip install pytest to run tests/test_scan.py)" \
      | tee "$OUT/$1.log"
  fi
}
stage 90 variants $py benchmarks/check_variants.py $UNITS --json "$OUT/variants.json"
test_scan test_scan
if [ $dry = 1 ]; then
  # the dry run takes the path without pytest too: a `pytest` module that fails to import, first on the path
  hide=$(mktemp -d)
  echo 'raise ImportError("hidden by gpu_check.sh --dry-run")' > "$hide/pytest.py"
  PYTHONPATH="$hide:." test_scan test_scan_no_pytest > /dev/null
  if ! grep -qs "^stage test_scan_no_pytest: skipped" "$OUT/test_scan_no_pytest.log"; then
    echo "stage test_scan_no_pytest: not skipped without pytest (see $OUT/test_scan_no_pytest.log)"; failed=1
  fi
  rm -rf "$hide"
fi

# 2. throughput: every variant against the plain baseline, TF32 (default precision)
stage 240 throughput_default $py benchmarks/ensemble_throughput.py --members $K1 $UNITS \
    --variants plain custom trainer checkpoint autodiff $REP \
    --json "$OUT/throughput_default.json"

# 2b. unroll 8 of the time loop (fewer loop iterations: matters where kernel launches dominate, small K)
stage 90 throughput_unroll8 $py benchmarks/ensemble_throughput.py --members $K2 $UNITS --variants custom trainer \
    --unroll 8 $REP --json "$OUT/throughput_unroll8.json"

# 3. full float32 (precision=highest) for the custom VJP and the baseline
stage 120 throughput_highest $py benchmarks/ensemble_throughput.py --members $K3 $UNITS --variants plain custom \
    --precision highest $REP --json "$OUT/throughput_highest.json"

# 4. fixed points (N = 100, 1024 candidates each; tiny in the dry run)
stage 90 fixed_points $py benchmarks/fixed_points.py $FP --json "$OUT/fixed_points.json"

# 5. every file parses and holds its fields
stage 60 check $py benchmarks/check_gpu_out.py "$OUT"
if [ $dry = 1 ]; then
  cat "$OUT/check.log"
  if [ $failed = 1 ]; then tail -n 20 "$OUT"/*.log; echo "gpu_check --dry-run: FAILED ($OUT)"; exit 1; fi
  echo "gpu_check --dry-run: every stage ran and every file holds its fields ($OUT)"
else
  tail -n 30 "$OUT"/*.log
fi
