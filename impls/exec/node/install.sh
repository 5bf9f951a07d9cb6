#!/bin/sh
# Installs the node adapter's dependencies (redlock, ioredis) into impls/exec/node/node_modules.
# Idempotent: does nothing when node_modules already matches package-lock.json.
set -eu
cd "$(dirname "$0")"
if [ -f package-lock.json ]; then
  # npm writes node_modules/.package-lock.json on install; identical content = up to date.
  if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] &&
     node -e 'const a=require("./package-lock.json").packages, b=require("./node_modules/.package-lock.json").packages;
              for (const k of Object.keys(a)) if (k && (!b[k] || b[k].version !== a[k].version)) process.exit(1);' 2>/dev/null; then
    echo "node_modules is up to date"
    exit 0
  fi
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
