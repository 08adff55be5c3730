#!/usr/bin/env bash
# GPU check for the exported CAM model: time docs/device/cam_seed_vgg16_224.keras (or $1) end to
# end under Keras' JAX and PyTorch backends at batch 1, 8 and 32 (a GPU machine with JAX and
# PyTorch but no TensorFlow). Make the file first on a machine with TensorFlow:
#   cam-harness export --profile seed --convention seed --out docs/device/cam_seed_vgg16_224.keras
# (or --profile default for the 128 px synthetic model). Writes under $OUT (or ./device-out).
set -uo pipefail
out="${OUT:-device-out}"
file="${1:-docs/device/cam_seed_vgg16_224.keras}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -m pip install -q "keras>=3.3,<4" 2>&1 | tail -1
for backend in jax torch; do
    KERAS_BACKEND=$backend python3 tools/export_gpu_timing.py "$file" "$out/export-$backend.json" 2>&1 | tail -5
done
