// Test harness: compiles the Tolk sources in-process, deploys a root in a fresh sandbox,
// builds every message of schema.tlb, signs vouchers, checks exit codes and accounting, and
// records gas per operation (merged into gas.md by scripts/gas-report.js).
import { Blockchain } from '@ton/sandbox';
import { Address, beginCell, Cell, contractAddress, Dictionary, toNano } from '@ton/core';
import { keyPairFromSeed, sign } from '@ton/crypto';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { compile } from '../scripts/compile.js';

export { toNano, beginCell, Address, Cell };

// ---- Error codes (src/common.tolk) ----
export const E = {
  UNKNOWN_OP: 100, NOT_OWNER: 101, NOT_PROXY: 102, NOT_ROOT: 103, NOT_CLIENT: 104,
  NOT_WORKER: 105, NOT_OPEN: 110, CLOSED: 111, NOT_CLOSING: 112, NOT_UNLOCKED: 113,
  ALREADY_DEPLOYED: 114, OPEN_CONTRACTS: 115, BUSY: 116, LOW_VALUE: 120, ZERO_AMOUNT: 121,
  STAKE_TOO_LOW: 122, NOTHING_TO_WITHDRAW: 123, INSUFFICIENT_FUNDS: 124, INVARIANT: 125,
  BAD_PARAMS: 126, WRONG_VOUCHER_OP: 130, WRONG_CONTRACT: 131, BAD_SIGNATURE: 132,
  STALE_VOUCHER: 133, STALE_ANCHOR: 134, UNKNOWN_ROLE: 140, EXISTS: 141, NOT_FOUND: 142,
};

export const STATE = { UNINIT: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 };

export const OP = {
  // voucher inner ops (same codes as the embedded chain)
  V_CHARGE: 0x636c6301, V_GRANT_REFUND: 0x636c6302, V_PAYOUT: 0x776b7201, V_LAST_PAYOUT: 0x776b7202,
  ANCHOR_TAG: 0x616e6331,
  // root
  ROOT_ADD_IMAGE: 0x3c090001, ROOT_DEL_IMAGE: 0x3c090002, ROOT_ADD_MODEL: 0x3c090003,
  ROOT_DEL_MODEL: 0x3c090004, ROOT_REGISTER_PROXY: 0x3c090005, ROOT_UNREGISTER_PROXY: 0x3c090006,
  ROOT_UPDATE_PROXY: 0x3c090007, ROOT_SET_PARAMS: 0x3c090008, ROOT_SET_CODE: 0x3c090009,
  ROOT_CHANGE_OWNER: 0x3c09000a, ROOT_DEPLOY_PROXY: 0x3c090010,
  // proxy
  PROXY_INCREASE_STAKE: 0x3c0a0001, PROXY_WITHDRAW: 0x3c0a0002, PROXY_ANCHOR: 0x3c0a0003,
  PROXY_REQUEST_CLOSE: 0x3c0a0004, PROXY_COMPLETE_CLOSE: 0x3c0a0005, DEPLOY_CLIENT: 0x3c0a0010,
  DEPLOY_WORKER: 0x3c0a0011, CLIENT_TOP_UP_REQUEST: 0x3c0a0021, CLIENT_SETTLE: 0x3c0a0022,
  WORKER_SETTLE: 0x3c0a0031,
  // client
  CLIENT_TOP_UP: 0x3c0b0001, CLIENT_WITHDRAW: 0x3c0b0002, CLIENT_REQUEST_CLOSE: 0x3c0b0003,
  CLIENT_INCREASE_STAKE: 0x3c0b0004, CLIENT_SET_SECRET_HASH: 0x3c0b0005, CLIENT_REGISTER: 0x3c0b0006,
  CLIENT_CHARGE: 0x3c0b0007, CLIENT_GRANT_REFUND: 0x3c0b0008, CLIENT_INIT: 0x3c0c0001,
  // worker
  WORKER_PAYOUT: 0x3c0e0001, WORKER_LAST_PAYOUT: 0x3c0e0002, WORKER_INIT: 0x3c0d0001,
  // payments out
  EXCESSES: 0xd53276db, CLIENT_REFUND_PAYMENT: 0x3c0f0001, WORKER_PAYMENT: 0x3c0f0002,
  PROXY_OWNER_PAYMENT: 0x3c0f0003,
};

