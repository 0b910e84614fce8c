# Sourced by the project's scripts: one cache outside the repo for cargo's target dir, fetched
# packages and converted weights, so that a fresh clone on the same machine rebuilds nothing.
export FACEMTL_CACHE="${FACEMTL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/facemtl}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FACEMTL_CACHE/target}"
export FACEMTL_DATA="${FACEMTL_DATA:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/data}"
export FACEMTL_BIN="$CARGO_TARGET_DIR/release/facemtl"
mkdir -p "$FACEMTL_CACHE"
