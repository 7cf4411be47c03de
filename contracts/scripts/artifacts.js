// The compiled contracts as files, for the Rust TON adapter (crates/ton embeds them to deploy
// the root and compute addresses): artifacts/<name>.boc and artifacts/hashes.json.
// `npm run artifacts` rewrites them; test/artifacts.test.js fails when they are stale.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compile } from './compile.js';

export const NAMES = ['root', 'proxy', 'client', 'worker'];
export const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

export async function build() {
  const out = {};
  for (const name of NAMES) {
    const c = await compile(name);
    out[name] = { boc: c.code.toBoc({ idx: false, crc32: false }), hash: c.code.hash().toString('hex') };
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const built = await build();
  mkdirSync(ARTIFACTS, { recursive: true });
  const hashes = {};
  for (const [name, { boc, hash }] of Object.entries(built)) {
    writeFileSync(`${ARTIFACTS}${name}.boc`, boc);
    hashes[name] = hash;
  }
  writeFileSync(`${ARTIFACTS}hashes.json`, JSON.stringify(hashes, null, 2) + '\n');
  console.log(hashes);
}
