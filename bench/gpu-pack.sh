#!/usr/bin/env bash
# `npm run gpu:pack`: builds what a GPU session runs and packs it into .gpu/ (git-ignored), which the
# device tool carries next to the working tree (64 MiB in all). Then one device call, carry [".gpu"]:
#   source .gpu/env.sh && bash bench/gpu-session.sh first-light
#   bash bench/gpu-pack.sh [--no-build] [--no-verify]
# Steps: (1) build dist/ (tsc), the compiled experiments (build:bench) and the addon with CUDA for sm_90
# only (build:native:sm90; the H100 and H200 are sm_90); (2) check that build/Release/kintsugi.node has
# the CUDA backend; (3) .gpu/node.xz: this machine's node binary (the GPU machine has none); (4)
# .gpu/bundle.tar.xz: only what runs there, build/Release (not build/cmake or build/emu), dist, the
# compiled lib/ and bench/ scripts, and node_modules without the build-time packages (cmake-js, tar,
# prebuildify, node-addon-api's headers, type definitions, TypeScript's compiler beyond
# lib/typescript.js, which the golden tables' loader needs), lightningcss (CSS: vitest runs no CSS
# here) and source maps; (5) .gpu/env.sh and .gpu/commit; (6) the sizes: .gpu/ plus the files that
# travel anyway must stay well under the tool's 64 MiB (fails above 48 MiB); (7) unless --no-verify:
# unpack into an empty copy of the committed tree and run env.sh and the first-light dry run there, so
# a bundle that lacks something fails here, not in the GPU session.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=1 verify=1
for a in "$@"; do
  case $a in
    --no-build) build=0 ;;
    --no-verify) verify=0 ;;
    *) echo "usage: bash bench/gpu-pack.sh [--no-build] [--no-verify]"; exit 2 ;;
  esac
done
if ((build)); then
  npm run build:ts
  npm run build:bench
  npm run build:native:sm90
fi
node -e "
  const b = require('./build/Release/kintsugi.node').buildInfo();
  if (!b.cuda) { console.error('gpu-pack: build/Release/kintsugi.node has no CUDA backend: run npm run build:native:sm90 (needs nvcc)'); process.exit(1); }
  console.log('gpu-pack: addon with CUDA for', b.cudaArchitectures);"

mkdir -p .gpu
grep -qx '/.gpu/' .git/info/exclude 2> /dev/null || echo '/.gpu/' >> "$(git rev-parse --git-path info/exclude)"
node_bin=$(readlink -f "$(command -v node)")
if [[ ! -f .gpu/node.xz || $node_bin -nt .gpu/node.xz ]]; then
  echo "gpu-pack: compressing node $(node --version) (once; about a minute)"
  xz -T0 -6 -c "$node_bin" > .gpu/node.xz.part && mv .gpu/node.xz.part .gpu/node.xz
fi
paths=(build/Release/kintsugi.node dist)
while IFS= read -r f; do paths+=("$f"); done < <(git ls-files --others --ignored --exclude-standard -- 'lib/*.js' 'lib/**/*.js' 'bench/*.js' 'bench/**/*.js' 'scripts/*.js')
tar -cf .gpu/bundle.tar \
  --exclude='node_modules/typescript' --exclude='node_modules/@types' --exclude='node_modules/cmake-js' \
  --exclude='node_modules/prebuildify' --exclude='node_modules/node-api-headers' --exclude='node_modules/.cache' \
  --exclude='node_modules/.package-lock.json' --exclude='node_modules/lightningcss*' --exclude='node_modules/tar' \
  --exclude='node_modules/node-addon-api' --exclude='*.map' "${paths[@]}" node_modules
# Appended without the excludes (tar applies them to named files too): transpileModule's two files.
tar -rf .gpu/bundle.tar node_modules/typescript/package.json node_modules/typescript/lib/typescript.js
xz -T0 -6 -c .gpu/bundle.tar > .gpu/bundle.tar.xz.part
rm .gpu/bundle.tar
mv .gpu/bundle.tar.xz.part .gpu/bundle.tar.xz
cp bench/gpu-env.sh .gpu/env.sh
git rev-parse --short=12 HEAD > .gpu/commit
if [[ -n $(git status --porcelain --untracked-files=no) ]]; then echo "gpu-pack: note: the working tree has uncommitted changes; .gpu/commit says $(cat .gpu/commit)"; fi

# What travels: tracked and untracked-not-ignored files, plus .gpu/.
tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 -r du -cb 2> /dev/null | tail -n 1 | cut -f1)
pack=$(du -cb .gpu/* | tail -n 1 | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "gpu-pack: .gpu/ $(mib "$pack") (node $(mib "$(stat -c %s .gpu/node.xz)"), bundle $(mib "$(stat -c %s .gpu/bundle.tar.xz)")) + working tree $(mib "$tree") = $(mib $((pack + tree))) of the 64 MiB the device tool carries"
if ((pack + tree > 48 * 1048576)); then echo "gpu-pack: FAIL: over 48 MiB, too close to the 64 MiB limit"; exit 1; fi

if ((verify)); then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  git archive HEAD | tar -xf - -C "$tmp"
  cp -r .gpu "$tmp/.gpu"
  echo "gpu-pack: verifying the bundle in an empty copy of HEAD ($tmp): env.sh, then the first-light dry run (about a minute)"
  (
    cd "$tmp"
    # shellcheck disable=SC1091
    source .gpu/env.sh > /dev/null
    unset KINTSUGI_EXPECT_GPU  # no GPU here: CUDA cases skip instead of failing
    if ! OUT=$tmp/out FIRST_LIGHT_WORK=$tmp/work bash bench/gpu-session.sh first-light --dry-run > "$tmp/verify.log" 2>&1 ||
      ! node bench/first-light/check-dry-run.mjs "$tmp/out"; then
      tail -30 "$tmp/verify.log"
      echo "gpu-pack: FAIL: first light does not run from the bundle"
      exit 1
    fi
  )
fi
echo "gpu-pack: ready. Device call: carry [\".gpu\"], command: source .gpu/env.sh && bash bench/gpu-session.sh first-light"
