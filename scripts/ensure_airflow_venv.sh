#!/usr/bin/env bash
# Create (once) the virtualenv that validates generated Airflow DAGs: apache-airflow 3.3.2 on its own,
# because Airflow moves fastapi/protobuf versions that the Feast and Triton client envs pin differently,
# with the cncf.kubernetes provider that batch DAGs on Kubernetes import (KubernetesPodOperator).
# Usage: scripts/ensure_airflow_venv.sh [VENV_DIR]   (default .venv-airflow; env PYTHON picks the interpreter)
# Idempotent: a venv whose marker matches the pin is reused as is.
set -euo pipefail
PIN="apache-airflow==3.3.2 apache-airflow-providers-cncf-kubernetes==10.25.0"
VENV_DIR="${1:-${ARCHGEN_AIRFLOW_VENV:-.venv-airflow}}"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
MARKER="$VENV_DIR/.installed"
if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$PIN" && -x "$VENV_DIR/bin/python" ]]; then
  exit 0
fi
echo "==> creating $VENV_DIR ($PIN, for DagBag validation of generated DAGs)" >&2
# another process may be creating it at the same time (parallel test workers): serialise with a lock
mkdir -p "$VENV_DIR"
exec 9>"$VENV_DIR/.lock"
flock 9
if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$PIN" ]]; then
  exit 0
fi
test -x "$VENV_DIR/bin/python" || "$PY" -m venv "$VENV_DIR"
# shellcheck disable=SC2086  # the pin is several requirements
"$VENV_DIR/bin/pip" install --disable-pip-version-check -q $PIN
"$VENV_DIR/bin/python" -c "import airflow.sdk, airflow.providers.standard.operators.bash, \
airflow.providers.cncf.kubernetes.operators.pod" >/dev/null
echo "$PIN" > "$MARKER"
