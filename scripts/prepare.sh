# Sourced by the project's commands: the environment, the tools, the release build and the
# pretrained weights (all cached in $FACEMTL_CACHE, so a second run does nothing).
source scripts/env.sh
source scripts/tools.sh
echo "cache: $FACEMTL_CACHE  data: $FACEMTL_DATA" >&2
cargo build --release -p facemtl-trainer
"$FACEMTL_BIN" setup
