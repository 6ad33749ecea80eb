#!/usr/bin/env bash
# Compile-checks every CUDA source under csrc/ with nvcc against the installed torch's headers.
# Needs no GPU; a CPU build of torch lacks one generated header, stubbed in .ci/include.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NVCC=${NVCC:-$(command -v nvcc || true)}
if [ -z "$NVCC" ]; then echo "check_cuda: nvcc not found, skipping CUDA compile check"; exit 0; fi
TORCH=$($PY -c 'import os, torch; print(os.path.dirname(torch.__file__))')
PYINC=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
n=0
while IFS= read -r -d '' cu; do
  n=$((n + 1))
  if "$NVCC" -std=c++20 -O1 --expt-relaxed-constexpr -c "$cu" -o "$out/$(basename "$cu").o" \
      -I .ci/include -I csrc -I "$TORCH/include" -I "$TORCH/include/torch/csrc/api/include" -I "$PYINC" \
      -DNOISYSEG_WITH_CUDA -DTORCH_EXTENSION_NAME=_C -DTORCH_API_INCLUDE_EXTENSION_H \
      -D_GLIBCXX_USE_CXX11_ABI=1 -Xcompiler -fPIC -gencode arch=compute_90,code=sm_90 \
      -diag-suppress 20012,20014,177 2>"$out/log"; then
    echo "check_cuda: ok   $cu"
  else
    echo "check_cuda: FAIL $cu"; cat "$out/log"; status=1
  fi
done < <(find csrc -name '*.cu' -print0 | sort -z)
echo "check_cuda: $n CUDA sources checked"
exit $status
