// Client contract and the proxy's client-deposit path.
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  E, OP, STATE, FLOW, NOW, toNano, newWorld, deployProxy, deployClient, clientData, proxyData,
  checkProxyAccounting, voucherCell, signedBody, keyPair, expectTx, expectAllOk, valuesTo,
  recordGas, gasReportTo, body, beginCell, dump,
} from './helpers.js';

gasReportTo(import.meta.url);

const STAKE = toNano('1'); // DEFAULT_PARAMS.minClientStake
const PRICE = 20n;

describe('client contract', () => {
  let w, p, c, labels;

  beforeEach(async () => {
    w = await newWorld();
    p = await deployProxy(w);
    c = await deployClient(w, p, { deposit: toNano('5') });
    labels = [['proxy', p.address], ['client', c.address]];
  });

  const send = (from, op, build = (b) => b, value = FLOW, to = c.address) =>
    from.send({ to, value, body: build(body(op, 3n)).endCell() });
  const charge = (tokens, { kp = p.key, op = OP.V_CHARGE, to = c.address, outer = OP.CLIENT_CHARGE, value = FLOW } = {}) =>
    p.wallet.send({ to: c.address, value, body: signedBody(outer, voucherCell(op, tokens, to), kp) });
  const grant = (tokens, opts = {}) => charge(tokens, { op: OP.V_GRANT_REFUND, outer: OP.CLIENT_GRANT_REFUND, ...opts });
  const check = () => checkProxyAccounting(w, p.address, [c.address]);

  it('deploys through the proxy with its deposit on the proxy', async () => {
    expectAllOk(c.res);
    recordGas('deploy client (owner -> proxy -> client)', c.res, labels);
    const d = await clientData(w, c.address);
    assert.equal(d.state, STATE.OPEN);
    assert.equal(d.balance, toNano('5'));
    assert.equal(d.stake, STAKE);
    assert.equal(d.tokensCharged, 0n);
    const pd = await check();
    assert.equal(pd.clientDeposits, toNano('5'));
    assert.equal(pd.nClients, 1);
  });

  it('a second deploy is undone: its deposit is refunded, the client counted once', async () => {
    const again = await deployClient(w, p, { deposit: toNano('2') });
    expectAllOk(again.res);
    recordGas('deploy client again (duplicate, refunded)', again.res, labels);
    const [v] = valuesTo(again.res, c.owner.address, OP.CLIENT_REFUND_PAYMENT);
    assert.ok(v >= toNano('2') && v < toNano('2') + FLOW, `refund ${v}`);
    const pd = await check();
    assert.equal(pd.nClients, 1);
    assert.equal(pd.clientDeposits, toNano('5'));
    assert.equal((await clientData(w, c.address)).balance, toNano('5'));
  });

  it('deploy needs enough value and an open proxy', async () => {
    const owner = await w.blockchain.treasury('client-2');
    const low = await owner.send({ to: p.address, value: toNano('1'), body: body(OP.DEPLOY_CLIENT).storeCoins(toNano('1')).endCell() });
    expectTx(low, p.address, { code: E.LOW_VALUE });
    expectAllOk(await send(p.owner, OP.PROXY_REQUEST_CLOSE, undefined, FLOW, p.address));
    const closed = await deployClient(w, p, { name: 'client-3' });
    expectTx(closed.res, p.address, { code: E.NOT_OPEN });
    assert.equal((await proxyData(w, p.address)).nClients, 1);
  });

  it('top-up by anyone is credited when the proxy confirms', async () => {
    const friend = await w.blockchain.treasury('friend');
    const res = await send(friend, OP.CLIENT_TOP_UP, (b) => b.storeCoins(toNano('3')), toNano('3') + FLOW);
    expectAllOk(res);
    recordGas('client top-up (anyone -> client -> proxy -> client)', res, labels);
    assert.equal((await clientData(w, c.address)).balance, toNano('8'));
    assert.equal((await check()).clientDeposits, toNano('8'));
    assert.equal(valuesTo(res, friend.address, OP.EXCESSES).length, 1);
  });

  it('top-up errors: zero amount, value too low, client not open', async () => {
    expectTx(await send(c.owner, OP.CLIENT_TOP_UP, (b) => b.storeCoins(0)), c.address, { code: E.ZERO_AMOUNT });
    expectTx(await send(c.owner, OP.CLIENT_TOP_UP, (b) => b.storeCoins(toNano('1')), toNano('1')), c.address, { code: E.LOW_VALUE });
    expectAllOk(await send(c.owner, OP.CLIENT_REQUEST_CLOSE));
    expectTx(await send(c.owner, OP.CLIENT_TOP_UP, (b) => b.storeCoins(toNano('1')), toNano('2')), c.address, { code: E.NOT_OPEN });
    await check();
  });

  it('top-up refused by a closing proxy bounces: nothing credited, value returned', async () => {
    expectAllOk(await send(p.owner, OP.PROXY_REQUEST_CLOSE, undefined, FLOW, p.address));
    const friend = await w.blockchain.treasury('friend');
    const res = await send(friend, OP.CLIENT_TOP_UP, (b) => b.storeCoins(toNano('3')), toNano('3') + FLOW);
    expectTx(res, p.address, { code: E.NOT_OPEN });
    expectTx(res, c.address, { bounced: true });
    recordGas('client top-up refused by proxy (bounce)', res, labels);
    const [v] = valuesTo(res, friend.address, OP.EXCESSES);
    assert.ok(v > toNano('3') && v < toNano('3') + FLOW, `returned ${v}`);
    assert.equal((await clientData(w, c.address)).balance, toNano('5'));
    assert.equal((await check()).clientDeposits, toNano('5'));
  });

  it('withdraw returns exactly the balance above the stake, owner only', async () => {
    const before = await w.balance(p.address);
    expectTx(await send(p.wallet, OP.CLIENT_WITHDRAW), c.address, { code: E.NOT_OWNER });
    const res = await send(c.owner, OP.CLIENT_WITHDRAW);
    expectAllOk(res);
    recordGas('client withdraw (owner -> client -> proxy -> owner)', res, labels);
    assert.equal(await w.balance(p.address), before - toNano('4'));
    const [v] = valuesTo(res, c.owner.address, OP.CLIENT_REFUND_PAYMENT);
    assert.ok(v > toNano('4') && v < toNano('4') + FLOW);
    assert.equal((await clientData(w, c.address)).balance, STAKE);
    assert.equal((await check()).clientDeposits, STAKE);
    expectTx(await send(c.owner, OP.CLIENT_WITHDRAW), c.address, { code: E.NOTHING_TO_WITHDRAW });
    expectTx(await send(c.owner, OP.CLIENT_WITHDRAW, undefined, toNano('0.01')), c.address, { code: E.NOTHING_TO_WITHDRAW });
  });

  it('charge moves Δtokens × price from the deposit to the proxy, strictly increasing', async () => {
    const res = await charge(1000n);
    expectAllOk(res);
    recordGas('client charge (wallet -> client -> proxy)', res, labels);
    let d = await clientData(w, c.address);
    assert.equal(d.balance, toNano('5') - 1000n * PRICE);
    assert.equal(d.tokensCharged, 1000n);
    let pd = await check();
    assert.equal(pd.charged, 1000n * PRICE);
    expectTx(await charge(1000n), c.address, { code: E.STALE_VOUCHER });
    expectTx(await charge(999n), c.address, { code: E.STALE_VOUCHER });
    expectAllOk(await charge(1500n));
    d = await clientData(w, c.address);
    assert.equal(d.balance, toNano('5') - 1500n * PRICE);
    pd = await check();
    assert.equal(pd.charged, 1500n * PRICE);
    assert.equal(valuesTo(res, p.wallet.address, OP.EXCESSES).length, 1);
  });

  it('charge voucher errors: other contract, other key, other op, low value', async () => {
    const other = await deployClient(w, p, { name: 'client-2' });
    expectTx(await charge(10n, { to: other.address }), c.address, { code: E.WRONG_CONTRACT });
    expectTx(await charge(10n, { kp: keyPair('mallory') }), c.address, { code: E.BAD_SIGNATURE });
    expectTx(await charge(10n, { op: OP.V_PAYOUT }), c.address, { code: E.WRONG_VOUCHER_OP });
    expectTx(await charge(10n, { op: OP.V_GRANT_REFUND }), c.address, { code: E.WRONG_VOUCHER_OP });
    expectTx(await charge(10n, { value: toNano('0.01') }), c.address, { code: E.LOW_VALUE });
    assert.equal((await clientData(w, c.address)).tokensCharged, 0n);
    assert.equal((await proxyData(w, p.address)).charged, 0n);
  });

  it('charge is floored at the balance', async () => {
    const huge = toNano('5') / PRICE + 1000n;
    expectAllOk(await charge(huge));
    const d = await clientData(w, c.address);
    assert.equal(d.balance, 0n);
    assert.equal(d.tokensCharged, huge);
    const pd = await check();
    assert.equal(pd.charged, toNano('5'));
    assert.equal(pd.clientDeposits, 0n);
  });

  it('two-phase close: refund above stake now, the stake after the delay', async () => {
    expectTx(await send(p.wallet, OP.CLIENT_REQUEST_CLOSE), c.address, { code: E.NOT_OWNER });
    const first = await send(c.owner, OP.CLIENT_REQUEST_CLOSE);
    expectAllOk(first);
    recordGas('client request close (phase 1, refund above stake)', first, labels);
    let d = await clientData(w, c.address);
    assert.equal(d.state, STATE.CLOSING);
    assert.equal(d.balance, STAKE);
    assert.equal(d.unlockAt, NOW + 300);
    const [v] = valuesTo(first, c.owner.address, OP.CLIENT_REFUND_PAYMENT);
    assert.ok(v > toNano('4') && v < toNano('4') + FLOW);
    await check();
    // the proxy may still charge while closing
    expectAllOk(await charge(100n));
    expectTx(await send(c.owner, OP.CLIENT_REQUEST_CLOSE), c.address, { code: E.NOT_UNLOCKED });
    w.blockchain.now = NOW + 300;
    const second = await send(c.owner, OP.CLIENT_REQUEST_CLOSE);
    expectAllOk(second);
    recordGas('client request close (phase 2, forced refund)', second, labels);
    d = await clientData(w, c.address);
    assert.equal(d.state, STATE.CLOSED);
    assert.equal(d.balance, 0n);
    const [v2] = valuesTo(second, c.owner.address, OP.CLIENT_REFUND_PAYMENT);
    assert.ok(v2 > STAKE - 100n * PRICE && v2 < STAKE + FLOW);
    const pd = await check();
    assert.equal(pd.nClients, 0);
    assert.equal(pd.clientDeposits, 0n);
    assert.equal(pd.charged, 100n * PRICE);
    expectTx(await send(c.owner, OP.CLIENT_REQUEST_CLOSE), c.address, { code: E.CLOSED });
    expectTx(await charge(200n), c.address, { code: E.CLOSED });
    expectTx(await send(c.owner, OP.CLIENT_REQUEST_CLOSE, undefined, toNano('0.01')), c.address, { code: E.LOW_VALUE });
  });

  it('grant refund: charge, close and refund exactly the rest to the owner', async () => {
    expectAllOk(await charge(1000n));
    expectTx(await grant(999n), c.address, { code: E.STALE_VOUCHER });
    expectTx(await grant(2000n, { kp: keyPair('mallory') }), c.address, { code: E.BAD_SIGNATURE });
    const res = await grant(3000n);
    expectAllOk(res);
    recordGas('client grant refund (wallet -> client -> proxy -> owner, wallet)', res, labels);
    assert.deepEqual(valuesTo(res, c.owner.address, OP.CLIENT_REFUND_PAYMENT), [toNano('5') - 3000n * PRICE]);
    const d = await clientData(w, c.address);
    assert.equal(d.state, STATE.CLOSED);
    assert.equal(d.tokensCharged, 3000n);
    const pd = await check();
    assert.equal(pd.charged, 3000n * PRICE);
    assert.equal(pd.nClients, 0);
    expectTx(await grant(3000n), c.address, { code: E.CLOSED });
  });

  it('grant refund may repeat the charged count and works while closing', async () => {
    expectAllOk(await charge(1000n));
    expectAllOk(await send(c.owner, OP.CLIENT_REQUEST_CLOSE));
    const res = await grant(1000n);
    expectAllOk(res);
    assert.deepEqual(valuesTo(res, c.owner.address, OP.CLIENT_REFUND_PAYMENT), [STAKE]);
    assert.equal((await clientData(w, c.address)).state, STATE.CLOSED);
    assert.equal((await check()).nClients, 0);
  });

  it('owner settings: increase stake, secret hash, register nonce', async () => {
    expectTx(await send(p.wallet, OP.CLIENT_INCREASE_STAKE, (b) => b.storeCoins(toNano('2'))), c.address, { code: E.NOT_OWNER });
    expectTx(await send(c.owner, OP.CLIENT_INCREASE_STAKE, (b) => b.storeCoins(STAKE)), c.address, { code: E.STAKE_TOO_LOW });
    const inc = await send(c.owner, OP.CLIENT_INCREASE_STAKE, (b) => b.storeCoins(toNano('2')));
    expectAllOk(inc);
    recordGas('client increase stake', inc, labels);
    const sh = await send(c.owner, OP.CLIENT_SET_SECRET_HASH, (b) => b.storeUint(0xabcdefn, 256));
    expectAllOk(sh);
    recordGas('client set secret hash', sh, labels);
    expectTx(await send(p.wallet, OP.CLIENT_SET_SECRET_HASH, (b) => b.storeUint(1n, 256)), c.address, { code: E.NOT_OWNER });
    const reg = await send(c.owner, OP.CLIENT_REGISTER, (b) => b.storeUint(42n, 64));
    expectAllOk(reg);
    recordGas('client register nonce', reg, labels);
    expectTx(await send(p.wallet, OP.CLIENT_REGISTER, (b) => b.storeUint(43n, 64)), c.address, { code: E.NOT_OWNER });
    let d = await clientData(w, c.address);
    assert.equal(d.stake, toNano('2'));
    assert.equal(d.secretHash, 0xabcdefn);
    assert.equal(d.registeredNonce, 42n);
    // withdraw now keeps the larger stake
    expectAllOk(await send(c.owner, OP.CLIENT_WITHDRAW));
    assert.equal((await clientData(w, c.address)).balance, toNano('2'));
    // closing: no stake increase or register, secret hash still allowed
    expectAllOk(await send(c.owner, OP.CLIENT_REQUEST_CLOSE));
    expectTx(await send(c.owner, OP.CLIENT_INCREASE_STAKE, (b) => b.storeCoins(toNano('3'))), c.address, { code: E.NOT_OPEN });
    expectTx(await send(c.owner, OP.CLIENT_REGISTER, (b) => b.storeUint(44n, 64)), c.address, { code: E.NOT_OPEN });
    expectTx(await send(c.owner, OP.CLIENT_WITHDRAW), c.address, { code: E.NOT_OPEN });
    expectAllOk(await send(c.owner, OP.CLIENT_SET_SECRET_HASH, (b) => b.storeUint(7n, 256)));
    w.blockchain.now = NOW + 300;
    expectAllOk(await send(c.owner, OP.CLIENT_REQUEST_CLOSE));
    expectTx(await send(c.owner, OP.CLIENT_SET_SECRET_HASH, (b) => b.storeUint(8n, 256)), c.address, { code: E.CLOSED });
    d = await clientData(w, c.address);
    assert.equal(d.secretHash, 7n);
    await check();
  });

  it('the proxy refuses settlements and top-ups not sent by the client contract', async () => {
    const mallory = await w.blockchain.treasury('mallory');
    const settle = beginCell().storeUint(OP.CLIENT_SETTLE, 32).storeUint(0, 64)
      .storeAddress(c.owner.address).storeAddress(mallory.address).storeCoins(0).storeCoins(toNano('4'))
      .storeBit(false).storeUint(1, 8).storeUint(0, 64).storeUint(0, 64).endCell();
    expectTx(await mallory.send({ to: p.address, value: FLOW, body: settle }), p.address, { code: E.NOT_CLIENT });
    const topUp = beginCell().storeUint(OP.CLIENT_TOP_UP_REQUEST, 32).storeUint(0, 64)
      .storeAddress(c.owner.address).storeCoins(toNano('1')).storeAddress(mallory.address).endCell();
    expectTx(await mallory.send({ to: p.address, value: toNano('2'), body: topUp }), p.address, { code: E.NOT_CLIENT });
    const init = beginCell().storeUint(OP.CLIENT_INIT, 32).storeUint(0, 64).storeCoins(toNano('100'))
      .storeAddress(mallory.address).endCell();
    expectTx(await mallory.send({ to: c.address, value: FLOW, body: init }), c.address, { code: E.NOT_PROXY });
    const unknown = await mallory.send({ to: c.address, value: FLOW, body: beginCell().storeUint(0x77, 32).endCell() });
    expectTx(unknown, c.address, { code: E.UNKNOWN_OP });
    expectTx(await mallory.send({ to: c.address, value: FLOW }), c.address, { code: E.UNKNOWN_OP });
    await check();
  });

  it('a top-up confirmed after the client closed goes back to the owner', async () => {
    w.blockchain.now = NOW;
    expectAllOk(await send(c.owner, OP.CLIENT_REQUEST_CLOSE)); // closing; unlock at NOW + 300
    // re-open is impossible, so: top-up while open is needed. Use a fresh client instead.
    const c2 = await deployClient(w, p, { name: 'client-2', deposit: toNano('2') });
    const friend = await w.blockchain.treasury('friend');
    const topUp = {
      info: { type: 'internal', ihrDisabled: true, bounce: true, bounced: false, src: friend.address,
        dest: c2.address, value: { coins: toNano('1') + FLOW }, ihrFee: 0n, forwardFee: 0n, createdLt: 0n, createdAt: 0 },
      body: body(OP.CLIENT_TOP_UP).storeCoins(toNano('1')).endCell(),
    };
    const grantMsg = {
      info: { ...topUp.info, src: p.wallet.address, value: { coins: FLOW } },
      body: signedBody(OP.CLIENT_GRANT_REFUND, voucherCell(OP.V_GRANT_REFUND, 0n, c2.address), p.key),
    };
    // top-up reaches the client (request sent), then the grant closes the client, and only
    // then does the proxy see the request and confirm it
    const iterA = await w.blockchain.sendMessageIter(topUp);
    await iterA.next();
    const iterB = await w.blockchain.sendMessageIter(grantMsg);
    const rest = [];
    // (the sandbox has one queue: step until the grant has closed the client)
    for (let i = 0; i < 3 && (await clientData(w, c2.address)).state !== STATE.CLOSED; i++) {
      rest.push((await iterB.next()).value);
    }
    assert.equal((await clientData(w, c2.address)).state, STATE.CLOSED);
    for (let r = await iterA.next(); !r.done; r = await iterA.next()) rest.push(r.value);
    for (let r = await iterB.next(); !r.done; r = await iterB.next()) rest.push(r.value);
    if (process.env.DUMP) dump({ transactions: rest });
    const refunds = rest.filter((t) => t.inMessage.info.dest.equals(c2.owner.address))
      .map((t) => t.inMessage.info.value.coins);
    // the late top-up (1 TON) and the granted refund (2 TON), each to the owner
    assert.deepEqual(refunds.sort(), [toNano('1'), toNano('2')]);
    assert.equal((await clientData(w, c2.address)).balance, 0n);
    await checkProxyAccounting(w, p.address, [c.address, c2.address]);
  });
});
