#!/usr/bin/env bash
# Prerequisite of tests/it/yaml11.rs: PyYAML, a YAML 1.1 reader (it resolves `yes`, `0644` or
# `2024-01-01` as kubectl's go-yaml v2 does), to read back what capi-manage writes.
# Idempotent: nothing happens when python3 already imports yaml.
set -euo pipefail
if python3 -c 'import yaml' 2>/dev/null; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get install -y --no-install-recommends python3-yaml >/dev/null
else
  python3 -m pip install --user --quiet PyYAML
fi
python3 -c 'import yaml'
