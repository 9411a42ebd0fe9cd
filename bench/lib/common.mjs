// Shared by the benchmark scripts: argument parsing, medians, PyTorch subprocesses, run metadata.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { buildInfo, cudaStatus, devices } from '../../dist/index.js';

export const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
export const flag = (name) => process.argv.includes(`--${name}`);
export const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];

/** Debian's python3-torch at /usr/bin/python3 on the CPU machines; `python3` on the GPU machine. */
export const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Runs a bench/*.py script and returns its last stdout line as JSON, or { error } when PyTorch is missing or fails. */
export function runPython(script, args, timeoutMs = 600_000) {
  try {
    const path = new URL(`../${script}`, import.meta.url).pathname;
    const out = execFileSync(python, [path, ...args.map(String)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    return JSON.parse(out.trim().split('\n').pop());
  } catch (e) {
    const stderr = String(e.stderr ?? '').trim().split('\n').pop();
    return { error: stderr || String(e.message).split('\n')[0] };
  }
}

function gitCommit() {
  if (process.env.KINTSUGI_COMMIT) return process.env.KINTSUGI_COMMIT;
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null; // the GPU machine has no git: pass KINTSUGI_COMMIT
  }
}

/** Who, where, when: recorded with every result. */
export function runInfo(device) {
  const info = devices().find((d) => d.device === device);
  return {
    date: new Date().toISOString(),
    commit: gitCommit(),
    device,
    deviceName: info?.name ?? device,
    cuda: cudaStatus(),
    build: buildInfo(),
    node: process.version,
  };
}
