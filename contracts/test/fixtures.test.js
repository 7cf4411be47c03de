// The message fixtures the Rust adapter is tested against (vectors/messages.json) are what the
// sandbox tests' builders produce today.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fixtures, FIXTURE_PATH } from '../scripts/message-fixtures.js';

test('vectors/messages.json is up to date with the message builders', async () => {
  const checkedIn = JSON.parse(readFileSync(FIXTURE_PATH, 'utf8'));
  assert.deepEqual(checkedIn, JSON.parse(JSON.stringify(await fixtures())),
    'regenerate with `node scripts/message-fixtures.js --write`');
});
