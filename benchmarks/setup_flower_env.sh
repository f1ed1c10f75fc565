#!/usr/bin/env bash
# Create benchmarks/.venv-flower: a virtual environment of its own for the Flower side of W1.
#
# flwr[simulation]==1.41.0 pins ray/protobuf/rich/typer/packaging to versions that would
# downgrade the project's environment, so Flower lives in this separate venv instead.
#
# Usage: bash benchmarks/setup_flower_env.sh        (PYTHON=python3.11 to pick the interpreter)
# torch is pinned: an unpinned `pip install torch` pulls GBs of CUDA wheels.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-flower"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
FLWR_VERSION="${FLWR_VERSION:-1.41.0}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --upgrade pip
# CPU torch first (exact pin), then Flower; Flower must not be allowed to replace torch.
"${PIP[@]}" install "torch==${TORCH_VERSION}"
"${PIP[@]}" install "flwr[simulation]==${FLWR_VERSION}" numpy psutil "torch==${TORCH_VERSION}"
"${PIP[@]}" check || echo "warning: pip check reported conflicts (see above)" >&2
"$VENV/bin/python" - <<'EOF'
import flwr, numpy, psutil, ray, torch
print(f"flwr {flwr.__version__}  ray {ray.__version__}  torch {torch.__version__}  "
      f"numpy {numpy.__version__}  psutil {psutil.__version__}")
EOF
echo "ready: $VENV/bin/python"
