// scripts/sandbox-api.js: the toncenter-v2-shaped local network the Rust integration tests
// talk to. Drives it over real HTTP: funding, a wallet deployed and used by the Rust adapter's
// signed messages (vectors/wallet-messages.json), get-methods with slice arguments, transaction
// paging, and the error envelope.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createShardAccount } from '@ton/sandbox';
import { Address, beginCell, Cell, contractAddress, toNano } from '@ton/core';
import { start } from '../scripts/sandbox-api.js';
import { DEFAULT_PARAMS, keyPair, pubkeyInt, rootData } from './helpers.js';

const SCRIPT = fileURLToPath(new URL('../scripts/sandbox-api.js', import.meta.url));
const vectors = JSON.parse(readFileSync(new URL('../vectors/wallet-messages.json', import.meta.url), 'utf8'));
const artifact = (name) => Cell.fromBoc(readFileSync(new URL(`../artifacts/${name}.boc`, import.meta.url)))[0];

let srv;
before(async () => { srv = await start({ port: 0, now: 1_800_000_000 }); });
after(() => srv.close());

// -> [HTTP status, parsed envelope]
async function call(path, { query, body, raw } = {}) {
  const base = path.startsWith('/sandbox') ? srv.url.replace(/\/api\/v2$/, '') : srv.url;
  const url = new URL(base + path);
  for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
  const init = body !== undefined || raw !== undefined
    ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ?? JSON.stringify(body) }
    : {};
  const res = await fetch(url, init);
  return [res.status, await res.json()];
}

async function ok(path, opts) {
  const [status, env] = await call(path, opts);
  assert.equal(status, 200, JSON.stringify(env));
  assert.equal(env.ok, true);
  return env.result;
}

async function fails(path, opts, code) {
  const [status, env] = await call(path, opts);
  assert.equal(status, code, JSON.stringify(env));
  assert.deepEqual([env.ok, env.code, typeof env.error], [false, code, 'string']);
  return env.error;
}

const info = (address) => ok('/getAddressInformation', { query: { address } });
const seqnoOf = async (address) => {
  const r = await ok('/runGetMethod', { body: { address, method: 'seqno', stack: [] } });
  assert.equal(r.exit_code, 0);
  assert.equal(r.stack.length, 1);
  assert.equal(r.stack[0][0], 'num');
  return BigInt(r.stack[0][1]);
};