export const PROXY_RESERVE = toNano('0.1');
export const MIN_STORAGE = toNano('0.01');
export const FLOW = toNano('0.2'); // value attached to multi-hop operations in tests

// The embedded chain's RootParams defaults (crates/ledger/src/pricing.rs).
export const DEFAULT_PARAMS = {
  pricePerToken: 20n, workerFeePerToken: 16n, promptMultiplier: 10000, cachedMultiplier: 1000,
  completionMultiplier: 40000, reasoningMultiplier: 40000, minClientStake: toNano('1'),
  minProxyStake: toNano('1'), clientDelay: 300, proxyDelay: 600,
};

export function paramsCell(p) {
  return beginCell()
    .storeCoins(p.pricePerToken).storeCoins(p.workerFeePerToken)
    .storeUint(p.promptMultiplier, 32).storeUint(p.cachedMultiplier, 32)
    .storeUint(p.completionMultiplier, 32).storeUint(p.reasoningMultiplier, 32)
    .storeCoins(p.minClientStake).storeCoins(p.minProxyStake)
    .storeUint(p.clientDelay, 32).storeUint(p.proxyDelay, 32)
    .endCell();
}

export function codesCell(codes) {
  return beginCell().storeRef(codes.proxy).storeRef(codes.client).storeRef(codes.worker).endCell();
}

export async function compileAll() {
  const [root, proxy, client, worker] = await Promise.all(
    ['root', 'proxy', 'client', 'worker'].map((n) => compile(n)));
  return { root: root.code, proxy: proxy.code, client: client.code, worker: worker.code };
}

export function rootData(owner, params, codes) {
  const emptySets = beginCell().storeBit(0).storeBit(0).storeBit(0).storeBit(0).endCell();
  return beginCell()
    .storeAddress(owner).storeUint(0, 32).storeUint(0, 32)
    .storeRef(paramsCell(params)).storeRef(codesCell(codes)).storeRef(emptySets)
    .endCell();
}

export function keyPair(name) {
  return keyPairFromSeed(createHash('sha256').update(`cocoon-test-key:${name}`).digest());
}

export const pubkeyInt = (kp) => BigInt('0x' + kp.publicKey.toString('hex'));

// ---- Vouchers and anchors ----
export function voucherCell(op, tokens, contract) {
  return beginCell().storeUint(op, 32).storeUint(tokens, 64).storeAddress(contract).endCell();
}

export function signedBody(outerOp, voucher, kp, queryId = 0n) {
  const signature = sign(voucher.hash(), kp.secretKey);
  return beginCell().storeUint(outerOp, 32).storeUint(queryId, 64).storeBuffer(signature)
    .storeRef(voucher).endCell();
}

export function anchorCell(proxy, seqno, sessionHash, tag = OP.ANCHOR_TAG) {
  return beginCell().storeUint(tag, 32).storeAddress(proxy).storeUint(seqno, 64)
    .storeUint(sessionHash, 256).endCell();
}

// ---- Plain message bodies ----
export const body = (op, queryId = 0n) => beginCell().storeUint(op, 32).storeUint(queryId, 64);

// ---- Transaction inspection ----
export function txsTo(result, address) {
  return result.transactions.filter(
    (t) => t.inMessage?.info.type === 'internal' && t.inMessage.info.dest.equals(address));
}

function computeOf(tx) {
  const d = tx.description;
  if (d.type !== 'generic') return null;
  return d.computePhase;
}

export function exitCode(tx) {
  const c = computeOf(tx);
  return c && c.type === 'vm' ? c.exitCode : null;
}

