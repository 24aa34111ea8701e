#!/usr/bin/env bash
# Installs Swagger UI's assets (swagger-ui-dist, pinned in package-lock.json) for GET /docs:
#   install_assets.sh SRC_DIR DEST_DIR [NPM]
# into DEST_DIR/node_modules/swagger-ui-dist with `npm ci`, skipped while the lock file is
# unchanged since the last install. Never fails the build: without npm or the npm registry
# it says so, and the service's /docs page explains how to get the assets.
src=$1 dest=$2 npm=${3:-npm}
stamp=$dest/node_modules/.todo-npm-ci.stamp
if [ -f "$stamp" ] && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
  exit 0
fi
mkdir -p "$dest"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
if ! command -v "$npm" >/dev/null 2>&1; then
  echo "WARNING: npm not found: /docs will have no Swagger UI (install Node.js and npm, then build again)" >&2
  exit 0
fi
if (cd "$dest" && "$npm" ci --no-audit --no-fund --loglevel=error >npm-ci.log 2>&1); then
  touch "$stamp"
else
  echo "WARNING: npm ci for Swagger UI failed (log: $dest/npm-ci.log): /docs will explain how to get the assets" >&2
fi
exit 0
