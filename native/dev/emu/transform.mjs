#!/usr/bin/env node
// The emulator's launch rewriter: copies CUDA sources into OUTDIR with every launch
//   kernel<<<grid, block, smem, stream>>>(args)
// rewritten as
//   emu_launch(emu_config(grid, block, smem, stream), "kernel", kernel, args)
// Comments, string and character literals are copied untouched. Newlines are kept where they were and
// each output starts with a #line directive, so compiler and sanitizer reports name the original file
// and line. Also writes OUTDIR/kernels.inc: the name of every __global__ function, one string literal a
// line, so the test can check that each was launched.
//   node transform.mjs OUTDIR FILE.cu|FILE.cuh...
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

const [outDir, ...files] = process.argv.slice(2);
if (!outDir || files.length === 0) {
  console.error('usage: node transform.mjs OUTDIR FILE...');
  process.exit(2);
}

// Index just past the comment or literal starting at i, or i when none starts there.
function skipNonCode(s, i) {
  if (s.startsWith('//', i)) {
    const e = s.indexOf('\n', i);
    return e < 0 ? s.length : e;
  }
  if (s.startsWith('/*', i)) {
    const e = s.indexOf('*/', i + 2);
    if (e < 0) throw new Error('unterminated comment');
    return e + 2;
  }
  const q = s[i];
  if ((q === '"' || q === "'") && !/[\w]/.test(s[i - 1] ?? '')) {
    let j = i + 1;
    while (j < s.length && s[j] !== q) j += s[j] === '\\' ? 2 : 1;
    return j + 1;
  }
  return i;
}

// The end (exclusive) of the bracketed group that opens at s[i], skipping comments and literals.
function closing(s, i, open, close) {
  let depth = 0;
  for (let p = i; p < s.length; ) {
    const q = skipNonCode(s, p);
    if (q !== p) {
      p = q;
      continue;
    }
    if (s[p] === open) depth++;
    else if (s[p] === close && --depth === 0) return p + 1;
    p++;
  }
  throw new Error(`unbalanced ${open}${close} from offset ${i}`);
}

function lineOf(s, i) {
  return s.slice(0, i).split('\n').length;
}

function transform(src, file) {
  let out = '';
  let copied = 0;
  for (let i = 0; i < src.length; ) {
    const q = skipNonCode(src, i);
    if (q !== i) {
      i = q;
      continue;
    }
    if (!src.startsWith('<<<', i)) {
      i++;
      continue;
    }
    // The kernel expression before <<<: an identifier, maybe qualified, maybe with template arguments.
    let b = i;
    while (b > 0 && /\s/.test(src[b - 1])) b--;
    const nameEnd = b;
    if (src[b - 1] === '>') {
      let depth = 0;
      do {
        b--;
        if (src[b] === '>') depth++;
        else if (src[b] === '<') depth--;
      } while (b > 0 && depth > 0);
    }
    while (b > 0 && /[\w:]/.test(src[b - 1])) b--;
    const name = src.slice(b, nameEnd);
    if (!/^[A-Za-z_]/.test(name)) throw new Error(`${file}:${lineOf(src, i)}: no kernel name before <<<`);
    const cfgEnd = src.indexOf('>>>', i + 3);
    if (cfgEnd < 0) throw new Error(`${file}:${lineOf(src, i)}: <<< without >>>`);
    const config = src.slice(i + 3, cfgEnd);
    let a = cfgEnd + 3;
    while (/\s/.test(src[a])) a++;
    if (src[a] !== '(') throw new Error(`${file}:${lineOf(src, i)}: no argument list after >>>`);
    const argsEnd = closing(src, a, '(', ')');
    const args = src.slice(a + 1, argsEnd - 1);
    const nameLiteral = JSON.stringify(name.replace(/\s+/g, ' '));
    out += src.slice(copied, b);
    out += `emu_launch(emu_config(${config}), ${nameLiteral}, ${name}${args.trim() ? `, ${args}` : ''})`;
    copied = i = argsEnd;
  }
  return out + src.slice(copied);
}

mkdirSync(outDir, { recursive: true });
const kernels = [];
for (const file of files) {
  const src = readFileSync(file, 'utf8');
  const out = `#line 1 ${JSON.stringify(resolve(file))}\n${transform(src, file)}`;
  const name = basename(file).replace(/\.cu$/, '.cpp');
  writeFileSync(join(outDir, name), out);
  const kernelRe = /__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?([A-Za-z_]\w*)\s*\(/g;
  for (const m of src.matchAll(kernelRe)) kernels.push(`"${m[1]}",  // ${basename(file)}`);
}
writeFileSync(join(outDir, 'kernels.inc'), kernels.join('\n') + '\n');
