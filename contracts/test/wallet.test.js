// The Rust adapter's wallet messages (vectors/wallet-messages.json, written by
// crates/ton/tests/wallet_vectors.rs) run through the real wallet contracts: a funded but
// undeployed v4r2 / v5r1 wallet is deployed by the first external message, which also sends
// the Cocoon message; the second, with the next seqno, sends it again; a replay is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Blockchain } from '@ton/sandbox';
import { Address, Cell, toNano } from '@ton/core';

const vectors = JSON.parse(readFileSync(new URL('../vectors/wallet-messages.json', import.meta.url), 'utf8'));

for (const [version, w] of Object.entries(vectors.wallets)) {
  test(`${version}: the adapter's signed messages deploy the wallet and send`, async () => {
    const blockchain = await Blockchain.create();
    blockchain.now = 1_800_000_000;
    const wallet = Address.parseRaw(w.address);
    const to = Address.parseRaw(vectors.to);
    const funder = await blockchain.treasury('funder');
    await funder.send({ to: wallet, value: toNano('1'), bounce: false });
    const sent = (boc) => blockchain.sendMessage(Cell.fromBase64(boc));
    const delivered = (result) => result.transactions.filter(
      (t) => t.inMessage?.info.type === 'internal' && t.inMessage.info.dest.equals(to));

    const first = await sent(w.deploy_and_send);
    const state = (await blockchain.getContract(wallet)).accountState;
    assert.equal(state?.type, 'active', 'the wallet deployed itself');
    const got = delivered(first);
    assert.equal(got.length, 1, 'one message to the destination');
    assert.equal(got[0].inMessage.info.value.coins, BigInt(vectors.value));
    assert.equal(got[0].inMessage.body.hash().toString('hex'), vectors.body_hash);

    const second = await sent(w.second_send);
    assert.equal(delivered(second).length, 1, 'seqno 1 sends again');
    // A replay of an already used seqno is refused by the wallet (the external message is
    // not accepted: the sandbox throws).
    await assert.rejects(sent(w.second_send));
  });
}
