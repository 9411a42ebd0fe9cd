# Sourced on the GPU machine as the first step of a device command: `source .gpu/env.sh && ...`
# (npm run gpu:pack copies this file to .gpu/env.sh). That machine has no Node.js and reaches no
# registry: this unpacks the carried node binary onto the PATH and the carried bundle (the CUDA addon,
# dist/, compiled scripts, the node_modules the run needs) into the working copy.
mkdir -p /tmp/gpu-node/bin
if [ ! -x /tmp/gpu-node/bin/node ]; then xz -dc .gpu/node.xz > /tmp/gpu-node/bin/node && chmod +x /tmp/gpu-node/bin/node; fi
export PATH=/tmp/gpu-node/bin:$PATH
[ -f .gpu/bundle.tar.xz ] && xz -T0 -dc .gpu/bundle.tar.xz | tar -xf -
[ -f .gpu/commit ] && export KINTSUGI_COMMIT=$(cat .gpu/commit)
# A CUDA case that would skip for want of a GPU fails instead (test/helpers.ts).
export KINTSUGI_EXPECT_GPU=1
echo "gpu-env: node $(node --version), commit ${KINTSUGI_COMMIT:-unknown}; $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"
# Only the node binary travels (no npm, no npx): tools run from their entry files.
vitest() { node node_modules/vitest/vitest.mjs "$@"; }
