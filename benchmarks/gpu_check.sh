#!/usr/bin/env bash
# llp's GPU run, prepared to run in one go on a machine with CUDA whose python3 already
# has PyTorch, pytest, scikit-learn, pandas, rich and typer (and no network):
#
#   bash benchmarks/gpu_check.sh            # from the repository root
#
# It runs every test marked `gpu` (skipped on machines without CUDA), then
# benchmarks/device.py on the CPU and CUDA, and leaves the logs and the benchmark's JSON
# in $OUT (or ./gpu_check_out where OUT is not set). The rest of llp's dependencies
# travel as wheels in .whl/ (ignored by git), made on a machine with network for the
# target's Python (3.12 here):
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
#     ConfigSpace==1.2.2 more-itertools==11.2.1 SQLAlchemy==2.1.9 alembic==1.20.1 \
#     Mako==1.4.3 dask==2026.8.0 distributed==2026.8.0 tornado==6.6.1 tblib==3.2.2 \
#     zict==3.0.0 partd==1.4.2 locket==1.0.0
set -uo pipefail
out="${OUT:-gpu_check_out}"
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/llp-site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/llp-site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
nvidia-smi 2>&1 | tee "$out/nvidia_smi.log"
python3 -c "import torch, llp; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
    2>&1 | tee "$out/versions.log"
python3 -m pytest -m gpu -rs -p no:cacheprovider tests 2>&1 | tee "$out/gpu_tests.log"
tests=$?
python3 benchmarks/device.py 2>&1 | tee "$out/device.log"
bench=$?
cp benchmarks/results/device_*.json "$out/" 2>/dev/null
echo "gpu tests exit $tests, device benchmark exit $bench"
exit $(( tests != 0 || bench != 0 ))
