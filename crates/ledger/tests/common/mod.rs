//! A small world shared by the integration tests: one proxy, its key, clients and workers.
#![allow(dead_code)]

use cocoon_ledger::*;
use ring::signature::Ed25519KeyPair;

pub const PRICE: u64 = 20;
pub const FEE: u64 = 16;
pub const CLIENT_STAKE: u64 = 10_000;
pub const PROXY_STAKE: u64 = 1_000_000;
pub const CLIENT_DELAY: u64 = 300;
pub const PROXY_DELAY: u64 = 600;

pub fn params() -> RootParams {
    RootParams {
        price_per_token: PRICE,
        worker_fee_per_token: FEE,
        min_client_stake: CLIENT_STAKE,
        min_proxy_stake: PROXY_STAKE,
        client_delay_before_close_secs: CLIENT_DELAY,
        proxy_delay_before_close_secs: PROXY_DELAY,
        ..RootParams::default()
    }
}

pub struct Net {
    pub world: World,
    pub key: Ed25519KeyPair,
    pub proxy_owner: Address,
    pub proxy: Address,
}

impl Net {
    /// A world with a deployed proxy; `wallets` get `funds` each.
    pub fn new(wallets: &[&str], funds: u64) -> Net {
        let mut world = World::new(params());
        let key = keypair_from_seed(&[7; 32]).unwrap();
        let proxy_owner = Address::wallet("proxy-owner");
        world
            .apply(
                &Op::Mint {
                    to: proxy_owner,
                    amount: 10 * PROXY_STAKE,
                },
                0,
            )
            .unwrap();
        for w in wallets {
            let to = Address::wallet(w);
            world.apply(&Op::Mint { to, amount: funds }, 0).unwrap();
        }
        let op = Op::DeployProxy {
            owner: proxy_owner,
            key: public_key(&key),
            params_version: 1,
            stake: PROXY_STAKE,
        };
        world.apply(&op, 0).unwrap();
        let proxy = Address::proxy_contract(&proxy_owner, &public_key(&key), 1);
        Net {
            world,
            key,
            proxy_owner,
            proxy,
        }
    }

    pub fn now(&self) -> u64 {
        self.world.now
    }

    pub fn apply(&mut self, op: Op) -> Result<Effects> {
        let now = self.world.now;
        self.world.apply(&op, now)
    }

    pub fn client(&mut self, name: &str, deposit: u64) -> Address {
        let owner = Address::wallet(name);
        self.apply(Op::DeployClient {
            owner,
            proxy: self.proxy,
            deposit,
        })
        .unwrap();
        Address::client_contract(&self.proxy, &owner)
    }

    pub fn worker(&mut self, name: &str) -> Address {
        let owner = Address::wallet(name);
        self.apply(Op::DeployWorker {
            owner,
            proxy: self.proxy,
        })
        .unwrap();
        Address::worker_contract(&self.proxy, &owner)
    }

    pub fn sign(&self, op: VoucherOp, contract: Address, cumulative: u64) -> SignedVoucher {
        Voucher::new(op, contract, cumulative).sign(&self.key)
    }

    pub fn charge(&mut self, client: Address, cumulative: u64) -> Result<Effects> {
        let voucher = self.sign(VoucherOp::ClientCharge, client, cumulative);
        self.apply(Op::ClientCharge { client, voucher })
    }

    pub fn payout(&mut self, worker: Address, cumulative: u64) -> Result<Effects> {
        let voucher = self.sign(VoucherOp::WorkerPayout, worker, cumulative);
        self.apply(Op::WorkerPayout { worker, voucher })
    }

    pub fn advance(&mut self, secs: u64) {
        self.world.now += secs;
    }

    pub fn wallet(&self, name: &str) -> u64 {
        self.world.balance(&Address::wallet(name))
    }
}
