// Shared by the benchmark scripts: argument parsing, medians, PyTorch subprocesses, run metadata.
import { execFileSync, spawnSync } from 'node:child_process';
import { buildInfo, cudaStatus, devices } from '../../dist/index.js';

export const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
export const flag = (name) => process.argv.includes(`--${name}`);
export const median = (a) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];

/**
 * The first interpreter that can `import torch`: KINTSUGI_PYTHON if set, then `python3` on the PATH (the
 * GPU machine's /opt/torch/.venv/bin/python3), then /usr/bin/python3 (Debian's python3-torch on the CPU
 * machines). A file merely existing proves nothing: the GPU machine's /usr/bin/python3 has no torch.
 * Probed once, on first use; null when none has torch (the PyTorch rows then say so).
 */
export function pythonCandidates(env = process.env) {
  return [...new Set([env.KINTSUGI_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean))];
}

export function probePython(candidates = pythonCandidates(), timeoutMs = 60_000) {
  const tried = [];
  for (const exe of candidates) {
    const r = spawnSync(exe, ['-c', 'import torch, sys; print(sys.executable, torch.__version__)'], {
      encoding: 'utf8',
      timeout: Math.max(1, Math.floor(timeoutMs)),
    });
    if (r.status === 0) return { python: exe, torch: r.stdout.trim().split(' ').pop(), tried };
    tried.push(`${exe}: ${r.error ? (r.error.code ?? r.error.message) : r.stderr.trim().split('\n').pop() || `exit ${r.status}`}`);
  }
  return { python: null, torch: null, tried };
}

let probed;
/** The interpreter with torch (see probePython), probed once; null when there is none. */
export function torchPython() {
  probed ??= probePython();
  return probed;
}

/** Runs a bench/*.py script and returns its last stdout line as JSON, or { error } when PyTorch is missing or fails. */
export function runPython(script, args, timeoutMs = 600_000) {
  const { python, tried } = torchPython();
  if (!python) return { error: `no Python with PyTorch found (tried ${tried.join('; ')})` };
  try {
    const path = new URL(`../${script}`, import.meta.url).pathname;
    const out = execFileSync(python, [path, ...args.map(String)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: Math.max(1, Math.floor(timeoutMs)),
    });
    return JSON.parse(out.trim().split('\n').pop());
  } catch (e) {
    const stderr = String(e.stderr ?? '')
      .trim()
      .split('\n')
      .pop();
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