test('CLI: prints the base URL first, serves, exits when stdin closes', async () => {
  const child = spawn(process.execPath, [SCRIPT, '--port', '0'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  try {
    const [first] = await Promise.race([
      new Promise((resolve) => createInterface({ input: child.stdout }).once('line', (l) => resolve([l]))),
      exited.then(() => assert.fail('exited before listening')),
    ]);
    const m = /^listening (http:\/\/127\.0\.0\.1:(\d+)\/api\/v2)$/.exec(first);
    assert.ok(m, first);
    const env = await (await fetch(`${m[1]}/getMasterchainInfo`)).json();
    assert.equal(env.ok, true);
    assert.equal(typeof env.result.last.seqno, 'number');
    child.stdin.end();
    assert.equal(await exited, 0);
  } finally {
    child.kill();
  }
});

for (const [version, w] of Object.entries(vectors.wallets)) test(`${version}: fund, deploy by external message, get-methods, transaction paging`, async () => {
  const friendly = Address.parseRaw(w.address).toString({ bounceable: false });
  const before = await info(friendly);
  assert.deepEqual([before.balance, before.state, before.code, before.last_transaction_id.lt],
    ['0', 'uninitialized', '', '0']);
  assert.equal(Buffer.from(before.last_transaction_id.hash, 'base64').length, 32);
  assert.equal((await ok('/runGetMethod', { body: { address: w.address, method: 'seqno', stack: [] } })).exit_code, -13);

  const seqno0 = (await ok('/getMasterchainInfo')).last.seqno;
  const funded = await ok('/sandbox/fund', { body: { address: w.address, amount: toNano('1').toString() } });
  const afterFund = await info(w.address);
  assert.deepEqual([afterFund.balance, afterFund.state], [toNano('1').toString(), 'uninitialized']);
  assert.deepEqual(afterFund.last_transaction_id.lt, funded.transaction_id.lt);
  assert.equal((await ok('/getMasterchainInfo')).last.seqno, seqno0 + 1);

  const sent = await ok('/sendBocReturnHash', { body: { boc: w.deploy_and_send } });
  assert.equal(sent.hash, Cell.fromBase64(w.deploy_and_send).hash().toString('base64'));
  const deployed = await info(w.address);
  assert.equal(deployed.state, 'active');
  assert.ok(deployed.code && deployed.data);
  assert.ok(BigInt(deployed.balance) < toNano('1') - BigInt(vectors.value));
  assert.equal(await seqnoOf(w.address), 1n);

  await ok('/sendBocReturnHash', { body: { boc: w.second_send } });
  assert.equal(await seqnoOf(w.address), 2n);
  // A replayed seqno is refused by the wallet: a deterministic 400, not a retryable 5xx.
  assert.match(await fails('/sendBocReturnHash', { body: { boc: w.second_send } }, 400), /not accepted/);
  // A get-method that throws is a result with its exit code (11: no such method).
  const missing = await ok('/runGetMethod', { body: { address: w.address, method: 'no_such_method', stack: [] } });
  assert.equal(missing.exit_code, 11);
  // Integer arguments in either notation.
  for (const n of version === 'v4r2' ? ['0', '0x0'] : []) {
    const r = await ok('/runGetMethod', {
      body: { address: w.address, method: 'is_plugin_installed', stack: [['num', n], ['num', '0x' + '11'.repeat(32)]] } });
    assert.deepEqual([r.exit_code, r.stack], [0, [['num', '0x0']]]);
  }

  // Newest first: second send, deploy, fund.
  const all = await ok('/getTransactions', { query: { address: w.address, limit: '10', archival: 'true' } });
  assert.equal(all.length, 3);
  assert.equal(all[2].transaction_id.lt, funded.transaction_id.lt);
  const last = (await info(w.address)).last_transaction_id;
  assert.deepEqual([last.lt, last.hash], [all[0].transaction_id.lt, all[0].transaction_id.hash]);
  assert.ok(BigInt(all[0].transaction_id.lt) > BigInt(all[1].transaction_id.lt));
  const [second, deploy, fund] = all;
  for (const t of all) {
    assert.equal(Cell.fromBase64(t.data).hash().toString('base64'), t.transaction_id.hash, 'data is the transaction BOC');
  }
  assert.equal(fund.in_msg.value, toNano('1').toString());
  assert.equal(fund.in_msg.destination, w.address);
  assert.match(fund.in_msg.source, /^0:[0-9a-f]{64}$/);
  assert.equal(deploy.in_msg.source, '');
  assert.equal(deploy.in_msg.destination, w.address);
  assert.equal(deploy.in_msg.msg_data.body.length > 0, true);
  assert.ok(deploy.in_msg.msg_data.init_state, 'the deploy message carries the state init');
  assert.equal(Number(deploy.fee) > 0, true);
  assert.equal(deploy.utime, 1_800_000_000);
  for (const t of [deploy, second]) {
    assert.equal(t.out_msgs.length, 1);
    const out = t.out_msgs[0];
    assert.deepEqual([out.source, out.destination, out.value], [w.address, vectors.to, vectors.value]);
    assert.equal(Cell.fromBase64(out.msg_data.body).hash().toString('hex'), vectors.body_hash);
  }
  // The destination saw both transfers.
  const toTxs = await ok('/getTransactions', { query: { address: vectors.to, limit: '100' } });
  assert.deepEqual(toTxs.slice(0, 2).map((t) => t.in_msg.source), [w.address, w.address]);

  // Paging: from a transaction inclusive, back in time.
  const page1 = await ok('/getTransactions', { query: { address: w.address, limit: '2' } });
  assert.deepEqual(page1.map((t) => t.transaction_id), [second, deploy].map((t) => t.transaction_id));
  const { lt, hash } = page1[1].transaction_id;
  const page2 = await ok('/getTransactions', { query: { address: w.address, limit: '2', lt, hash } });
  assert.deepEqual(page2.map((t) => t.transaction_id), [deploy, fund].map((t) => t.transaction_id));
  const hex = Buffer.from(hash, 'base64').toString('hex');
  assert.equal((await ok('/getTransactions', { query: { address: w.address, limit: '1', lt, hash: hex } }))[0]
    .transaction_id.hash, hash);
  await fails('/getTransactions', { query: { address: w.address, lt: '1', hash } }, 404);
  await fails('/getTransactions', { query: { address: w.address, lt } }, 400);
});

test('get-methods with a slice (address) argument and slice/cell/null results', async () => {
  const owner = Address.parseRaw('0:' + 'ab'.repeat(32));
  const codes = { root: artifact('root'), proxy: artifact('proxy'), client: artifact('client'), worker: artifact('worker') };
  const init = { code: codes.root, data: rootData(owner, DEFAULT_PARAMS, codes) };
  const root = contractAddress(0, init);
  await srv.blockchain.setShardAccount(root, createShardAccount({ address: root, ...init, balance: toNano('1') }));

  const key = pubkeyInt(keyPair('proxy'));
  const ownerSlice = beginCell().storeAddress(owner).endCell().toBoc().toString('base64');
  const r = await ok('/runGetMethod', {
    body: { address: root.toRawString(), method: 'proxy_address', stack: [['slice', ownerSlice], ['num', key.toString()]] } });
  assert.equal(r.exit_code, 0);
  assert.ok(r.gas_used > 0);
  assert.equal(r.stack[0][0], 'slice');
  const got = Cell.fromBase64(r.stack[0][1].bytes).beginParse().loadAddress();
  const want = (await srv.blockchain.runGetMethod(root, 'proxy_address', [
    { type: 'slice', cell: beginCell().storeAddress(owner).endCell() }, { type: 'int', value: key }])).stackReader.readAddress();
  assert.ok(got.equals(want));
  // The other accepted spellings of a slice argument.
  for (const arg of [['tvm.Slice', ownerSlice], ['slice', { bytes: ownerSlice }]]) {
    const again = await ok('/runGetMethod', {
      body: { address: root.toString(), method: 'proxy_address', stack: [arg, ['num', '0x' + key.toString(16)]] } });
    assert.deepEqual(again.stack, r.stack);
  }

  const data = await ok('/runGetMethod', { body: { address: root.toRawString(), method: 'root_data', stack: [] } });
  assert.deepEqual(data.stack.slice(1), [['num', '0x0'], ['num', '0x0']]);
  assert.ok(Cell.fromBase64(data.stack[0][1].bytes).beginParse().loadAddress().equals(owner));
  const entry = await ok('/runGetMethod', { body: { address: root.toRawString(), method: 'proxy_entry', stack: [['num', '-0x5']] } });
  assert.deepEqual(entry.stack, [['null', null]]);

  await fails('/runGetMethod', { body: { address: root.toRawString(), method: 'root_data', stack: [['slice', 'not a boc']] } }, 400);
  await fails('/runGetMethod', { body: { address: root.toRawString(), method: 'root_data', stack: [['num', '12abc']] } }, 400);
  await fails('/runGetMethod', { body: { address: root.toRawString(), method: 'root_data', stack: 'x' } }, 400);
});

test('clock, and bad input never takes the server down', async () => {
  const { now } = await ok('/sandbox/now');
  assert.equal((await ok('/sandbox/advance', { body: { secs: 300 } })).now, now + 300);
  assert.equal((await ok('/getMasterchainInfo')).utime, now + 300);
  await fails('/sandbox/advance', { body: { secs: -1 } }, 400);

  await fails('/runGetMethod', { raw: '{"address": ' }, 400);
  await fails('/runGetMethod', { raw: '[1,2]' }, 400);
  await fails('/getAddressInformation', { query: { address: 'nonsense' } }, 400);
  await fails('/getAddressInformation', {}, 400);
  await fails('/sendBocReturnHash', { body: { boc: 'AAAA' } }, 400);
  await fails('/sendBocReturnHash', { body: {} }, 400);
  await fails('/sandbox/fund', { body: { address: vectors.to, amount: '-5' } }, 400);
  await fails('/getTransactions', { query: { address: vectors.to, limit: 'x' } }, 400);
  await fails('/noSuchMethod', {}, 404);
  await fails('/runGetMethod', { raw: 'x'.repeat((4 << 20) + 1) }, 413);
  // An internal message as the BOC: not an external.
  const int = beginCell().storeUint(0, 1).endCell().toBoc().toString('base64');
  await fails('/sendBocReturnHash', { body: { boc: int } }, 400);
  // Still serving.
  assert.equal(typeof (await ok('/getMasterchainInfo')).last.seqno, 'number');
});
