#!/usr/bin/env node
// A local TON network for integration tests: one @ton/sandbox Blockchain served over HTTP with
// the subset of the toncenter v2 REST API that crates/ton/src/api.rs uses, plus a few
// sandbox-only controls (fund an address, move the clock).
//
//   node scripts/sandbox-api.js [--port N]      (default 0: any free port; binds 127.0.0.1)
//
// The first stdout line is exactly `listening http://127.0.0.1:<port>/api/v2` (the base URL
// for the Rust ApiConfig). The process exits when its stdin closes (so a parent that dies never
// leaks it: spawn it with a piped stdin and keep that pipe open), and on SIGTERM/SIGINT.
// `import { start } from './sandbox-api.js'` runs the same server in-process.
//
// Every response is `{"ok":true,"result":...}`, or `{"ok":false,"error":"...","code":N}` with
// HTTP status N: 400 bad input or a refused message, 404 unknown path or transaction,
// 413 body over 4 MiB, 500 a sandbox failure (the only retryable one for the Rust client).
// Parameters come from the query string and, for POST, from a JSON object body (both merged,
// so every method may be called either way). Addresses may be raw (`0:<hex>`) or friendly.
//
// /api/v2/getAddressInformation ?address
//   -> {balance:"<nano>", code:"<b64 BOC>"|"", data:"<b64 BOC>"|"",
//       state:"active"|"uninitialized"|"frozen", last_transaction_id:{lt:"<n>", hash:"<b64>"}}
//      (never-touched account: balance "0", uninitialized, lt "0", hash of 32 zero bytes)
// /api/v2/runGetMethod {address, method: name | id, stack: [entry...]}
//   argument entries: ["num", "<decimal>" | "0x<hex>" | "-0x<hex>" | <JS integer>],
//     ["slice", "<b64 BOC of a cell whose bits/refs are the slice>"], ["cell", "<b64 BOC>"],
//     ["null"]; also ["tvm.Slice"|"tvm.Cell", b64] and {"bytes": b64} in place of b64.
//   -> {exit_code, gas_used, stack}: result entries ["num","0x<hex>"|"-0x<hex>"],
//      ["cell",{bytes}], ["slice",{bytes}] (bytes: b64 BOC of a cell holding the slice),
//      ["builder",{bytes}], ["null",null], ["tuple",{"@type":"tvm.tuple",elements:[tonlib-style
//      tvm.stackEntry* objects]}]. A throwing get-method is a result with exit_code != 0 (like
//      toncenter); a get-method on a non-active account is exit_code -13 with an empty stack.
// /api/v2/sendBocReturnHash {boc: "<b64 external-in message>"}
//   -> {hash:"<b64 message cell hash>", hash_norm:"<b64 TEP-467 normalized hash>"}; the message
//      and every internal message it causes are processed to completion before the answer.
//      A message the account does not accept -> 400 (toncenter says 500; 400 keeps the Rust
//      client from retrying a deterministic refusal).
// /api/v2/getTransactions ?address&limit(1..100, default 10; larger is clamped)&lt&hash
//   -> newest first; with lt+hash (hash in base64, base64url or hex) from that transaction
//      inclusive (404 if unknown). Each: {transaction_id:{lt,hash}, utime, fee, storage_fee,
//      other_fee, data:"<b64 tx BOC>", in_msg, out_msgs:[...]}; a message is {source,
//      destination (raw `0:<hex>`, "" for none/external), value, fwd_fee, ihr_fee, created_lt,
//      bounce, bounced, body_hash, msg_data:{body:"<b64 BOC>", init_state:"<b64 BOC>"|""}}.
// /api/v2/getMasterchainInfo
//   -> {"@type":"blocks.masterchainInfo", last:{workchain:-1, shard, seqno, root_hash,
//       file_hash}, init:{... seqno 0}, state_root_hash, utime}: seqno goes up by one per
//       processed sendBocReturnHash / fund; utime (not in toncenter) is the sandbox clock.
// /sandbox/fund {address, amount:"<nano>"}  a non-bounceable transfer from the sandbox
//   treasury (a real wallet transaction, recorded like sendBoc) -> {transaction_id:{lt,hash}}
//   of the receiving transaction.
// /sandbox/advance {secs}  moves the clock forward -> {now};   /sandbox/now -> {now}
import http from 'node:http';
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Blockchain, EmulationError, GetMethodError, TimeError } from '@ton/sandbox';
import { Address, beginCell, Cell, external, internal, loadMessage, storeStateInit } from '@ton/core';

