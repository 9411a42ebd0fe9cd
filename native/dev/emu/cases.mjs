// Writes the emulator's case list from the golden table (test/golden/ops.json, keyed by op name): one
// C++ call per `emu` entry [function, ...arguments], in the table's order, into a cases.inc that
// test.cpp's main() includes. Numbers and booleans are written as literals, other strings as C++
// expressions (an enum value), and a last string starting with // as a comment.
//   node cases.mjs OPS_JSON OUT_INC
import { readFileSync, writeFileSync } from 'node:fs';

const [table, out] = process.argv.slice(2);
if (!table || !out) throw new Error('usage: node cases.mjs OPS_JSON OUT_INC');
const ops = JSON.parse(readFileSync(table, 'utf8'));
const literal = (v, where) => {
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error(`${where}: ${v} is not an exact integer`);
    return v > 2147483647 ? `${v}ull` : String(v);
  }
  if (typeof v === 'string') return v;
  throw new Error(`${where}: unsupported argument ${JSON.stringify(v)}`);
};
const lines = [`// Generated from ${table} by cases.mjs: do not edit.`];
let count = 0;
for (const [op, entry] of Object.entries(ops)) {
  if (op.startsWith('$')) continue;
  if (entry.emu === undefined) throw new Error(`${table}: op ${op} has no "emu" entry (a list of calls, or where it is covered)`);
  if (typeof entry.emu === 'string') continue;
  for (const [k, call] of entry.emu.entries()) {
    const where = `${table}: ${op}.emu[${k}]`;
    const [fn, ...rest] = call;
    if (typeof fn !== 'string' || !/^test_\w+$/.test(fn)) throw new Error(`${where}: the first element must be a test_ function name`);
    const comment = typeof rest.at(-1) === 'string' && rest.at(-1).startsWith('//') ? `  ${rest.pop()}` : '';
    lines.push(`${fn}(${rest.map((v) => literal(v, where)).join(', ')});${comment}`);
    count++;
  }
}
writeFileSync(out, lines.join('\n') + '\n');
console.log(`cases.mjs: ${count} emulator cases from ${table}`);
