// kill -9 at random moments (a few per kind of state here; hundreds in scripts/crash-kill.ts): during
// checkpoint writes of a training run, during rewrites of a measurement set, and across DiffEM round
// transitions. After every kill the state on disk must load and be one the work wrote (never torn, never
// older than a state already seen), and a run resumed after the kills must end bit for bit where an
// uninterrupted run ends. Where the kills land varies with the machine's load; what is asserted does not.
import { describe, expect, it } from 'vitest';
import { killLoop, referenceResult } from './crash-work.ts';

describe('state survives SIGKILL at random moments', () => {
  it('training checkpoints: the last checkpoint always loads, and resuming gives the uninterrupted weights and moments', async () => {
    const reference = await referenceResult('train');
    const r = await killLoop('train', 3, reference.workMs * 1.2, 19, reference.result);
    console.log(`train: ${r.kills} kills (${r.midWrite} inside a write), states ${r.states.join(', ')}`);
    expect(r.kills).toBe(3);
    expect(r.identical).toBe(true);
  });

  it('measurement sets: the file always holds one of the complete sets written', async () => {
    const r = await killLoop('measurements', 5, 1000, 19);
    console.log(`measurements: ${r.kills} kills (${r.midWrite} inside a write), states ${r.states.join(', ')}`);
    expect(r.kills).toBe(5);
    expect(r.states.every((s) => /^set [01]$|^no file yet$/.test(s))).toBe(true);
  });

  it('DiffEM rounds: the state and its round always load, and resuming gives the uninterrupted reconstructions', async () => {
    const reference = await referenceResult('diffem');
    const r = await killLoop('diffem', 3, reference.workMs * 1.2, 19, reference.result);
    console.log(`diffem: ${r.kills} kills (${r.midWrite} inside a write), states ${r.states.join(', ')}`);
    expect(r.kills).toBe(3);
    expect(r.identical).toBe(true);
  });
});
