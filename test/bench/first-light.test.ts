// The first-light tooling's logic that a GPU run depends on and a CPU can check: the summary's verdicts
// from result files of every kind (including a run cut short and a sanitizer report), and the choice of
// the Python interpreter by probing `import torch` rather than by a file existing.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'first-light-test-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A work folder as run.sh leaves it: planned parts, part records, result files. */
function workFolder(files: Record<string, string>) {
  const work = tempDir();
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(work, rel, '..'), { recursive: true });
    writeFileSync(join(work, rel), text);
  }
  return work;
}

function summarize(work: string, check = false) {
  const args = [join(root, 'bench/first-light/summary.mjs'), '--work', work, '--bench', join(work, 'bench.jsonl')];
  return spawnSync(process.execPath, check ? [...args, '--check'] : args, { encoding: 'utf8' });
}
const rowOf = (md: string, name: string) =>
  md
    .split('\n')
    .find((l) => l.startsWith(`| ${name} `))
    ?.split('|')
    .map((c) => c.trim()) ?? [];

const vitestJson = (passed: number, failed: { name: string; message: string }[], skipped = 0) =>
  JSON.stringify({
    numPassedTests: passed,
    numFailedTests: failed.length,
    numPendingTests: skipped,
    numTodoTests: 0,
    testResults: [
      {
        status: failed.length ? 'failed' : 'passed',
        message: '',
        assertionResults: failed.map((f) => ({ fullName: f.name, status: 'failed', failureMessages: [f.message] })),
      },
    ],
  });

describe('first-light summary', () => {
  const planned = [
    'info/build',
    'golden/golden.test',
    'golden/rng.test',
    'sanitizer/plain',
    'sanitizer/memcheck',
    'sanitizer/racecheck',
    'sanitizer/synccheck',
    'bench',
  ].join('\n');
  const work = workFolder({
    'planned.txt': planned,
    'parts/info-build.json': JSON.stringify({ part: 'info/build', rc: 0, seconds: 1, limit: 15, log: 'info/build.json' }),
    'info/build.json': JSON.stringify({
      build: { cuda: true, cudaArchitectures: '90-real' },
      cuda: { deviceCount: 1 },
      devices: [{ type: 'cuda', name: 'NVIDIA H100 80GB HBM3', computeCapability: '9.0' }],
    }),
    'parts/golden-golden.test.json': JSON.stringify({
      part: 'golden/golden.test',
      rc: 1,
      seconds: 30,
      limit: 50,
      log: 'golden/golden.test.log',
    }),
    'golden/golden.test.json': vitestJson(
      268,
      [{ name: 'golden: cuda:0 vs cpu conv2d [8]', message: 'AssertionError: expected 0.3 to be less than or equal to 1e-7\n  at ...' }],
      2,
    ),
    'parts/golden-rng.test.json': JSON.stringify({ part: 'golden/rng.test', rc: 124, seconds: 20, limit: 20, log: 'golden/rng.test.log' }),
    'golden/rng.test.log': 'RUN v4\n',
    'parts/sanitizer-plain.json': JSON.stringify({ part: 'sanitizer/plain', rc: 0, seconds: 9, limit: 20, log: 'sanitizer/plain.log' }),
    'sanitizer/plain.jsonl': '{"name":"add","ok":true}\n{"name":"fill","ok":true}\n{"done":true,"cases":2,"failed":0}\n',
    'parts/sanitizer-memcheck.json': JSON.stringify({
      part: 'sanitizer/memcheck',
      rc: 86,
      seconds: 40,
      limit: 55,
      log: 'sanitizer/memcheck.log',
    }),
    'sanitizer/memcheck.log':
      '========= COMPUTE-SANITIZER\nkernels: add [3]\n========= Invalid __global__ write of size 16 bytes\n=========     at ks::cuda::random_kernel+0x1d0\n' +
      '=========     by thread (3,0,0) in block (0,0,0)\n========= ERROR SUMMARY: 1 error\n',
    'sanitizer/memcheck.jsonl': '{"name":"add","ok":true}\n{"name":"fill","ok":true}\n{"done":true,"cases":2,"failed":0}\n',
    'parts/sanitizer-racecheck.json': JSON.stringify({ part: 'sanitizer/racecheck', running: true, limit: 45 }),
    'parts/sanitizer-synccheck.json': JSON.stringify({
      part: 'sanitizer/synccheck',
      rc: 1,
      seconds: 3,
      limit: 30,
      log: 'sanitizer/synccheck.log',
    }),
    'sanitizer/synccheck.log': '========= COMPUTE-SANITIZER\n========= Error: Device not supported\n',
    'bench.jsonl':
      '{"row":"train kintsugi fmnist32 b128","status":"passed","impl":"kintsugi","median_ms":50,"img_per_s":2560}\n' +
      '{"row":"train pytorch eager fp32 fmnist32 b128","status":"passed","median_ms":40}\n' +
      '{"row":"sample kintsugi ddim50 fmnist32 b256","status":"failed","error":"CUDA error: an illegal memory access"}\n{"row":"sample pyt',
  });
  const r = summarize(work);
  const md = r.stdout;

  it('reads every kind of result file into a verdict with its reason', () => {
    expect(r.status, r.stderr).toBe(0);
    expect(rowOf(md, 'info/build').slice(2, 3)).toEqual(['passed']);
    expect(rowOf(md, 'info/build')[4]).toContain('NVIDIA H100 80GB HBM3');
    const golden = rowOf(md, 'golden/golden.test');
    expect(golden[2]).toBe('failed');
    expect(golden[4]).toContain('268 passed, 1 failed, 2 skipped');
    expect(golden[4]).toContain('conv2d [8]: AssertionError');
    expect(rowOf(md, 'golden/rng.test')[2]).toBe('timeout');
    expect(rowOf(md, 'sanitizer/plain').slice(2, 3)).toEqual(['passed']);
    const memcheck = rowOf(md, 'sanitizer/memcheck');
    expect(memcheck[2]).toBe('failed');
    expect(memcheck[4]).toContain('1 sanitizer errors');
    expect(memcheck[4]).toContain('Invalid __global__ write of size 16 bytes');
    expect(rowOf(md, 'sanitizer/racecheck')[2]).toBe('not run');
    expect(rowOf(md, 'sanitizer/racecheck')[4]).toContain('running when the command was stopped');
    expect(rowOf(md, 'sanitizer/synccheck')[2]).toBe('not run');
    expect(rowOf(md, 'sanitizer/synccheck')[4]).toContain('could not use the device');
  });

  it('lists benchmark rows that ran, failed or never started; a line cut by a kill is ignored', () => {
    const train = rowOf(md, 'train kintsugi fmnist32 b128');
    expect(train[2]).toBe('passed');
    expect(train[3]).toContain('50.00 ms/step');
    expect(train[4]).toContain('PyTorch eager / kintsugi = 0.80x');
    expect(rowOf(md, 'sample kintsugi ddim50 fmnist32 b256')[2]).toBe('failed');
    expect(rowOf(md, 'sample pytorch eager')[2]).toBe('not run');
    expect(rowOf(md, 'gsure kintsugi')[2]).toBe('not run');
  });

  it('--check fails on a failed part and passes when parts only timed out or did not run', () => {
    const failing = summarize(work, true);
    expect(failing.status).toBe(1);
    expect(failing.stderr).toContain('FAILED golden/golden.test');
    const slow = workFolder({
      'planned.txt': 'golden/rng.test\nbench',
      'parts/golden-rng.test.json': JSON.stringify({ part: 'golden/rng.test', rc: 124, seconds: 20, limit: 20 }),
      'parts/bench.json': JSON.stringify({ part: 'bench', skipped: 'the budget of 450 s was spent before this part' }),
      'bench.jsonl': '',
    });
    const ok = summarize(slow, true);
    expect(ok.status, ok.stderr).toBe(0);
    expect(rowOf(summarize(slow).stdout, 'train kintsugi')[4]).toContain('budget of 450 s was spent');
  });
});

