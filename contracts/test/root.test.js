// Root registry: owner-governed allowlists, proxies, params and code.
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  E, OP, FLOW, DEFAULT_PARAMS, toNano, newWorld, deployProxy, expectTx, expectAllOk, recordGas,
  gasReportTo, body, beginCell, paramsCell, codesCell, pubkeyInt, keyPair,
} from './helpers.js';

gasReportTo(import.meta.url);

const sha = (s) => BigInt('0x' + createHash('sha256').update(s).digest('hex'));

describe('root registry', () => {
  let w, labels, mallory;

  beforeEach(async () => {
    w = await newWorld();
    labels = [['root', w.root]];
    mallory = await w.blockchain.treasury('mallory');
  });

  const send = (from, op, build = (b) => b) =>
    from.send({ to: w.root, value: FLOW, body: build(body(op, 9n)).endCell() });
  const version = async () => { const s = await w.get(w.root, 'root_data'); s.readAddress(); return s.readNumber(); };
  const hasImage = async (role, h) => (await w.get(w.root, 'has_image', [{ type: 'int', value: BigInt(role) }, { type: 'int', value: h }])).readBoolean();
  const hasModel = async (h) => (await w.get(w.root, 'has_model', [{ type: 'int', value: h }])).readBoolean();

  it('image hashes per role: add, refuse duplicates, delete, refuse missing', async () => {
    const h = sha('image-1');
    const add = await send(w.rootOwner, OP.ROOT_ADD_IMAGE, (b) => b.storeUint(1, 8).storeUint(h, 256));
    expectAllOk(add);
    recordGas('root add image hash', add, labels);
    assert.equal(await hasImage(1, h), true);
    assert.equal(await hasImage(0, h), false);
    assert.equal(await version(), 1);
    expectTx(await send(w.rootOwner, OP.ROOT_ADD_IMAGE, (b) => b.storeUint(1, 8).storeUint(h, 256)), w.root, { code: E.EXISTS });
    expectTx(await send(w.rootOwner, OP.ROOT_ADD_IMAGE, (b) => b.storeUint(2, 8).storeUint(h, 256)), w.root, { code: E.UNKNOWN_ROLE });
    expectTx(await send(mallory, OP.ROOT_ADD_IMAGE, (b) => b.storeUint(0, 8).storeUint(h, 256)), w.root, { code: E.NOT_OWNER });
    expectAllOk(await send(w.rootOwner, OP.ROOT_ADD_IMAGE, (b) => b.storeUint(0, 8).storeUint(h, 256)));
    const del = await send(w.rootOwner, OP.ROOT_DEL_IMAGE, (b) => b.storeUint(1, 8).storeUint(h, 256));
    expectAllOk(del);
    recordGas('root delete image hash', del, labels);
    assert.equal(await hasImage(1, h), false);
    assert.equal(await hasImage(0, h), true);
    expectTx(await send(w.rootOwner, OP.ROOT_DEL_IMAGE, (b) => b.storeUint(1, 8).storeUint(h, 256)), w.root, { code: E.NOT_FOUND });
    expectTx(await send(mallory, OP.ROOT_DEL_IMAGE, (b) => b.storeUint(0, 8).storeUint(h, 256)), w.root, { code: E.NOT_OWNER });
    assert.equal(await version(), 3);
  });

  it('model hashes: add, delete, errors', async () => {
    const h = sha('llama@1:abc');
    const add = await send(w.rootOwner, OP.ROOT_ADD_MODEL, (b) => b.storeUint(h, 256));
    expectAllOk(add);
    recordGas('root add model hash', add, labels);
    assert.equal(await hasModel(h), true);
    assert.equal(await hasModel(h + 1n), false);
    expectTx(await send(w.rootOwner, OP.ROOT_ADD_MODEL, (b) => b.storeUint(h, 256)), w.root, { code: E.EXISTS });
    expectTx(await send(mallory, OP.ROOT_ADD_MODEL, (b) => b.storeUint(h + 1n, 256)), w.root, { code: E.NOT_OWNER });
    expectAllOk(await send(w.rootOwner, OP.ROOT_DEL_MODEL, (b) => b.storeUint(h, 256)));
    assert.equal(await hasModel(h), false);
    expectTx(await send(w.rootOwner, OP.ROOT_DEL_MODEL, (b) => b.storeUint(h, 256)), w.root, { code: E.NOT_FOUND });
    expectTx(await send(mallory, OP.ROOT_DEL_MODEL, (b) => b.storeUint(h, 256)), w.root, { code: E.NOT_OWNER });
  });

  it('registered proxies: register, update, unregister', async () => {
    const entry = (ep) => beginCell().storeAddress(mallory.address).storeRef(beginCell().storeStringTail(ep).endCell()).endCell();
    const reg = await send(w.rootOwner, OP.ROOT_REGISTER_PROXY, (b) => b.storeRef(entry('a:1 a:2')));
    expectAllOk(reg);
    recordGas('root register proxy', reg, labels);
    expectAllOk(await send(w.rootOwner, OP.ROOT_REGISTER_PROXY, (b) => b.storeRef(entry('b:1 b:2'))));
    const get = async (id) => (await w.get(w.root, 'proxy_entry', [{ type: 'int', value: BigInt(id) }])).readCellOpt();
    const text = (c) => { const s = c.beginParse(); s.loadAddress(); return s.loadRef().beginParse().loadStringTail(); };
    assert.equal(text(await get(0)), 'a:1 a:2');
    assert.equal(text(await get(1)), 'b:1 b:2');
    expectAllOk(await send(w.rootOwner, OP.ROOT_UPDATE_PROXY, (b) => b.storeUint(1, 32).storeRef(entry('c:1 c:2'))));
    assert.equal(text(await get(1)), 'c:1 c:2');
    expectTx(await send(w.rootOwner, OP.ROOT_UPDATE_PROXY, (b) => b.storeUint(7, 32).storeRef(entry('x'))), w.root, { code: E.NOT_FOUND });
    expectAllOk(await send(w.rootOwner, OP.ROOT_UNREGISTER_PROXY, (b) => b.storeUint(0, 32)));
    assert.equal(await get(0), null);
    expectTx(await send(w.rootOwner, OP.ROOT_UNREGISTER_PROXY, (b) => b.storeUint(0, 32)), w.root, { code: E.NOT_FOUND });
    expectTx(await send(mallory, OP.ROOT_REGISTER_PROXY, (b) => b.storeRef(entry('m'))), w.root, { code: E.NOT_OWNER });
    expectTx(await send(mallory, OP.ROOT_UNREGISTER_PROXY, (b) => b.storeUint(1, 32)), w.root, { code: E.NOT_OWNER });
    expectTx(await send(mallory, OP.ROOT_UPDATE_PROXY, (b) => b.storeUint(1, 32).storeRef(entry('m'))), w.root, { code: E.NOT_OWNER });
    const s = await w.get(w.root, 'root_data'); s.readAddress(); s.readNumber();
    assert.equal(s.readNumber(), 2); // next id
  });

  it('params: owner sets them, fee must not exceed price, new proxies use them', async () => {
    const next = { ...DEFAULT_PARAMS, pricePerToken: 30n, workerFeePerToken: 25n, minProxyStake: toNano('2') };
    expectTx(await send(mallory, OP.ROOT_SET_PARAMS, (b) => b.storeRef(paramsCell(next))), w.root, { code: E.NOT_OWNER });
    expectTx(await send(w.rootOwner, OP.ROOT_SET_PARAMS, (b) => b.storeRef(paramsCell({ ...next, workerFeePerToken: 31n }))), w.root, { code: E.BAD_PARAMS });
    const set = await send(w.rootOwner, OP.ROOT_SET_PARAMS, (b) => b.storeRef(paramsCell(next)));
    expectAllOk(set);
    recordGas('root set params', set, labels);
    const s = await w.get(w.root, 'root_params');
    assert.equal(s.readBigNumber(), 30n);
    assert.equal(s.readBigNumber(), 25n);
    const p = await deployProxy(w);
    expectAllOk(p.res);
    const pp = await w.get(p.address, 'proxy_params');
    assert.equal(pp.readBigNumber(), 30n);
    const id = await w.get(p.address, 'proxy_ident');
    id.readAddress(); id.readBigNumber(); id.readAddress();
    assert.equal(id.readNumber(), 1); // params version = root version at deploy
    const low = await deployProxy(w, { name: 'p2', stake: toNano('1.5') });
    expectTx(low.res, w.root, { code: E.STAKE_TOO_LOW });
  });

  it('code and owner: owner replaces code, hands over ownership', async () => {
    const codes = { ...w.codes, worker: w.codes.client };
    expectTx(await send(mallory, OP.ROOT_SET_CODE, (b) => b.storeRef(codesCell(codes))), w.root, { code: E.NOT_OWNER });
    const sc = await send(w.rootOwner, OP.ROOT_SET_CODE, (b) => b.storeRef(codesCell(codes)));
    expectAllOk(sc);
    recordGas('root set code', sc, labels);
    const h = await w.get(w.root, 'code_hashes');
    assert.equal(h.readBigNumber(), BigInt('0x' + w.codes.proxy.hash().toString('hex')));
    h.readBigNumber();
    assert.equal(h.readBigNumber(), BigInt('0x' + w.codes.client.hash().toString('hex')));
    expectTx(await send(mallory, OP.ROOT_CHANGE_OWNER, (b) => b.storeAddress(mallory.address)), w.root, { code: E.NOT_OWNER });
    const co = await send(w.rootOwner, OP.ROOT_CHANGE_OWNER, (b) => b.storeAddress(mallory.address));
    expectAllOk(co);
    recordGas('root change owner', co, labels);
    expectTx(await send(w.rootOwner, OP.ROOT_ADD_MODEL, (b) => b.storeUint(1n, 256)), w.root, { code: E.NOT_OWNER });
    expectAllOk(await send(mallory, OP.ROOT_ADD_MODEL, (b) => b.storeUint(1n, 256)));
    expectTx(await send(mallory, 0x12345678), w.root, { code: E.UNKNOWN_OP });
    void pubkeyInt; void keyPair;
  });
});
