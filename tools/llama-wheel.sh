#!/usr/bin/env bash
# Install llama-cpp-python (the version pinned in the lock) into a venv, from a wheel
# built once per machine and kept outside the project, keyed by everything that shapes
# the build.
#
# Why not pip's own cache: pip keys a built wheel by the sdist alone, not by CMAKE_ARGS,
# so a wheel built with other flags (or on a machine with other CPU features) would be
# reused silently. llama.cpp's default build is `-march=native`, and on a CPU with AMX
# that build crashes in ggml_backend_amx_mul_mat where the kernel does not grant AMX to
# the process (seen here: SIGSEGV on the first decode). So the build is portable: no
# -march=native, AVX2/FMA/F16C on x86-64, the generic target elsewhere.
#
# usage: tools/llama-wheel.sh VENV LOCKFILE   (the version pinned there)
#        tools/llama-wheel.sh VENV latest     (the newest release, unconstrained)
set -euo pipefail
venv=$1
lock=$2
if [ "$lock" = latest ]; then
  version=$("$venv/bin/python" -m pip index versions llama-cpp-python 2>/dev/null | sed -n 's/^llama-cpp-python (\(.*\))$/\1/p')
  lock=/dev/null
else
  version=$(sed -n 's/^llama-cpp-python==//p' "$lock")
fi
[ -n "$version" ] || { echo "no llama-cpp-python version found (in $lock)" >&2; exit 1; }
arch=$(uname -m)
case "$arch" in
  x86_64|amd64) flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" ;;
  *) flags="-DGGML_NATIVE=OFF" ;;
esac
py=$("$venv/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
key=$(printf '%s %s %s %s' "$version" "$arch" "$py" "$flags" | sha256sum | cut -c1-16)
dir="${XDG_CACHE_HOME:-$HOME/.cache}/deltastream/wheels/llama-cpp-python-$version-$key"
if ! ls "$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $version ($arch, portable; 4-9 minutes on 2 cores) into $dir"
  mkdir -p "$dir.tmp"
  CMAKE_ARGS="$flags" PIP_CONSTRAINT="$lock" "$venv/bin/python" -m pip wheel --quiet \
    --no-deps --no-cache-dir --wheel-dir "$dir.tmp" "llama-cpp-python==$version"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
PIP_CONSTRAINT="$lock" "$venv/bin/python" -m pip install --quiet "$dir"/llama_cpp_python-*.whl
