// Proxy contract: deploy through the root, stake, commission, anchors, close.
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { sign } from '@ton/crypto';
import {
  E, OP, STATE, FLOW, NOW, PROXY_RESERVE, toNano, newWorld, deployProxy, deployClient, deployWorker,
  proxyData, checkProxyAccounting, voucherCell, signedBody, keyPair, expectTx, expectAllOk, valuesTo,
  recordGas, gasReportTo, body, anchorCell, beginCell, pubkeyInt,
} from './helpers.js';

gasReportTo(import.meta.url);

describe('proxy contract', () => {
  let w, p, labels;

  beforeEach(async () => {
    w = await newWorld();
    p = await deployProxy(w);
    labels = [['root', w.root], ['proxy', p.address]];
  });

  const send = (from, op, build = (b) => b, value = FLOW) =>
    from.send({ to: p.address, value, body: build(body(op, 5n)).endCell() });
  const anchor = (seqno, { kp = p.key, proxy = p.address, tag = OP.ANCHOR_TAG, via = p.wallet } = {}) => {
    const a = anchorCell(proxy, seqno, 0xfeedn + BigInt(seqno), tag);
    return via.send({ to: p.address, value: FLOW,
      body: body(OP.PROXY_ANCHOR, 1n).storeBuffer(sign(a.hash(), kp.secretKey)).storeRef(a).endCell() });
  };

  it('is deployed by the root with its stake, the current params and code', async () => {
    expectAllOk(p.res);
    recordGas('deploy proxy (owner -> root -> proxy)', p.res, labels);
    const d = await checkProxyAccounting(w, p.address);
    assert.equal(d.state, STATE.OPEN);
    assert.equal(d.stake, toNano('10'));
    assert.equal(await w.balance(p.address), toNano('10') + PROXY_RESERVE);
    const id = await w.get(p.address, 'proxy_ident');
    assert.ok(id.readAddress().equals(p.owner.address));
    assert.equal(id.readBigNumber(), pubkeyInt(p.key));
    assert.ok(id.readAddress().equals(w.root));
    assert.equal(id.readNumber(), 0);
    const params = await w.get(p.address, 'proxy_params');
    assert.equal(params.readBigNumber(), 20n);
    assert.equal(params.readBigNumber(), 16n);
  });

  it('deploy errors: stake below minimum, value too low, already deployed (value returned)', async () => {
    const owner = await w.blockchain.treasury('p2-owner');
    const key = pubkeyInt(keyPair('p2'));
    const low = await owner.send({ to: w.root, value: toNano('2'),
      body: body(OP.ROOT_DEPLOY_PROXY).storeUint(key, 256).storeCoins(toNano('0.5')).endCell() });
    expectTx(low, w.root, { code: E.STAKE_TOO_LOW });
    const lowValue = await owner.send({ to: w.root, value: toNano('1'),
      body: body(OP.ROOT_DEPLOY_PROXY).storeUint(key, 256).storeCoins(toNano('1')).endCell() });
    expectTx(lowValue, w.root, { code: E.LOW_VALUE });
    const again = await deployProxy(w); // same owner and key: same address
    expectTx(again.res, p.address, { code: E.ALREADY_DEPLOYED });
    expectTx(again.res, w.root, { bounced: true });
    recordGas('deploy proxy again (refused, value returned)', again.res, labels);
    const [v] = valuesTo(again.res, p.owner.address, OP.EXCESSES);
    assert.ok(v > toNano('10'), `returned ${v}`);
    assert.equal((await proxyData(w, p.address)).stake, toNano('10'));
    const mallory = await w.blockchain.treasury('mallory');
    const fake = beginCell().storeUint(0x3c0a0000, 32).storeUint(0, 64).storeAddress(mallory.address)
      .storeCoins(toNano('1')).endCell();
    expectTx(await mallory.send({ to: p.address, value: toNano('2'), body: fake }), p.address, { code: E.NOT_ROOT });
  });

  it('increase stake by anyone adds exactly the amount', async () => {
    const friend = await w.blockchain.treasury('friend');
    const res = await send(friend, OP.PROXY_INCREASE_STAKE, (b) => b.storeCoins(toNano('2')), toNano('2') + FLOW);
    expectAllOk(res);
    recordGas('proxy increase stake', res, labels);
    assert.equal((await checkProxyAccounting(w, p.address)).stake, toNano('12'));
    expectTx(await send(friend, OP.PROXY_INCREASE_STAKE, (b) => b.storeCoins(0)), p.address, { code: E.ZERO_AMOUNT });
    expectTx(await send(friend, OP.PROXY_INCREASE_STAKE, (b) => b.storeCoins(toNano('2')), toNano('2')), p.address, { code: E.LOW_VALUE });
    expectAllOk(await send(p.owner, OP.PROXY_REQUEST_CLOSE));
    expectTx(await send(friend, OP.PROXY_INCREASE_STAKE, (b) => b.storeCoins(toNano('1')), toNano('2')), p.address, { code: E.NOT_OPEN });
  });

  it('withdraw pays the commission to the owner only', async () => {
    expectTx(await send(p.owner, OP.PROXY_WITHDRAW), p.address, { code: E.NOTHING_TO_WITHDRAW });
    const wk = await deployWorker(w, p);
    expectAllOk(await p.wallet.send({ to: wk.address, value: FLOW,
      body: signedBody(OP.WORKER_PAYOUT, voucherCell(OP.V_PAYOUT, 1_000_000n, wk.address), p.key) }));
    assert.equal((await proxyData(w, p.address)).commission, 4_000_000n);
    expectTx(await send(p.wallet, OP.PROXY_WITHDRAW), p.address, { code: E.NOT_OWNER });
    const before = await w.balance(p.address);
    const res = await send(p.owner, OP.PROXY_WITHDRAW);
    expectAllOk(res);
    recordGas('proxy withdraw commission', res, labels);
    assert.equal(await w.balance(p.address), before - 4_000_000n);
    const [v] = valuesTo(res, p.owner.address, OP.PROXY_OWNER_PAYMENT);
    assert.ok(v > 4_000_000n && v < 4_000_000n + FLOW);
    assert.equal((await checkProxyAccounting(w, p.address)).commission, 0n);
  });

  it('anchors: proxy-signed, bound to this proxy, seqno strictly increasing', async () => {
    const res = await anchor(1);
    expectAllOk(res);
    recordGas('proxy anchor', res, labels);
    let d = await proxyData(w, p.address);
    assert.equal(d.anchorSeqno, 1n);
    assert.equal(d.anchorHash, 0xfeedn + 1n);
    expectTx(await anchor(1), p.address, { code: E.STALE_ANCHOR });
    expectTx(await anchor(5, { kp: keyPair('mallory') }), p.address, { code: E.BAD_SIGNATURE });
    expectTx(await anchor(5, { proxy: w.root }), p.address, { code: E.WRONG_CONTRACT });
    expectTx(await anchor(5, { tag: OP.V_CHARGE }), p.address, { code: E.WRONG_VOUCHER_OP });
    expectAllOk(await anchor(5));
    d = await proxyData(w, p.address);
    assert.equal(d.anchorSeqno, 5n);
  });

  it('close: owner only, after the delay, only once every client and worker is closed', async () => {
    const c = await deployClient(w, p, { deposit: toNano('3') });
    const wk = await deployWorker(w, p);
    expectTx(await send(p.owner, OP.PROXY_COMPLETE_CLOSE), p.address, { code: E.NOT_CLOSING });
    expectTx(await send(p.wallet, OP.PROXY_REQUEST_CLOSE), p.address, { code: E.NOT_OWNER });
    const rc = await send(p.owner, OP.PROXY_REQUEST_CLOSE);
    expectAllOk(rc);
    recordGas('proxy request close', rc, labels);
    let d = await proxyData(w, p.address);
    assert.equal(d.state, STATE.CLOSING);
    assert.equal(d.unlockAt, NOW + 600);
    expectTx(await send(p.owner, OP.PROXY_REQUEST_CLOSE), p.address, { code: E.NOT_OPEN });
    expectTx(await send(p.owner, OP.PROXY_COMPLETE_CLOSE), p.address, { code: E.NOT_UNLOCKED });
    w.blockchain.now = NOW + 600;
    expectTx(await send(p.wallet, OP.PROXY_COMPLETE_CLOSE), p.address, { code: E.NOT_OWNER });
    expectTx(await send(p.owner, OP.PROXY_COMPLETE_CLOSE), p.address, { code: E.OPEN_CONTRACTS });
    // settlement goes on while closing: charge and refund the client, pay the worker last
    expectAllOk(await p.wallet.send({ to: c.address, value: FLOW,
      body: signedBody(OP.CLIENT_GRANT_REFUND, voucherCell(OP.V_GRANT_REFUND, 1_000_000n, c.address), p.key) }));
    expectTx(await send(p.owner, OP.PROXY_COMPLETE_CLOSE), p.address, { code: E.OPEN_CONTRACTS });
    expectAllOk(await p.wallet.send({ to: wk.address, value: FLOW,
      body: signedBody(OP.WORKER_LAST_PAYOUT, voucherCell(OP.V_LAST_PAYOUT, 1_000_000n, wk.address), p.key) }));
    d = await checkProxyAccounting(w, p.address, [c.address]);
    assert.equal(d.nClients, 0);
    assert.equal(d.nWorkers, 0);
    assert.equal(d.charged, 0n);
    assert.equal(d.commission, 4_000_000n);
    const holdings = d.stake + d.commission;
    const res = await send(p.owner, OP.PROXY_COMPLETE_CLOSE);
    expectAllOk(res);
    recordGas('proxy complete close', res, labels);
    const [v] = valuesTo(res, p.owner.address, OP.PROXY_OWNER_PAYMENT);
    assert.ok(v >= holdings + PROXY_RESERVE - toNano('0.001') && v < holdings + PROXY_RESERVE + FLOW, `paid ${v}`);
    d = await proxyData(w, p.address);
    assert.equal(d.state, STATE.CLOSED);
    assert.equal(d.stake + d.commission + d.charged + d.clientDeposits, 0n);
    assert.equal(await w.balance(p.address), 0n);
    expectTx(await send(p.owner, OP.PROXY_COMPLETE_CLOSE), p.address, { code: E.NOT_CLOSING });
    expectTx(await anchor(9), p.address, { code: E.CLOSED });
  });

  it('unknown ops and plain transfers are rejected (bounced)', async () => {
    const mallory = await w.blockchain.treasury('mallory');
    expectTx(await mallory.send({ to: p.address, value: FLOW, body: beginCell().storeUint(0x99, 32).endCell() }),
      p.address, { code: E.UNKNOWN_OP });
    expectTx(await mallory.send({ to: p.address, value: FLOW }), p.address, { code: E.UNKNOWN_OP });
    await checkProxyAccounting(w, p.address);
  });
});
