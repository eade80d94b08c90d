#!/usr/bin/env bash
# Installs what is missing, builds, and runs the demo on the default `local` backend
# (config/settings.toml): the AuditService logs the user the UserService created, with the
# publisher's trace id on the line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j2 --target user_audit_demo athomic athomic_provider_local
exec build/release/bin/athomic-demo "$@"
