#!/usr/bin/env bash
# GPU check for a CUDA machine with CuPy, PyTorch and JAX but no TensorFlow (the lent device): the
# CuPy, torch_* and jax_* CAM forms' correctness tests (each against its convention's oracle; the
# a = -0.75 bicubic oracle against F.interpolate) and their latency on the GPU next to the CPU forms. Writes under $OUT (or ./device-out).
set -uo pipefail
out="${OUT:-device-out}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -c "import cupy, numpy, scipy, cv2, torch, jax; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__, 'cv2', cv2.__version__, 'torch', torch.__version__, torch.cuda.is_available(), 'jax', jax.__version__, jax.default_backend())" | tee -a "$out/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/cams tests/test_localization.py tests/test_agreement.py 2>&1 | tail -15 | tee "$out/pytest.txt"
python3 -m harness latency --cams-only --profile default --out "$out/latency" 2>&1 | tail -60
