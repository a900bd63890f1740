#!/usr/bin/env bash
# Build llama-cpp-python once into a wheel cache outside the repo's venv (~10 minutes of C++ on 2 cores),
# for benchmarks/decode.py's peer. Later runs find the wheel and only print its path.
# Usage: bash scripts/build-llama-cpp.sh [python]   → prints the wheel's path on stdout.
set -euo pipefail
PY=${1:-python3}
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
# "noamx": builds before AMX was switched off segfault on AMX CPUs; a new folder keeps them from being reused.
WHEELS=${R1AGENT_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/r1agent/wheels/noamx}
mkdir -p "$WHEELS"
found=$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$found" ]; then
  echo "building llama-cpp-python $VERSION into $WHEELS (once; ~10 minutes)" >&2
  # Native CPU kernels (AVX2/AVX-512 where the CPU has them), no CUDA, no example binaries: this is the
  # fastest llama.cpp on this machine, which is what a fair peer must be. Except AMX: on a 2-core Xeon VM
  # with AMX a native build crashed (SIGSEGV in ggml_backend_amx_mul_mat) in its first decode, so its AMX
  # kernels are compiled out. --no-cache-dir: pip would otherwise reuse a wheel built with other flags.
  CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
-DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' -DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' \
-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF" \
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    "$PY" -m pip wheel --quiet --no-cache-dir --no-deps --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -w "$WHEELS" >&2
  found=$(ls "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl | head -n 1)
fi
echo "$found"
