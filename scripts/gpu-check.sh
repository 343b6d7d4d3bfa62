#!/usr/bin/env bash
# The GPU check (see ../shared/gpu.md): run on a machine with a CUDA GPU, from the project root, with the project
# on PYTHONPATH (it is not pip-installed there; `python3 -m benchmark.cli` stands for `bench`).
#
#   1. the CUDA-marked tests (bf16 autocast and pinned memory in extraction, the fp16 grad scaler, bf16 training);
#   2. `bench perf extract` on a real-size encoder with random weights (ViT-B/16, batch 256): pipeline/forward
#      ratio and img/s, warm and cold;
#   3. `bench perf finetune --random-weights`: LoRA vs full vs frozen forward img/s and peak memory;
#   4. two-process torchrun of extraction and of fine-tuning on the GPU(s) (NCCL, or gloo when NCCL refuses two
#      processes on one GPU), each compared with one process.
#
# Every figure goes to $OUT (default ./gpu-results) as JSON; summary.json gathers them. A step that fails is
# recorded and the script goes on. GPU_CHECK_DEVICE=cpu GPU_CHECK_QUICK=1 runs the same steps, tiny, on a CPU
# machine (to check the script itself).
set -uo pipefail
OUT="${OUT:-./gpu-results}"
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
QUICK="${GPU_CHECK_QUICK:-0}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
export PYTHONUNBUFFERED=1
STATUS="$OUT/status.txt"
: > "$STATUS"

if [ "$QUICK" = 1 ]; then
  EXTRACT_MODEL=tiny-clip; EXTRACT_N=64; EXTRACT_BATCH=16; FT_MODEL=tiny-clip; FT_BATCH=16; DATA_N=96
else
  EXTRACT_MODEL=clip-vit-b16; EXTRACT_N=2048; EXTRACT_BATCH=256; FT_MODEL=clip-vit-b16; FT_BATCH=64; DATA_N=600
fi

step() {  # step NAME COMMAND...: run, log to $OUT/NAME.log, record ok/failed with the seconds it took
  local name=$1; shift
  local started=$SECONDS
  echo "== $name: $*"
  if "$@" > "$OUT/$name.log" 2>&1; then echo "$name ok $((SECONDS - started))s" | tee -a "$STATUS"
  else echo "$name FAILED $((SECONDS - started))s (see $name.log)" | tee -a "$STATUS"; fi
}

step environment "$PY" - "$OUT/environment.json" <<'EOF'
import json, platform, sys, torch
info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(), "devices": torch.cuda.device_count()}
if torch.cuda.is_available():
    props = torch.cuda.get_device_properties(0)
    info.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1),
                bf16=torch.cuda.is_bf16_supported(), nccl=torch.distributed.is_nccl_available())
json.dump(info, open(sys.argv[1], "w"), indent=2)
print(json.dumps(info))
EOF

if [ "$DEVICE" = cuda ]; then
  step cuda-tests "$PY" -m pytest -q -m cuda tests/test_cuda.py --junitxml "$OUT/cuda-tests.xml"
fi

step perf-extract sh -c "'$PY' -m benchmark.cli --workdir '$WORK/perf' perf extract --model $EXTRACT_MODEL \
  --device $DEVICE --batch-size $EXTRACT_BATCH --n $EXTRACT_N --image-size 512 --workers 8 --repeats 3 --json \
  > '$OUT/perf-extract.json'"
step perf-finetune sh -c "'$PY' -m benchmark.cli perf finetune --model $FT_MODEL --device $DEVICE --random-weights \
  --batch-size $FT_BATCH --steps 5 --rounds 3 --json > '$OUT/perf-finetune.json'"

# torchrun: 2 processes vs 1, on a small synthetic dataset with a tiny encoder (the mechanics, not the speed)
DATA="$WORK/nih"
step synth "$PY" -m benchmark.cli data synth --out "$DATA" --n "$DATA_N" --size 64 --seed 0
torchrun_step() {  # torchrun_step NAME BACKEND ARGS...: 2 processes with that backend
  local name=$1 backend=$2; shift 2
  step "$name" env BENCH_DIST_BACKEND="$backend" "$PY" -m torch.distributed.run --standalone --nproc-per-node 2 \
    -m benchmark.cli "$@"
}
step extract-one "$PY" -m benchmark.cli --workdir "$WORK/one" extract --model tiny-clip --root "$DATA" \
  --device "$DEVICE" --batch-size 16
BACKEND=nccl; [ "$DEVICE" = cpu ] && BACKEND=gloo
torchrun_step extract-two-$BACKEND $BACKEND --workdir "$WORK/two" extract --model tiny-clip --root "$DATA" \
  --device "$DEVICE" --batch-size 16
if grep -q "extract-two-nccl FAILED" "$STATUS"; then
  BACKEND=gloo  # NCCL refuses two processes on one GPU ("duplicate GPU"); gloo carries CUDA tensors too
  torchrun_step extract-two-gloo gloo --workdir "$WORK/two" extract --model tiny-clip --root "$DATA" \
    --device "$DEVICE" --batch-size 16
fi
FT="finetune --model tiny-clip-rn --task nofinding --method full --epochs 2 --batch-size 8 \
  --device $DEVICE --no-progress --seed 0"
step finetune-one sh -c "'$PY' -m benchmark.cli --workdir '$WORK/one' $FT"
torchrun_step finetune-two-$BACKEND $BACKEND --workdir "$WORK/two" $FT

step compare "$PY" - "$WORK" "$OUT/torchrun.json" <<'EOF'
import json, sys
from pathlib import Path
import numpy as np
work, out = Path(sys.argv[1]), sys.argv[2]
result = {}
try:
    from cache.embeddings import EmbeddingStore
    stores = {name: EmbeddingStore.open(next((work / name / "stores" / "tiny-clip").glob("*.h5"))) for name in ("one", "two")}
    a, b = (stores[n].image_embeddings().astype(np.float32) for n in ("one", "two"))
    result["extract_max_abs_difference"] = float(np.nanmax(np.abs(a - b)))
    result["extract_identity_equal"] = stores["one"].identity_digest == stores["two"].identity_digest
except Exception as error:  # a step before failed: say so in the figures
    result["extract_error"] = f"{type(error).__name__}: {error}"
try:
    from benchmark.core.runs import read_predictions
    frames = {name: read_predictions(next((work / name / "runs" / "nofinding").glob("*/predictions.parquet")))[0]
              for name in ("one", "two")}
    cols = [c for c in frames["one"].columns if c.startswith("p_")]
    diff = np.abs(frames["one"].select(cols).to_numpy() - frames["two"].select(cols).to_numpy())
    result["finetune_max_probability_difference"] = float(diff.max())
except Exception as error:
    result["finetune_error"] = f"{type(error).__name__}: {error}"
json.dump(result, open(out, "w"), indent=2)
print(json.dumps(result))
EOF

"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
summary = {"status": (out / "status.txt").read_text().splitlines()}
for name in ("environment", "perf-extract", "perf-finetune", "torchrun"):
    path = out / f"{name}.json"
    try:
        summary[name] = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        summary[name] = f"missing ({error})"
(out / "summary.json").write_text(json.dumps(summary, indent=2))
print(json.dumps(summary, indent=2)[:4000])
EOF
