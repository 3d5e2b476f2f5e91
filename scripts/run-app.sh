#!/usr/bin/env bash
# One command: set up .venv (+ the offline LLM pack) and serve the Workbench on its offline defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --llm-pack
exec .venv/bin/python app.py "$@"