const MAX_BODY = 4 << 20;
const INT257 = 1n << 256n;

class HttpError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}
const bad = (message) => new HttpError(400, message);

const b64 = (cell) => cell.toBoc().toString('base64');
const rawAddr = (a) => (Address.isAddress(a) ? a.toRawString() : '');

function parseAddress(text) {
  if (typeof text !== 'string' || !text) throw bad('address is required');
  try { return Address.parse(text); } catch { throw bad(`bad address: ${text}`); }
}

function parseCell(v, what) {
  const text = v && typeof v === 'object' ? v.bytes : v;
  if (typeof text !== 'string') throw bad(`${what}: expected a base64 BOC`);
  try { return Cell.fromBase64(text); } catch (e) { throw bad(`${what}: bad BOC: ${e.message}`); }
}

// Decimal, 0x-hex (either with a leading '-') or a safe JS integer, within 257 bits.
function parseInt257(v, what) {
  let n;
  if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
  else if (typeof v === 'string' && /^-?(0x[0-9a-f]+|[0-9]+)$/i.test(v.trim())) {
    const t = v.trim();
    n = t.startsWith('-') ? -BigInt(t.slice(1)) : BigInt(t);
  } else throw bad(`${what}: not an integer: ${JSON.stringify(v)}`);
  if (n < -INT257 || n >= INT257) throw bad(`${what}: out of the 257-bit range`);
  return n;
}

function stackArg(entry, i) {
  if (!Array.isArray(entry) || typeof entry[0] !== 'string') throw bad(`stack[${i}]: expected [type, value]`);
  const [type, value] = entry;
  switch (type) {
    case 'num': case 'int': case 'tvm.Number': return { type: 'int', value: parseInt257(value, `stack[${i}]`) };
    case 'slice': case 'tvm.Slice': return { type: 'slice', cell: parseCell(value, `stack[${i}]`) };
    case 'cell': case 'tvm.Cell': return { type: 'cell', cell: parseCell(value, `stack[${i}]`) };
    case 'null': return { type: 'null' };
    default: throw bad(`stack[${i}]: unsupported type ${type}`);
  }
}

const hexInt = (n) => (n < 0n ? `-0x${(-n).toString(16)}` : `0x${n.toString(16)}`);

// Top-level entries in toncenter's [type, value] form.
function stackEntry(item) {
  switch (item.type) {
    case 'int': return ['num', hexInt(item.value)];
    case 'nan': return ['num', 'NaN'];
    case 'null': return ['null', null];
    case 'cell': case 'slice': case 'builder': return [item.type, { bytes: b64(item.cell) }];
    case 'tuple': return ['tuple', { '@type': 'tvm.tuple', elements: item.items.map(tonlibEntry) }];
    default: return ['unknown', null];
  }
}

// Inside tuples toncenter passes tonlib's objects through unchanged; mimic them.
function tonlibEntry(item) {
  switch (item.type) {
    case 'int': return { '@type': 'tvm.stackEntryNumber', number: { '@type': 'tvm.numberDecimal', number: item.value.toString() } };
    case 'cell': return { '@type': 'tvm.stackEntryCell', cell: { '@type': 'tvm.cell', bytes: b64(item.cell) } };
    case 'slice': return { '@type': 'tvm.stackEntrySlice', slice: { '@type': 'tvm.slice', bytes: b64(item.cell) } };
    case 'tuple': return { '@type': 'tvm.stackEntryTuple', tuple: { '@type': 'tvm.tuple', elements: item.items.map(tonlibEntry) } };
    default: return { '@type': 'tvm.stackEntryUnsupported' };
  }
}

