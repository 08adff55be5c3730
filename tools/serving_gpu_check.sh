#!/usr/bin/env bash
# GPU timing of served artifacts (issue 18, item 6): ONNX Runtime with the CUDA provider, and the
# TF SavedModel where TensorFlow is installed, through harness/serving_worker.py (it needs no
# cam-bench). Artifacts are made on a machine with TensorFlow and the export extra, e.g.
#   cam-harness export --profile smoke --convention seed --format onnx --out docs/device/cam_seed.onnx
#   cam-harness export ... --format tf_saved_model --out docs/device/cam_seed_saved_model
#   cam-harness export ... --format onnx --precision fp16 --out docs/device/cam_seed_fp16.onnx   (issue 35)
# (all the artifacts given are timed together, interleaved, so fp16 against fp32 is one run's ratio)
# Needs on the GPU machine: numpy, onnxruntime-gpu (CUDAExecutionProvider), optionally tensorflow.
# Writes under $OUT (or ./device-out). Usage: tools/serving_gpu_check.sh ARTIFACT [ARTIFACT ...]
set -uo pipefail
out="${OUT:-device-out}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())" \
    | tee "$out/onnxruntime.txt" || echo "onnxruntime not installed: no ONNX timing" | tee "$out/onnxruntime.txt"
artifacts="["
for a in "$@"; do
    case "$a" in
        *.onnx) fmt=onnx ;;
        *.tflite) fmt=litert ;;
        *.keras) fmt=keras ;;
        *) fmt=tf_saved_model ;;
    esac
    artifacts="$artifacts{\"name\": \"$(basename "$a")\", \"format\": \"$fmt\", \"path\": \"$a\", \"kind\": \"cam\"},"
done
artifacts="${artifacts%,}]"
python3 - "$out" "$artifacts" <<'PY'
import json, sys
import numpy as np
out, artifacts = sys.argv[1], json.loads(sys.argv[2])
shape = (8, 80, 80, 3)  # the smoke model's input; change for other artifacts
np.savez(f"{out}/in.npz", image=np.random.default_rng(0).random(shape, dtype=np.float32),
         class_index=np.full(shape[0], -1, np.int32))
json.dump({"inputs": f"{out}/in.npz", "out": f"{out}/out.npz", "artifacts": artifacts, "batches": [1, 8, 32],
           "target_seconds": 1.0, "min_rounds": 10}, open(f"{out}/job.json", "w"))
PY
CAM_HARNESS_ORT_PROVIDERS=CUDAExecutionProvider,CPUExecutionProvider \
    python3 -I harness/serving_worker.py "$out/job.json" > "$out/served-gpu.json" 2> "$out/served-gpu.err"
echo "exit $?; timings in $out/served-gpu.json"
