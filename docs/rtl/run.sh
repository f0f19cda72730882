#!/usr/bin/env bash
# The runs behind docs/rtl.md: four Kodak images one after the other, one CPU thread, resumable
# (run it again after an interruption: finished levels are kept). Outputs go to runs/rtl/ and the
# files worth keeping (results.json, rtl.png, every .inr) are copied to docs/rtl/<image>/.
#
#   nohup bash docs/rtl/run.sh > runs/rtl.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
images=(kodim01 kodim05 kodim15 kodim23)
for name in "${images[@]}"; do
  echo "== $name $(date -u +%FT%TZ)"
  python -m inrcodec rtl "../shared/kodak/$name.png" -o "runs/rtl/$name" --regions kmeans:4 --preset cpu --threads 1
  mkdir -p "docs/rtl/$name"
  cp "runs/rtl/$name/results.json" "runs/rtl/$name/rtl.png" runs/rtl/"$name"/*.inr "docs/rtl/$name/"
done
echo "== summary $(date -u +%FT%TZ)"
python -m inrcodec.experiments.routing summarize docs/rtl "${images[@]/#/runs/rtl/}"