function renderMessage(m) {
  const info = m.info;
  const int = info.type === 'internal';
  return {
    '@type': 'raw.message',
    source: rawAddr(info.src),
    destination: rawAddr(info.dest),
    value: int ? info.value.coins.toString() : '0',
    fwd_fee: int ? info.forwardFee.toString() : '0',
    ihr_fee: int ? info.ihrFee.toString() : '0',
    created_lt: (info.createdLt ?? 0n).toString(),
    bounce: int ? info.bounce : false,
    bounced: int ? info.bounced : false,
    body_hash: m.body.hash().toString('base64'),
    msg_data: {
      '@type': 'msg.dataRaw',
      body: b64(m.body),
      init_state: m.init ? b64(beginCell().store(storeStateInit(m.init)).endCell()) : '',
    },
  };
}

function renderTx(tx, account) {
  const fee = tx.totalFees.coins;
  const storage = tx.description.type === 'generic' ? tx.description.storagePhase?.storageFeesCollected ?? 0n : 0n;
  return {
    '@type': 'raw.transaction',
    address: { '@type': 'accountAddress', account_address: account },
    utime: tx.now,
    data: b64(tx.raw),
    transaction_id: { '@type': 'internal.transactionId', lt: tx.lt.toString(), hash: tx.hash().toString('base64') },
    fee: fee.toString(),
    storage_fee: storage.toString(),
    other_fee: (fee - storage).toString(),
    in_msg: tx.inMessage ? renderMessage(tx.inMessage) : null,
    out_msgs: [...tx.outMessages.values()].map(renderMessage),
  };
}

// toncenter takes a transaction hash as base64, base64url or hex.
function parseHash(text) {
  const t = text.replace(/ /g, '+'); // a '+' that arrived unescaped in a query string
  const buf = /^[0-9a-f]{64}$/i.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (buf.length !== 32) throw bad('hash: expected 32 bytes');
  return buf;
}

const blockId = (seqno) => {
  const h = (tag) => createHash('sha256').update(`sandbox-${tag}-${seqno}`).digest('base64');
  return { '@type': 'ton.blockIdExt', workchain: -1, shard: '-9223372036854775808', seqno, root_hash: h('root'), file_hash: h('file') };
};

