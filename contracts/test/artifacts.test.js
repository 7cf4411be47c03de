// artifacts/*.boc (the code the Rust adapter deploys) is what the sources compile to today.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Cell } from '@ton/core';
import { build, ARTIFACTS } from '../scripts/artifacts.js';

test('artifacts/ holds the code the sources compile to', async () => {
  const built = await build();
  const hashes = JSON.parse(readFileSync(`${ARTIFACTS}hashes.json`, 'utf8'));
  for (const [name, { hash }] of Object.entries(built)) {
    const checkedIn = Cell.fromBoc(readFileSync(`${ARTIFACTS}${name}.boc`))[0];
    assert.equal(checkedIn.hash().toString('hex'), hash,
      `${name}: stale artifact; run \`npm run artifacts\``);
    assert.equal(hashes[name], hash, `${name}: stale hashes.json; run \`npm run artifacts\``);
  }
});