// The first transaction at `address` in this result must have succeeded (or failed with `code`).
export function expectTx(result, address, { code = 0, index = 0, bounced = false } = {}) {
  const txs = txsTo(result, address).filter((t) => t.inMessage.info.bounced === bounced);
  assert.ok(txs.length > index, `no transaction #${index} at ${address} (bounced=${bounced})`);
  const tx = txs[index];
  const got = exitCode(tx);
  assert.equal(got, code, `exit code at ${address}: expected ${code}, got ${got}`);
  if (code === 0) {
    assert.equal(tx.description.aborted, false, `transaction at ${address} aborted (action phase?)`);
  }
  return tx;
}

// Every transaction in the result succeeded (compute and action phases).
export function expectAllOk(result) {
  for (const t of result.transactions) {
    const c = computeOf(t);
    // (a wallet receiving a tiny payment may skip its compute phase: the coins still arrive)
    if (!c || c.type !== 'vm') continue;
    if (c.type === 'vm') assert.equal(c.exitCode, 0, `tx at ${t.inMessage?.info.dest} exit ${c.exitCode}`);
    assert.equal(t.description.aborted, false, `tx at ${t.inMessage?.info.dest} aborted`);
  }
}

// Values of internal messages delivered to `address`, optionally only with body op `op`.
export function valuesTo(result, address, op) {
  return txsTo(result, address)
    .filter((t) => op === undefined || opOf(t.inMessage.body) === op)
    .map((t) => t.inMessage.info.value.coins);
}

export function opOf(cell) {
  const s = cell.beginParse();
  return s.remainingBits >= 32 ? s.loadUint(32) : null;
}

// ---- Gas accounting ----
const GAS = [];
let gasFile = null;

// Records the gas of every contract transaction of `result` (not the test wallets') under `name`.
export function recordGas(name, result, contracts) {
  const parts = [];
  let total = 0n;
  let fees = 0n;
  for (const t of result.transactions) {
    const dest = t.inMessage?.info.dest;
    const label = contracts.find(([, a]) => dest && a && a.equals(dest))?.[0];
    if (!label) continue;
    const c = computeOf(t);
    const gas = c && c.type === 'vm' ? c.gasUsed : 0n;
    total += gas;
    fees += t.totalFees.coins;
    parts.push(`${label} ${gas}`);
  }
  GAS.push({ name, total: Number(total), fees: Number(fees), parts: parts.join(' + ') });
}

export function gasReportTo(testFileUrl) {
  const dir = join(dirname(fileURLToPath(testFileUrl)), '..', 'build');
  gasFile = join(dir, `gas-${basename(fileURLToPath(testFileUrl), '.test.js')}.json`);
  process.on('exit', () => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(gasFile, JSON.stringify(GAS, null, 1));
  });
}

// ---- World setup ----
export const NOW = 1_800_000_000;

export async function newWorld(params = DEFAULT_PARAMS) {
  const blockchain = await Blockchain.create();
  blockchain.now = NOW;
  blockchain.verbosity = { print: false, blockchainLogs: false, vmLogs: 'none', debugLogs: false };
  const codes = await compileAll();
  const rootOwner = await blockchain.treasury('root-owner');
  const init = { code: codes.root, data: rootData(rootOwner.address, params, codes) };
  const root = contractAddress(0, init);
  const res = await rootOwner.send({ to: root, value: toNano('1'), init, bounce: false });
  expectTx(res, root);
  const w = { blockchain, codes, rootOwner, root, params };
  w.get = async (address, method, args = []) => (await blockchain.runGetMethod(address, method, args)).stackReader;
  w.balance = async (address) => (await blockchain.getContract(address)).balance;
  return w;
}

export async function deployProxy(w, { name = 'proxy', stake = toNano('10'), key = keyPair(name) } = {}) {
  const owner = await w.blockchain.treasury(`${name}-owner`);
  const wallet = await w.blockchain.treasury(`${name}-wallet`); // submits vouchers, pays gas
  const r = await w.get(w.root, 'proxy_address', [
    { type: 'slice', cell: beginCell().storeAddress(owner.address).endCell() },
    { type: 'int', value: pubkeyInt(key) },
  ]);
  const address = r.readAddress();
  const res = await owner.send({
    to: w.root,
    value: stake + PROXY_RESERVE + FLOW,
    body: body(OP.ROOT_DEPLOY_PROXY).storeUint(pubkeyInt(key), 256).storeCoins(stake).endCell(),
  });
  return { owner, wallet, key, address, res };
}