export async function start({ port = 0, host = '127.0.0.1', now = Math.floor(Date.now() / 1000) } = {}) {
  const blockchain = await Blockchain.create();
  blockchain.verbosity = { print: false, blockchainLogs: false, vmLogs: 'none', debugLogs: false };
  blockchain.now = now; // always explicit: tests move it with /sandbox/advance
  const treasury = await blockchain.treasury('sandbox-api', { balance: 10n ** 27n });
  const txsOf = new Map(); // raw address -> its transactions, oldest first (lt ascending)
  let seqno = 1;

  // One request at a time touches the blockchain, so nothing sees a half-processed chain.
  let queue = Promise.resolve();
  const serial = (fn) => { const p = queue.then(fn); queue = p.catch(() => {}); return p; };

  // Runs a message and everything it causes; records each transaction as it happens. A
  // private queue (allowParallel) means a failure mid-chain leaves nothing queued behind.
  async function runMessage(message) {
    const done = [];
    try {
      for await (const tx of await blockchain.sendMessageIter(message, { allowParallel: true })) {
        const account = rawAddr(tx.inMessage?.info.dest);
        if (!txsOf.has(account)) txsOf.set(account, []);
        txsOf.get(account).push(tx);
        done.push(tx);
      }
    } catch (e) {
      if (done.length === 0 && (e instanceof EmulationError || e instanceof TimeError)) {
        const why = e instanceof EmulationError ? `${e.error}${e.exitCode !== undefined ? ` (exit code ${e.exitCode})` : ''}` : e.message;
        throw bad(`message not accepted: ${why}`);
      }
      throw e;
    } finally {
      if (done.length) seqno += 1;
    }
    return done;
  }

  const routes = {
    '/api/v2/getAddressInformation': async (p) => {
      const c = await blockchain.getContract(parseAddress(p.address));
      const st = c.accountState;
      const active = st?.type === 'active';
      return {
        '@type': 'raw.fullAccountState',
        balance: c.balance.toString(),
        code: active && st.state.code ? b64(st.state.code) : '',
        data: active && st.state.data ? b64(st.state.data) : '',
        state: active ? 'active' : st?.type === 'frozen' ? 'frozen' : 'uninitialized',
        last_transaction_id: {
          '@type': 'internal.transactionId',
          lt: c.lastTransactionLt.toString(),
          hash: Buffer.from(c.lastTransactionHash.toString(16).padStart(64, '0'), 'hex').toString('base64'),
        },
        frozen_hash: '',
        sync_utime: blockchain.now,
      };
    },

    '/api/v2/runGetMethod': async (p) => {
      const address = parseAddress(p.address);
      const method = typeof p.method === 'string' && /^-?[0-9]+$/.test(p.method) ? Number(p.method) : p.method;
      if (!(typeof method === 'string' && method) && !Number.isSafeInteger(method)) throw bad('method is required');
      const stack = p.stack ?? [];
      if (!Array.isArray(stack)) throw bad('stack: expected an array');
      const args = stack.map(stackArg);
      if ((await blockchain.getContract(address)).accountState?.type !== 'active') {
        return { '@type': 'smc.runResult', exit_code: -13, gas_used: 0, stack: [] };
      }
      try {
        const r = await blockchain.runGetMethod(address, method, args);
        return { '@type': 'smc.runResult', exit_code: r.exitCode, gas_used: Number(r.gasUsed), stack: r.stack.map(stackEntry) };
      } catch (e) {
        if (e instanceof GetMethodError) {
          return { '@type': 'smc.runResult', exit_code: e.exitCode, gas_used: Number(e.gasUsed), stack: [] };
        }
        throw e;
      }
    },

    '/api/v2/sendBocReturnHash': async (p) => {
      const cell = parseCell(p.boc, 'boc');
      let msg;
      try { msg = loadMessage(cell.beginParse()); } catch (e) { throw bad(`boc is not a message: ${e.message}`); }
      if (msg.info.type !== 'external-in') throw bad('boc is not an external-in message');
      await runMessage(msg);
      const norm = beginCell().storeUint(0b10, 2).storeUint(0, 2).storeAddress(msg.info.dest)
        .storeCoins(0).storeBit(false).storeBit(true).storeRef(msg.body).endCell();
      return { '@type': 'raw.extMessageInfo', hash: cell.hash().toString('base64'), hash_norm: norm.hash().toString('base64') };
    },

    '/api/v2/getTransactions': async (p) => {
      const account = parseAddress(p.address).toRawString();
      const limit = p.limit === undefined || p.limit === '' ? 10 : Number(p.limit);
      if (!Number.isInteger(limit) || limit < 1) throw bad('limit: expected a positive integer');
      const all = txsOf.get(account) ?? [];
      let end = all.length; // exclusive; walk back from here
      if (p.lt !== undefined || p.hash !== undefined) {
        if (p.lt === undefined || p.hash === undefined) throw bad('lt and hash go together');
        const lt = parseInt257(String(p.lt), 'lt');
        const hash = parseHash(String(p.hash));
        end = all.findIndex((t) => t.lt === lt && t.hash().equals(hash)) + 1;
        if (end === 0) throw new HttpError(404, 'transaction not found');
      }
      return all.slice(Math.max(0, end - Math.min(limit, 100)), end).reverse().map((t) => renderTx(t, account));
    },

    '/api/v2/getMasterchainInfo': async () => ({
      '@type': 'blocks.masterchainInfo',
      last: blockId(seqno),
      init: blockId(0),
      state_root_hash: blockId(seqno).root_hash,
      utime: blockchain.now,
    }),

    '/sandbox/fund': async (p) => {
      const to = parseAddress(p.address);
      const amount = parseInt257(typeof p.amount === 'number' ? p.amount : String(p.amount ?? ''), 'amount');
      if (amount <= 0n || amount >= 1n << 120n) throw bad('amount: expected nanotons > 0');
      const body = treasury.createTransfer({ messages: [internal({ to, value: amount, bounce: false })], sendMode: 3 });
      const txs = await runMessage(external({ to: treasury.address, body }));
      const got = txs.find((t) => t.inMessage?.info.type === 'internal' && t.inMessage.info.dest.equals(to));
      if (!got) throw new HttpError(500, 'the treasury did not send');
      return { transaction_id: { lt: got.lt.toString(), hash: got.hash().toString('base64') } };
    },

    '/sandbox/advance': async (p) => {
      const secs = Number(p.secs);
      // Only forward: the sandbox refuses transactions older than an account's last one.
      if (!Number.isSafeInteger(secs) || secs < 0) throw bad('secs: expected a non-negative integer');
      blockchain.now = (blockchain.now ?? Math.floor(Date.now() / 1000)) + secs;
      return { now: blockchain.now };
    },

    '/sandbox/now': async () => ({ now: blockchain.now }),
  };

  async function handle(req, url) {
    const route = routes[url.pathname.replace(/\/+$/, '')];
    if (!route) throw new HttpError(404, `unknown method ${url.pathname}`);
    const params = Object.fromEntries(url.searchParams);
    if (req.method === 'POST') {
      const chunks = [];
      let size = 0;
      for await (const chunk of req) {
        size += chunk.length;
        if (size <= MAX_BODY) chunks.push(chunk); // keep draining so the answer reaches the client
      }
      if (size > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim()) {
        let body;
        try { body = JSON.parse(text); } catch { throw bad('request body is not JSON'); }
        if (!body || typeof body !== 'object' || Array.isArray(body)) throw bad('request body must be a JSON object');
        Object.assign(params, body);
      }
    } else if (req.method !== 'GET') throw new HttpError(405, `method ${req.method} not allowed`);
    return serial(() => route(params));
  }

  const server = http.createServer(async (req, res) => {
    let status = 200;
    let payload;
    try {
      const url = new URL(req.url, 'http://localhost');
      payload = { ok: true, result: await handle(req, url) };
    } catch (e) {
      status = e instanceof HttpError ? e.code : 500;
      payload = { ok: false, error: e?.message ?? String(e), code: status };
    }
    let text;
    try { text = JSON.stringify(payload); } catch (e) {
      status = 500;
      text = JSON.stringify({ ok: false, error: `response: ${e.message}`, code: 500 });
    }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(text);
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  const bound = server.address().port;
  return {
    url: `http://${host}:${bound}/api/v2`,
    port: bound,
    blockchain,
    close: () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

function main(argv) {
  let port = 0;
  for (let i = 0; i < argv.length; i++) {
    const m = /^--port(?:=(.*))?$/.exec(argv[i]);
    const value = m ? (m[1] ?? argv[++i]) : undefined;
    if (!m || !/^[0-9]+$/.test(value ?? '') || Number(value) > 65535) {
      console.error('usage: node scripts/sandbox-api.js [--port N]');
      process.exit(2);
    }
    port = Number(value);
  }
  const quit = () => process.exit(0);
  process.stdin.on('data', () => {}); // flowing mode, so 'end' fires
  process.stdin.on('end', quit);
  process.stdin.on('close', quit);
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
  start({ port }).then(({ url }) => {
    process.stdout.write(`listening ${url}\n`);
  }, (e) => {
    console.error(`sandbox-api: ${e.stack ?? e}`);
    process.exit(1);
  });
}

const isMain = () => {
  try { return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url)); } catch { return false; }
};
if (isMain()) main(process.argv.slice(2));
