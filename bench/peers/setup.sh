#!/usr/bin/env bash
# Create the peers' virtual environments for bench/engine_bench.py, bench/http_bench.py and
# bench/latency_sweep.py. Idempotent.
#
#   bash bench/peers/setup.sh          # from the repository root (or anywhere)
#   .venv/bin/python bench/engine_bench.py --count 1000000 --repeats 3
#
# The peers are benchmark-only: they go into bench/.peers/ (git-ignored), never
# into the project's .venv or its dependencies.
#
#   bench/.peers/venv311  Python 3.11  lightmatchingengine (pure Python)
#   bench/.peers/venv312  Python 3.12  matching-engine[gateway]==0.1.1 (needs >= 3.12)
#
# Interpreters: PY311 and PY312 override the defaults (python3.11 on PATH;
# /root/.pyenv/versions/3.12.1/bin/python, else python3.12 on PATH). A peer
# whose interpreter is missing is skipped with a message; the harness then
# reports it as skipped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
peers_dir="$(dirname "$here")/.peers"
mkdir -p "$peers_dir"

LME_SPEC="lightmatchingengine==2019.1.4"
# With its own FastAPI gateway (`python -m matching_engine serve`) for bench/http_bench.py and
# bench/latency_sweep.py, on the same FastAPI, uvicorn and pydantic releases as the service.
ME_SPEC="matching-engine[gateway]==0.1.1 fastapi==0.163.2 uvicorn[standard]==0.54.0 pydantic==2.14.3"

PY311="${PY311:-$(command -v python3.11 || true)}"
if [[ -z "${PY312:-}" ]]; then
    if [[ -x /root/.pyenv/versions/3.12.1/bin/python ]]; then
        PY312=/root/.pyenv/versions/3.12.1/bin/python
    else
        PY312="$(command -v python3.12 || true)"
    fi
fi

# make_venv DIR PYTHON MODULE SPEC: create DIR with PYTHON and install SPEC unless MODULE imports.
make_venv() {
    local dir="$1" py="$2" module="$3" spec="$4"
    if [[ -x "$dir/bin/python" ]] && "$dir/bin/python" -c "import $module" 2>/dev/null; then
        echo "setup.sh: $dir ready ($("$dir/bin/python" -V 2>&1), $spec)"
        return 0
    fi
    if [[ -z "$py" || ! -x "$(command -v "$py" || echo "$py")" ]]; then
        echo "setup.sh: no interpreter for $dir ($spec): skipped" >&2
        return 0
    fi
    [[ -x "$dir/bin/python" ]] || "$py" -m venv "$dir"
    # shellcheck disable=SC2086 # a spec may name several packages
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check $spec
    echo "setup.sh: $dir installed ($("$dir/bin/python" -V 2>&1), $spec)"
}

make_venv "$peers_dir/venv311" "$PY311" lightmatchingengine "$LME_SPEC"
make_venv "$peers_dir/venv312" "$PY312" "matching_engine.gateway.app, uvicorn" "$ME_SPEC"