export async function proxyData(w, proxy) {
  const s = await w.get(proxy, 'proxy_data');
  return {
    state: s.readNumber(), unlockAt: s.readNumber(), stake: s.readBigNumber(),
    commission: s.readBigNumber(), clientDeposits: s.readBigNumber(), charged: s.readBigNumber(),
    nClients: s.readNumber(), nWorkers: s.readNumber(), anchorSeqno: s.readBigNumber(),
    anchorHash: s.readBigNumber(),
  };
}

// The proxy holds exactly its buckets plus PROXY_RESERVE (less rent), and its client
// deposits are exactly the sum of the given client contracts' balances.
export async function checkProxyAccounting(w, proxy, clients = []) {
  const d = await proxyData(w, proxy);
  const buckets = d.stake + d.commission + d.clientDeposits + d.charged;
  const surplus = (await w.balance(proxy)) - buckets;
  assert.ok(surplus <= PROXY_RESERVE && surplus > PROXY_RESERVE - toNano('0.001'),
    `proxy balance - buckets = ${surplus}, expected about ${PROXY_RESERVE}`);
  let sum = 0n;
  for (const c of clients) sum += (await clientData(w, c)).balance;
  assert.equal(d.clientDeposits, sum, 'client deposits differ from client balances');
  for (const c of clients) assert.ok((await w.balance(c)) <= MIN_STORAGE, 'a client contract holds coins');
  return d;
}

export async function clientAddress(w, proxy, owner) {
  return (await w.get(proxy, 'client_address', [
    { type: 'slice', cell: beginCell().storeAddress(owner).endCell() }])).readAddress();
}

export async function workerAddress(w, proxy, owner) {
  return (await w.get(proxy, 'worker_address', [
    { type: 'slice', cell: beginCell().storeAddress(owner).endCell() }])).readAddress();
}

export async function clientData(w, client) {
  const s = await w.get(client, 'client_data');
  return {
    state: s.readNumber(), balance: s.readBigNumber(), stake: s.readBigNumber(),
    tokensCharged: s.readBigNumber(), unlockAt: s.readNumber(), registeredNonce: s.readBigNumber(),
    secretHash: s.readBigNumber(),
  };
}

export async function workerData(w, worker) {
  const s = await w.get(worker, 'worker_data');
  return {
    state: s.readNumber(), pending: s.readNumber(), tokensPaid: s.readBigNumber(),
    owner: s.readAddress(), proxy: s.readAddress(), proxyKey: s.readBigNumber(),
  };
}

export async function deployClient(w, p, { name = 'client', deposit = toNano('5') } = {}) {
  const owner = await w.blockchain.treasury(name);
  const address = await clientAddress(w, p.address, owner.address);
  const res = await owner.send({
    to: p.address, value: deposit + FLOW,
    body: body(OP.DEPLOY_CLIENT).storeCoins(deposit).endCell(),
  });
  return { owner, address, res };
}

export async function deployWorker(w, p, { name = 'worker' } = {}) {
  const owner = await w.blockchain.treasury(name);
  const address = await workerAddress(w, p.address, owner.address);
  const res = await owner.send({ to: p.address, value: FLOW, body: body(OP.DEPLOY_WORKER).endCell() });
  return { owner, address, res };
}

export { Dictionary };

// Debug aid: one line per transaction.
export function dump(result) {
  for (const t of result.transactions) {
    const d = t.description;
    const c = d.computePhase;
    const a = d.actionPhase;
    console.log(`${t.inMessage?.info.dest} bounced=${t.inMessage?.info.bounced} op=${t.inMessage ? opOf(t.inMessage.body)?.toString(16) : '-'}`
      + ` exit=${c?.type === 'vm' ? c.exitCode : c?.type} gas=${c?.gasUsed} aborted=${d.aborted}`
      + ` action=${a ? `${a.success}/${a.resultCode}` : '-'} value=${t.inMessage?.info.value?.coins}`);
  }
}
