// Compiles the Tolk sources in-process with @ton/tolk-js (no network, no files written).
import { runTolkCompiler } from '@ton/tolk-js';
import { Cell } from '@ton/core';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
const cache = new Map();

export async function compile(name) {
  if (cache.has(name)) return cache.get(name);
  const result = await runTolkCompiler({
    entrypointFileName: `${name}.tolk`,
    fsReadCallback: (path) => readFileSync(join(SRC, path), 'utf-8'),
    withStackComments: false,
  });
  if (result.status === 'error') {
    throw new Error(`tolk: ${name}.tolk failed to compile:\n${result.message}`);
  }
  const code = Cell.fromBoc(Buffer.from(result.codeBoc64, 'base64'))[0];
  const out = { code, fift: result.fiftCode, hash: result.codeHashHex };
  cache.set(name, out);
  return out;
}
