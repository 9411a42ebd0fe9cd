// `node --import ./test/reliability/register-cached-ts.mjs`: TypeScript imports through a disk cache (cached-ts-hooks.mjs).
import { register } from 'node:module';

register('./cached-ts-hooks.mjs', import.meta.url);
