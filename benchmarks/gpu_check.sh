#!/usr/bin/env bash
# Every GPU check of issue #5 in one call, for a session lent the device machine:
#   run(command="bash benchmarks/gpu_check.sh", timeout_s=580)
# Writes JSON and logs under $OUT (default ./gpu_out). Each stage has its own time limit so a slow
# or out-of-memory stage cannot take the rest down. Needs no install: PYTHONPATH=. from the checkout.
set -u
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONPATH=.
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # so that peak memory is what a step needs
py=python3
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
$py -c "import jax; print(jax.__version__, jax.devices())" > "$OUT/jax.txt" 2>&1
git rev-parse HEAD > "$OUT/commit.txt" 2>/dev/null || true

# 1. correctness on the GPU: every backprop variant against autodiff at full precision, at TF32 and
#    at full float32 (no pytest needed); then the scan tests, if pytest is there
timeout 90 $py benchmarks/check_variants.py --json "$OUT/variants.json" > "$OUT/variants.log" 2>&1
timeout 90 $py -m pytest -q -p no:cacheprovider tests/test_scan.py > "$OUT/test_scan.log" 2>&1

# 2. throughput: every variant against the plain baseline, K = 1 ... 1024, TF32 (default precision)
timeout 240 $py benchmarks/ensemble_throughput.py --members 1 16 64 256 1024 \
    --variants plain custom trainer checkpoint autodiff --steps-per-call 5 --repeats 3 \
    --json "$OUT/throughput_default.json" > "$OUT/throughput_default.log" 2>&1

# 2b. unroll 8 of the time loop (fewer loop iterations: matters where kernel launches dominate, small K)
timeout 90 $py benchmarks/ensemble_throughput.py --members 1 256 --variants custom trainer --unroll 8 \
    --steps-per-call 5 --repeats 3 --json "$OUT/throughput_unroll8.json" > "$OUT/throughput_unroll8.log" 2>&1

# 3. full float32 (precision=highest) for the custom VJP and the baseline
timeout 120 $py benchmarks/ensemble_throughput.py --members 1 256 1024 --variants plain custom \
    --precision highest --steps-per-call 5 --repeats 3 \
    --json "$OUT/throughput_highest.json" > "$OUT/throughput_highest.log" 2>&1

# 4. fixed points of 64 members (N = 100, 1024 candidates each)
timeout 90 $py benchmarks/fixed_points.py --members 1 64 --json "$OUT/fixed_points.json" \
    > "$OUT/fixed_points.log" 2>&1
tail -n 30 "$OUT"/*.log
