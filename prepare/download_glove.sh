#!/usr/bin/env bash
# Download the 'glove' asset (see prepare/download.py --help). Works from any directory; the destination
# root defaults to the repository root, --root DIR overrides; $PYTHON picks the interpreter.
set -euo pipefail
exec "${PYTHON:-python}" "$(dirname "$0")/download.py" glove "$@"
