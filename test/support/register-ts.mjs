// `node --import ./test/support/register-ts.mjs`: lets a child process of a test import lib/*.ts
// directly (Node 20 cannot strip types itself), so those tests run the same sources as vitest does.
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
