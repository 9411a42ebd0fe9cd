// Part 1 of GPU first light: what the addon was built with and what CUDA it sees, as one JSON object
// on stdout (run.sh saves it). Exit status 1 when KINTSUGI_EXPECT_GPU=1 and no CUDA device is usable.
import { buildInfo, cudaStatus, devices } from '../../dist/index.js';

const info = { date: new Date().toISOString(), node: process.version, build: buildInfo(), cuda: cudaStatus(), devices: devices() };
console.log(JSON.stringify(info, null, 2));
if (process.env.KINTSUGI_EXPECT_GPU === '1' && !(info.cuda.deviceCount > 0)) {
  console.error(`first-light info: a GPU was expected (KINTSUGI_EXPECT_GPU=1) but CUDA says: ${info.cuda.reason ?? 'no device'}`);
  process.exit(1);
}