describe('bench/lib/common.mjs: the Python for PyTorch rows', () => {
  // Fake interpreters: one exists but has no torch (as the GPU machine's /usr/bin/python3), one has it.
  const bin = tempDir();
  const noTorch = join(bin, 'python-without-torch');
  const withTorch = join(bin, 'python-with-torch');
  writeFileSync(noTorch, '#!/bin/sh\necho "ModuleNotFoundError: No module named \'torch\'" >&2\nexit 1\n');
  writeFileSync(withTorch, '#!/bin/sh\necho "/opt/torch/.venv/bin/python3 2.11.0"\n');
  chmodSync(noTorch, 0o755);
  chmodSync(withTorch, 0o755);
  const probe = (candidates: string[]) =>
    JSON.parse(
      execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { probePython } from '${join(root, 'bench/lib/common.mjs')}'; console.log(JSON.stringify(probePython(${JSON.stringify(candidates)})))`,
        ],
        { encoding: 'utf8' },
      ),
    );

  it('skips an interpreter that exists but cannot import torch, and says why', () => {
    const r = probe([noTorch, join(bin, 'missing'), withTorch]);
    expect(r.python).toBe(withTorch);
    expect(r.torch).toBe('2.11.0');
    expect(r.tried).toEqual([`${noTorch}: ModuleNotFoundError: No module named 'torch'`, `${join(bin, 'missing')}: ENOENT`]);
  });

  it('reports none when no candidate has torch', () => {
    const r = probe([noTorch]);
    expect(r.python).toBeNull();
    expect(r.tried).toHaveLength(1);
  });
});
