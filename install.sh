#!/usr/bin/env bash
# Installs everything the project needs (offline-capable registries only: PyPI).
set -euo pipefail
cd "$(dirname "$0")"
python -m pip install -q -r requirements.txt
python -m pip install -q --no-deps -r requirements-nodeps.txt
