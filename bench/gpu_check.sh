#!/bin/bash
# GPU check: the notebooks' tests and the tiny reproduction on a CUDA machine, notebook by notebook.
#
# CI has no GPU, so the device paths (models on CUDA, data on the CPU) are only exercised here. The
# tests run beside the reproduction (5 workers of 2 threads); each reproduction notebook gets what is
# left of REPRO_LIMIT seconds, so a slow one cannot eat the whole budget, and a failing one does not
# stop the rest (later notebooks rebuild what they need from the cache).
#
# usage: bash bench/gpu_check.sh            (from the repository root; logs into $OUT or ./gpu_check_out)
#   WHEELS=dir   install these wheels first (pip --no-index --no-deps --target /tmp/site), for a machine
#                whose Python lacks the project's dependencies and cannot reach an index
#   REPRO_LIMIT  seconds for the whole reproduction (default 420); TEST_LIMIT for nbdev_test (default 400)
#   PACK=1       leave the run's folder as tiny.tgz (figures left out)
#   SEED_CACHE=file  unpack this archive of a cache into $CORTEX_NB_CACHE first. With the artifacts of 00-02, built
#                on a machine where native_bf16() is True (AVX-512 BF16/AMX CPU, or a bf16 GPU: the precision is part
#                of the cache keys, the device is not), one lease runs the tests and 03-06 on the GPU:
#                  CORTEX_NB_CACHE=/tmp/seed cortex-nb reproduce --preset tiny --out /tmp/seed_out --only 00_world 01_vqgm 02_iem
#                  tar czf .gpu_seed.tgz -C /tmp/seed .        (19 MB; 00-02 then take 22 s instead of 17 min)
#
# Measured on an H100 (2026-11-26): nbdev_test about 30-40 s; 00_world 15 s, 01_vqgm 330 s (tokenizer 77, predictor
# 81, CNN 38 and ViT 74 s: the world is rendered on the CPU), 02_iem 51 s. So a 15-minute device budget covers the
# tests and 00-02; for 03-06 bring 00-02's artifacts (SEED_CACHE), run a second lease, or keep CORTEX_NB_CACHE between calls.
set -u
OUT=${OUT:-$PWD/gpu_check_out}; mkdir -p "$OUT"
t0=$(date +%s)
if [ -n "${WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 3
  export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}; export PATH=/tmp/site/bin:$PATH
  PYBIN=$(python3 -c 'import sys; print(sys.executable)')   # a cortex-nb command for the wheels' install
  printf '#!/bin/sh\nexec %s -c "import sys; from cortex_nb.cli import main; sys.exit(main(sys.argv[1:]))" "$@"\n' "$PYBIN" > /tmp/site/bin/cortex-nb
  chmod +x /tmp/site/bin/cortex-nb
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg CORTEX_NB_CACHE=${CORTEX_NB_CACHE:-/tmp/cortex_nb_gpu_cache}
if [ -n "${SEED_CACHE:-}" ]; then mkdir -p "$CORTEX_NB_CACHE" && tar xzf "$SEED_CACHE" -C "$CORTEX_NB_CACHE" || exit 4; fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } 2>&1 | tee "$OUT/env.txt"
( s=$(date +%s); OMP_NUM_THREADS=2 timeout "${TEST_LIMIT:-400}" nbdev_test --n_workers 5 > "$OUT/nbdev_test.log" 2>&1
  echo "nbdev_test rc=$? $(( $(date +%s) - s )) s" >> "$OUT/nbdev_test.log" ) &
s=$(date +%s); end=$(( s + ${REPRO_LIMIT:-420} ))
for nb in paper_figures/[0-9]*.ipynb; do
  nb=$(basename "$nb" .ipynb); left=$(( end - $(date +%s) ))
  [ "$nb" = 01_vqgan ] && continue   # runs on a taming VQGAN only (tests/test_vqgan_run.py covers it)
  [ $left -lt 10 ] && { echo "$nb: no time left" | tee -a "$OUT/repro.log"; continue; }
  mkdir -p "$OUT/tiny"; n0=$(date +%s)
  timeout $left cortex-nb reproduce --preset tiny --out "$OUT/tiny" --only "$nb" > "$OUT/tiny/$nb.log" 2>&1
  rc=$?; echo "$nb rc=$rc $(( $(date +%s) - n0 )) s" | tee -a "$OUT/repro.log"
  [ $rc -ne 0 ] && tail -3 "$OUT/tiny/$nb.log" >> "$OUT/repro.log"
done
wait
grep -A20 "Tests Failed" "$OUT/nbdev_test.log"; tail -1 "$OUT/nbdev_test.log"
# the TIS noise drawn ahead on CPU threads vs inline, paper-size CE on the GPU (unmeasured on a GPU so far)
timeout 120 python3 bench/tis.py --noise-ahead --batch 64 --threads 8 2>&1 | tail -1 | tee "$OUT/tis_noise_ahead.log"
# PACK=1: the run's folder as one archive without figures (for a transfer that takes few files)
[ -n "${PACK:-}" ] && tar czf "$OUT/tiny.tgz" -C "$OUT" --exclude='*.png' tiny && rm -rf "$OUT/tiny"
echo "total $(( $(date +%s) - t0 )) s"
