# llama.cpp for the checks and benchmarks that run selfsup's GGUF exports:
# the npm package node-llama-cpp (pinned), which ships prebuilt llama.cpp CPU
# libraries, installed once into the git-ignored .cache/npm/ (its postinstall
# script is not needed: the prebuilt binaries load as they are). Only the
# binaries of this machine's architecture are installed (--omit=optional
# skips the CUDA, Vulkan and other-architecture packages).
# Source it, then call llama_setup: on success NODE_LLAMA_CPP_DIR is exported
# (the package directory tests/llama_check.mjs imports); on failure it
# returns 1 with the reason and the way to fix it in LLAMA_SETUP_ERROR.
LLAMA_NPM_VERSION=3.21.1
LLAMA_NPM_PREFIX=${LLAMA_NPM_PREFIX:-.cache/npm}
# node-llama-cpp needs Node.js >= 20; Debian 12's nodejs is 18. Where the
# node on PATH is older, Node.js itself comes from the npm registry (the
# official binaries, packaged as node-linux-<arch>), pinned, into .cache/node/.
LLAMA_NODE_VERSION=20.19.5
LLAMA_NODE_PREFIX=${LLAMA_NODE_PREFIX:-.cache/node}

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# Put a Node.js >= 20 first on PATH (installing it with npm when needed).
llama_node() {
  [ "$(node_major)" -ge 20 ] && return 0
  local arch bin log
  case $(uname -m) in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
  bin=$(pwd)/$LLAMA_NODE_PREFIX/node_modules/node-linux-$arch/bin
  if [ ! -x "$bin/node" ]; then
    mkdir -p "$LLAMA_NODE_PREFIX"
    if ! log=$(npm i -E --no-audit --no-fund --prefix "$LLAMA_NODE_PREFIX" "node-linux-$arch@$LLAMA_NODE_VERSION" 2>&1); then
      LLAMA_SETUP_ERROR="node-llama-cpp $LLAMA_NPM_VERSION needs Node.js >= 20, this is $(node --version 2>/dev/null || echo none), and installing node-linux-$arch@$LLAMA_NODE_VERSION from the npm registry failed: $(printf '%s' "$log" | tail -1)"
      return 1
    fi
  fi
  export PATH="$bin:$PATH"
  # Debian's node trusts the system's certificate authorities; this official
  # build trusts only the list it bundles. Give it the system's too, so a
  # network whose TLS proxy's authority is installed system-wide works for
  # it as it does for Debian's npm (else: SELF_SIGNED_CERT_IN_CHAIN).
  if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
  fi
}

llama_setup() {
  local how="install it with: npm i -E --prefix $LLAMA_NPM_PREFIX node-llama-cpp@$LLAMA_NPM_VERSION (needs the npm registry)"
  LLAMA_SETUP_ERROR=""
  if ! command -v npm >/dev/null; then
    LLAMA_SETUP_ERROR="llama.cpp checks need npm (Debian: apt-get install nodejs npm; make check installs them as root); $how"
    return 1
  fi
  llama_node || return 1
  local pkg=$LLAMA_NPM_PREFIX/node_modules/node-llama-cpp arch
  arch=$(node -p 'process.platform + "-" + process.arch')
  if [ "$(node -p "require('./$pkg/package.json').version" 2>/dev/null)" != "$LLAMA_NPM_VERSION" ] ||
     [ ! -d "$LLAMA_NPM_PREFIX/node_modules/@node-llama-cpp/$arch" ]; then
    mkdir -p "$LLAMA_NPM_PREFIX"
    local log
    if ! log=$(npm i -E --omit=optional --no-audit --no-fund --prefix "$LLAMA_NPM_PREFIX" \
        "node-llama-cpp@$LLAMA_NPM_VERSION" "@node-llama-cpp/$arch@$LLAMA_NPM_VERSION" 2>&1); then
      LLAMA_SETUP_ERROR="could not install node-llama-cpp $LLAMA_NPM_VERSION (prebuilt llama.cpp for $arch) from the npm registry: $(printf '%s' "$log" | grep -m1 -i 'err' || printf '%s' "$log" | tail -1); $how"
      return 1
    fi
  fi
  NODE_LLAMA_CPP_DIR=$(cd "$pkg" && pwd)
  export NODE_LLAMA_CPP_DIR
}
