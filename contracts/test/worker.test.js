// Worker contract and the proxy's payout path.
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  E, OP, STATE, FLOW, toNano, newWorld, deployProxy, deployWorker, deployClient, workerData,
  proxyData, checkProxyAccounting, voucherCell, signedBody, keyPair, expectTx, expectAllOk,
  valuesTo, recordGas, gasReportTo, beginCell, clientData,
} from './helpers.js';

gasReportTo(import.meta.url);

describe('worker contract', () => {
  let w, p, wk, labels;

  beforeEach(async () => {
    w = await newWorld();
    p = await deployProxy(w);
    wk = await deployWorker(w, p);
    labels = [['proxy', p.address], ['worker', wk.address], ['root', w.root]];
  });

  const payout = (tokens, { kp = p.key, op = OP.V_PAYOUT, to = wk.address, outer = OP.WORKER_PAYOUT,
    via = p.wallet, value = FLOW } = {}) =>
    via.send({ to: wk.address, value, body: signedBody(outer, voucherCell(op, tokens, to), kp, 7n) });

  it('deploys through the proxy and registers once', async () => {
    expectAllOk(wk.res);
    recordGas('deploy worker (owner -> proxy -> worker)', wk.res, labels);
    const d = await workerData(w, wk.address);
    assert.equal(d.state, STATE.OPEN);
    assert.equal(d.tokensPaid, 0n);
    assert.ok(d.owner.equals(wk.owner.address));
    assert.ok(d.proxy.equals(p.address));
    assert.equal((await proxyData(w, p.address)).nWorkers, 1);
    // the worker keeps at most MIN_STORAGE; the rest came back to the owner
    assert.ok((await w.balance(wk.address)) <= toNano('0.01'));
    assert.equal(valuesTo(wk.res, wk.owner.address, OP.EXCESSES).length, 1);
  });

  it('a second deploy is undone (counted once, value returned)', async () => {
    const again = await deployWorker(w, p);
    expectAllOk(again.res);
    recordGas('deploy worker again (duplicate, undone)', again.res, labels);
    assert.equal((await proxyData(w, p.address)).nWorkers, 1);
    assert.equal((await workerData(w, wk.address)).state, STATE.OPEN);
    assert.equal(valuesTo(again.res, wk.owner.address, OP.EXCESSES).length, 1);
  });

  it('pays out from the stake: worker part to the owner, commission to the proxy', async () => {
    const before = await proxyData(w, p.address);
    const res = await payout(1000n);
    expectAllOk(res);
    recordGas('worker payout (wallet -> worker -> proxy -> owner, worker)', res, labels);
    // exactly Δ × fee arrives at the owner
    assert.deepEqual(valuesTo(res, wk.owner.address, OP.WORKER_PAYMENT), [16000n]);
    const after = await checkProxyAccounting(w, p.address);
    assert.equal(after.stake, before.stake - 20000n); // nothing charged yet: all from stake
    assert.equal(after.commission, 4000n);
    assert.equal(after.charged, 0n);
    const d = await workerData(w, wk.address);
    assert.equal(d.tokensPaid, 1000n);
    assert.equal(d.pending, 0);
    // the submitter gets the excess back
    assert.equal(valuesTo(res, p.wallet.address, OP.EXCESSES).length, 1);
  });

  it('pays from charged client money first, then the stake', async () => {
    const c = await deployClient(w, p, { deposit: toNano('5') });
    const charge = await p.wallet.send({
      to: c.address, value: FLOW,
      body: signedBody(OP.CLIENT_CHARGE, voucherCell(OP.V_CHARGE, 500n, c.address), p.key),
    });
    expectAllOk(charge);
    let d = await proxyData(w, p.address);
    assert.equal(d.charged, 10000n);
    const stake0 = d.stake;
    const res = await payout(800n); // total 16000: 10000 from charged, 6000 from stake
    expectAllOk(res);
    d = await checkProxyAccounting(w, p.address, [c.address]);
    assert.equal(d.charged, 0n);
    assert.equal(d.stake, stake0 - 6000n);
    assert.equal(d.commission, 800n * 4n);
    assert.deepEqual(valuesTo(res, wk.owner.address, OP.WORKER_PAYMENT), [800n * 16n]);
  });

  it('accepts only strictly increasing cumulative vouchers', async () => {
    expectAllOk(await payout(100n));
    const same = await payout(100n);
    expectTx(same, wk.address, { code: E.STALE_VOUCHER });
    const lower = await payout(50n);
    expectTx(lower, wk.address, { code: E.STALE_VOUCHER });
    const next = await payout(250n);
    expectAllOk(next);
    assert.deepEqual(valuesTo(next, wk.owner.address, OP.WORKER_PAYMENT), [150n * 16n]);
    assert.equal((await workerData(w, wk.address)).tokensPaid, 250n);
    await checkProxyAccounting(w, p.address);
  });

  it('rejects a voucher for another contract, another key, another op', async () => {
    const other = await deployWorker(w, p, { name: 'worker-2' });
    expectTx(await payout(10n, { to: other.address }), wk.address, { code: E.WRONG_CONTRACT });
    expectTx(await payout(10n, { kp: keyPair('mallory') }), wk.address, { code: E.BAD_SIGNATURE });
    expectTx(await payout(10n, { op: OP.V_CHARGE }), wk.address, { code: E.WRONG_VOUCHER_OP });
    expectTx(await payout(10n, { op: OP.V_LAST_PAYOUT }), wk.address, { code: E.WRONG_VOUCHER_OP });
    expectTx(await payout(10n, { value: toNano('0.01') }), wk.address, { code: E.LOW_VALUE });
    assert.equal((await workerData(w, wk.address)).tokensPaid, 0n);
    const d = await proxyData(w, p.address);
    assert.equal(d.commission, 0n);
  });

  it('rejects a forged settlement sent to the proxy by a non-worker', async () => {
    const mallory = await w.blockchain.treasury('mallory');
    const forged = beginCell().storeUint(OP.WORKER_SETTLE, 32).storeUint(0, 64)
      .storeAddress(wk.owner.address).storeAddress(mallory.address).storeUint(0, 8)
      .storeUint(0, 64).storeUint(1000, 64).endCell();
    const res = await mallory.send({ to: p.address, value: FLOW, body: forged });
    expectTx(res, p.address, { code: E.NOT_WORKER });
    assert.equal((await proxyData(w, p.address)).commission, 0n);
  });

  it('a payout the proxy cannot cover bounces and is undone exactly', async () => {
    const before = await proxyData(w, p.address);
    const tooMuch = before.stake / 20n + 1n; // total = tooMuch × 20 > stake
    const res = await payout(tooMuch);
    expectTx(res, p.address, { code: E.INSUFFICIENT_FUNDS });
    expectTx(res, wk.address, { bounced: true });
    recordGas('worker payout refused by proxy (bounce, undone)', res, labels);
    const d = await workerData(w, wk.address);
    assert.equal(d.tokensPaid, 0n);
    assert.equal(d.pending, 0);
    assert.equal(d.state, STATE.OPEN);
    assert.deepEqual(await proxyData(w, p.address), before);
    assert.equal(valuesTo(res, p.wallet.address, OP.EXCESSES).length, 1);
    expectAllOk(await payout(10n)); // and the worker still works
  });

  it('last payout pays, closes the worker and unregisters it; may repeat the count', async () => {
    expectAllOk(await payout(100n));
    const res = await payout(100n, { op: OP.V_LAST_PAYOUT, outer: OP.WORKER_LAST_PAYOUT });
    expectAllOk(res);
    recordGas('worker last payout (closes)', res, labels);
    assert.deepEqual(valuesTo(res, wk.owner.address, OP.WORKER_PAYMENT), []); // Δ = 0
    const d = await workerData(w, wk.address);
    assert.equal(d.state, STATE.CLOSED);
    assert.equal((await proxyData(w, p.address)).nWorkers, 0);
    expectTx(await payout(200n), wk.address, { code: E.NOT_OPEN });
    const lower = await payout(50n, { op: OP.V_LAST_PAYOUT, outer: OP.WORKER_LAST_PAYOUT });
    expectTx(lower, wk.address, { code: E.NOT_OPEN });
  });

  it('last payout must not go backwards', async () => {
    expectAllOk(await payout(100n));
    const res = await payout(99n, { op: OP.V_LAST_PAYOUT, outer: OP.WORKER_LAST_PAYOUT });
    expectTx(res, wk.address, { code: E.STALE_VOUCHER });
    const last = await payout(150n, { op: OP.V_LAST_PAYOUT, outer: OP.WORKER_LAST_PAYOUT });
    expectAllOk(last);
    assert.deepEqual(valuesTo(last, wk.owner.address, OP.WORKER_PAYMENT), [50n * 16n]);
  });

  it('a second payout while one is in flight is refused (busy)', async () => {
    // Deliver only the first hop (wallet -> worker), then submit again.
    const msg = (tokens) => ({
      info: { type: 'internal', ihrDisabled: true, bounce: true, bounced: false, src: p.wallet.address,
        dest: wk.address, value: { coins: FLOW }, ihrFee: 0n, forwardFee: 0n, createdLt: 0n, createdAt: 0 },
      body: signedBody(OP.WORKER_PAYOUT, voucherCell(OP.V_PAYOUT, tokens, wk.address), p.key),
    });
    const iter = await w.blockchain.sendMessageIter(msg(10n));
    const first = await iter.next();
    assert.equal(exitOf(first.value), 0);
    assert.equal((await workerData(w, wk.address)).pending, 1);
    const second = await w.blockchain.sendMessage(msg(20n));
    expectTx(second, wk.address, { code: E.BUSY });
    for (let r = await iter.next(); !r.done; r = await iter.next()) { /* drain */ }
    const d = await workerData(w, wk.address);
    assert.equal(d.pending, 0);
    assert.equal(d.tokensPaid, 10n);
  });

  it('worker rejects plain transfers and unknown ops; only the proxy may init/ack', async () => {
    const mallory = await w.blockchain.treasury('mallory');
    expectTx(await mallory.send({ to: wk.address, value: FLOW }), wk.address, { code: E.UNKNOWN_OP });
    const unknown = await mallory.send({ to: wk.address, value: FLOW, body: beginCell().storeUint(0x1234, 32).endCell() });
    expectTx(unknown, wk.address, { code: E.UNKNOWN_OP });
    const fakeInit = beginCell().storeUint(OP.WORKER_INIT, 32).storeUint(0, 64).storeAddress(mallory.address).endCell();
    expectTx(await mallory.send({ to: wk.address, value: FLOW, body: fakeInit }), wk.address, { code: E.NOT_PROXY });
    const fakeAck = beginCell().storeUint(0x3c0d0002, 32).storeUint(0, 64).storeUint(5, 64)
      .storeAddress(mallory.address).endCell();
    expectTx(await mallory.send({ to: wk.address, value: FLOW, body: fakeAck }), wk.address, { code: E.NOT_PROXY });
  });
});

function exitOf(tx) {
  const c = tx.description.computePhase;
  return c.type === 'vm' ? c.exitCode : null;
}

// keep imports used
void clientData;
