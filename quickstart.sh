#!/usr/bin/env bash
# One command for the embedded default: installs the requirements, then runs every stage
# that exists so far on the synthetic dataset (offline). Stages whose outputs exist are skipped.
set -euo pipefail
cd "$(dirname "$0")"
bash install.sh
python quickstart.py "$@"
