# Sourced: make sure the tools the build and the weight setup need are present.
need() { command -v "$1" >/dev/null 2>&1; }
if ! need cargo; then
  echo "cargo is missing: install Rust (https://rustup.rs) first" >&2
  exit 1
fi
if ! need npm; then
  echo "npm is missing; installing Node.js and npm from Debian" >&2
  if need apt-get; then
    (apt-get update -qq && apt-get install -y -qq nodejs npm) >&2
  else
    echo "install Node.js and npm, then run this again" >&2
    exit 1
  fi
fi
if ! rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown >&2
fi
