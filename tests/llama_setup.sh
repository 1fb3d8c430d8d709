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

llama_setup() {
  local how="install it with: npm i -E --prefix $LLAMA_NPM_PREFIX node-llama-cpp@$LLAMA_NPM_VERSION (needs the npm registry)"
  LLAMA_SETUP_ERROR=""
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    LLAMA_SETUP_ERROR="llama.cpp checks need Node.js >= 20 with npm (node-llama-cpp $LLAMA_NPM_VERSION); $how"
    return 1
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -lt 20 ]; then
    LLAMA_SETUP_ERROR="node-llama-cpp $LLAMA_NPM_VERSION needs Node.js >= 20, this is $(node --version) (Debian 12's nodejs is 18: use nodesource's or nodejs.org's build)"
    return 1
  fi
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
