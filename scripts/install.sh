#!/usr/bin/env bash
# Install lbt-agents into .venv in the repository root.
#   scripts/install.sh              -> pip install -e ".[serve,train,code,dev]"
#   scripts/install.sh dev          -> pip install -e ".[dev]"   (no vLLM: point agents at any OpenAI endpoint)
#   scripts/install.sh serve        -> pip install -e ".[serve]" (the embedded classroom only: the quickstart)
# Then removes torchvision/torchaudio/torchcodec: pip pulls PyPI builds of them made for another torch,
# and with them present `from transformers import LlamaConfig` fails (operator torchvision::nms does not exist).
# First it installs bubblewrap (Debian package, as root), which the code sandbox needs; when it cannot,
# it prints the command to run and goes on (code tasks then refuse to run until bubblewrap works).
set -euo pipefail

# The code sandbox isolates model-written programs with bubblewrap (`bwrap`). Never fails the install.
install_bubblewrap() {
  if command -v bwrap >/dev/null 2>&1; then
    return 0
  fi
  local sudo="sudo "
  if [[ $(id -u) -eq 0 ]]; then
    sudo=""
    if command -v apt-get >/dev/null 2>&1; then
      echo "installing bubblewrap (the code sandbox's isolation)"
      if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null \
        && command -v bwrap >/dev/null 2>&1; then
        return 0
      fi
      echo "warning: installing bubblewrap with apt-get failed (see above)" >&2
    fi
  fi
  echo "warning: bubblewrap is missing: code tasks and 'lbt sandbox run' refuse to run until you install it:" >&2
  echo "  ${sudo}apt-get install -y bubblewrap    (other systems: install the package 'bubblewrap')" >&2
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXTRAS="${1:-serve,train,code,dev}"
PYTHON="${PYTHON:-python3}"

cd "$ROOT"
install_bubblewrap || true
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
"$VENV_PY" - <<'PY' || true
import sys
from lbt_agents.sandbox import IsolationError, capabilities, resolve_isolation
try:
    resolve_isolation("bwrap")
    print("sandbox: " + capabilities().detail, file=sys.stderr)
except IsolationError as exc:
    print(f"warning: {exc}", file=sys.stderr)
PY
echo "ok: activate with '. .venv/bin/activate', then try 'lbt models list'"
