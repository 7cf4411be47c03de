//! A whole ledger world: wallets, the three contract kinds, and a clock that is a parameter.
//! Tests drive it directly; the embedded chain wraps it with persistence and blocks.
//!
//! `apply` is all-or-nothing: it runs on a copy and keeps the copy only on success, like a
//! transaction that aborts (and bounces its value) on error.

use crate::address::{Address, PublicKey};
use crate::anchor::SignedAnchor;
use crate::contracts::{ClientContract, Effects, ProxyContract, TransferKind, WorkerContract};
use crate::error::{LedgerError, Result};
use crate::pricing::RootParams;
use crate::voucher::SignedVoucher;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One message to the world. Ops that carry value (`amount`, `stake`, `deposit`) debit the
/// sender's wallet; voucher ops may be sent by anyone holding the voucher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// New coins from the faucet: the only op that changes `total()`, counted in `minted`.
    Mint {
        to: Address,
        amount: u64,
    },
    Transfer {
        from: Address,
        to: Address,
        amount: u64,
    },
    DeployProxy {
        owner: Address,
        key: PublicKey,
        params_version: u64,
        stake: u64,
    },
    ProxyIncreaseStake {
        sender: Address,
        proxy: Address,
        amount: u64,
    },
    ProxyWithdraw {
        sender: Address,
        proxy: Address,
    },
    /// A proxy-signed anchor of the proxy's DB state; anyone may deliver it.
    ProxyAnchor {
        anchor: SignedAnchor,
    },
    ProxyRequestClose {
        sender: Address,
        proxy: Address,
    },
    ProxyCompleteClose {
        sender: Address,
        proxy: Address,
    },
    DeployClient {
        owner: Address,
        proxy: Address,
        deposit: u64,
    },
    ClientTopUp {
        sender: Address,
        client: Address,
        amount: u64,
    },
    ClientWithdraw {
        sender: Address,
        client: Address,
    },
    ClientRequestClose {
        sender: Address,
        client: Address,
    },
    /// Long auth: the owner registers a proxy-issued nonce on its client contract.
    ClientRegister {
        sender: Address,
        client: Address,
        nonce: u64,
    },
    ClientIncreaseStake {
        sender: Address,
        client: Address,
        stake: u64,
    },
    ClientSetSecretHash {
        sender: Address,
        client: Address,
        hash: [u8; 32],
    },
    ClientCharge {
        client: Address,
        voucher: SignedVoucher,
    },
    ClientGrantRefund {
        client: Address,
        voucher: SignedVoucher,
    },
    DeployWorker {
        owner: Address,
        proxy: Address,
    },
    WorkerPayout {
        worker: Address,
        voucher: SignedVoucher,
    },
    WorkerLastPayout {
        worker: Address,
        voucher: SignedVoucher,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct World {
    /// Root parameters new proxy contracts are deployed with.
    pub params: RootParams,
    /// Coin balances of wallets and contracts (absent = 0).
    pub accounts: BTreeMap<Address, u64>,
    pub proxies: BTreeMap<Address, ProxyContract>,
    pub clients: BTreeMap<Address, ClientContract>,
    pub workers: BTreeMap<Address, WorkerContract>,
    /// Σ minted: `total()` must always equal it (no fees in the pure model).
    pub minted: u64,
    /// Time of the last applied op (seconds); ops may not go back in time.
    pub now: u64,
}

impl World {
    pub fn new(params: RootParams) -> World {
        World {
            params,
            accounts: BTreeMap::new(),
            proxies: BTreeMap::new(),
            clients: BTreeMap::new(),
            workers: BTreeMap::new(),
            minted: 0,
            now: 0,
        }
    }

    pub fn balance(&self, address: &Address) -> u64 {
        self.accounts.get(address).copied().unwrap_or(0)
    }

    /// Σ coins over every wallet and contract.
    pub fn total(&self) -> u128 {
        self.accounts.values().map(|&v| u128::from(v)).sum()
    }

    /// Coins held by contracts (0 once everything is settled and closed).
    pub fn in_contracts(&self) -> u128 {
        let contracts = self
            .proxies
            .keys()
            .chain(self.clients.keys())
            .chain(self.workers.keys());
        contracts.map(|a| u128::from(self.balance(a))).sum()
    }

    /// Applies `op` at time `now`, atomically. Returns every coin movement it caused.
    pub fn apply(&mut self, op: &Op, now: u64) -> Result<Effects> {
        if now < self.now {
            return Err(LedgerError::ClockWentBack {
                last: self.now,
                now,
            });
        }
        // Coins enter contracts only through their own bookkeeping: never minted onto one,
        // never attached by a contract as if it were a wallet.
        if let Op::Mint { to, .. } = op {
            if self.is_contract(to) {
                return Err(LedgerError::NotAWallet(*to));
            }
        }
        let mut next = self.clone();
        next.now = now;
        let (value, fx) = next.execute(op, now)?;
        if let Some((from, to, amount)) = value {
            if self.is_contract(&from) {
                return Err(LedgerError::NotAWallet(from));
            }
            next.transfer(from, to, amount)?;
        }
        for t in &fx.transfers {
            next.transfer(t.from, t.to, t.amount)?;
        }
        *self = next;
        let mut all = Effects::none();
        if let Some((from, to, amount)) = value {
            all.push(from, to, amount, TransferKind::Deposit);
        }
        all.transfers.extend(fx.transfers);
        Ok(all)
    }

    fn transfer(&mut self, from: Address, to: Address, amount: u64) -> Result<()> {
        let available = self.balance(&from);
        let left = available
            .checked_sub(amount)
            .ok_or(LedgerError::InsufficientFunds {
                account: from,
                needed: amount,
                available,
            })?;
        self.accounts.insert(from, left);
        let got = self.balance(&to);
        let got = got
            .checked_add(amount)
            .ok_or(LedgerError::Overflow("account balance"))?;
        self.accounts.insert(to, got);
        Ok(())
    }

    /// A contract's address must hold no coins before it is deployed (coins sent there
    /// early would sit outside every bucket).
    fn require_empty(&self, address: &Address) -> Result<()> {
        if self.balance(address) > 0 {
            return Err(LedgerError::AddressHoldsCoins(*address));
        }
        Ok(())
    }

    /// Whether `address` is a deployed contract (rather than a wallet).
    pub fn is_contract(&self, address: &Address) -> bool {
        self.proxies.contains_key(address)
            || self.clients.contains_key(address)
            || self.workers.contains_key(address)
    }

    fn proxy_mut(&mut self, address: &Address) -> Result<&mut ProxyContract> {
        self.proxies
            .get_mut(address)
            .ok_or(LedgerError::UnknownContract(*address))
    }

    /// Client contract and its proxy, borrowed together.
    fn client_pair(
        &mut self,
        client: &Address,
    ) -> Result<(&mut ClientContract, &mut ProxyContract)> {
        let c = self
            .clients
            .get_mut(client)
            .ok_or(LedgerError::UnknownContract(*client))?;
        let p = self
            .proxies
            .get_mut(&c.proxy)
            .ok_or(LedgerError::UnknownContract(c.proxy))?;
        Ok((c, p))
    }

    fn worker_pair(
        &mut self,
        worker: &Address,
    ) -> Result<(&mut WorkerContract, &mut ProxyContract)> {
        let w = self
            .workers
            .get_mut(worker)
            .ok_or(LedgerError::UnknownContract(*worker))?;
        let p = self
            .proxies
            .get_mut(&w.proxy)
            .ok_or(LedgerError::UnknownContract(w.proxy))?;
        Ok((w, p))
    }

    /// Runs the contract logic. Returns the attached value (sender → contract holding it)
    /// to move first, and the contract's own effects.
    #[allow(clippy::type_complexity)]
    fn execute(&mut self, op: &Op, now: u64) -> Result<(Option<(Address, Address, u64)>, Effects)> {
        let none = Effects::none();
        Ok(match op {
            Op::Mint { to, amount } => {
                let got = self.balance(to).checked_add(*amount);
                let minted = self.minted.checked_add(*amount);
                match (got, minted) {
                    (Some(got), Some(minted)) => {
                        self.accounts.insert(*to, got);
                        self.minted = minted;
                    }
                    _ => return Err(LedgerError::Overflow("mint")),
                }
                (None, none)
            }
            Op::Transfer { from, to, amount } => {
                // Contracts move coins only through their own ops: a plain transfer into
                // one would sit outside every bucket and break the accounting.
                for a in [from, to] {
                    if self.is_contract(a) {
                        return Err(LedgerError::NotAWallet(*a));
                    }
                }
                self.transfer(*from, *to, *amount)?;
                (None, none)
            }
            Op::DeployProxy {
                owner,
                key,
                params_version,
                stake,
            } => {
                let p = ProxyContract::deploy(
                    *owner,
                    *key,
                    self.params.clone(),
                    *params_version,
                    *stake,
                )?;
                let addr = p.address;
                if self.proxies.contains_key(&addr) {
                    return Err(LedgerError::AlreadyDeployed(addr));
                }
                self.require_empty(&addr)?;
                self.proxies.insert(addr, p);
                (Some((*owner, addr, *stake)), none)
            }
            Op::ProxyIncreaseStake {
                sender,
                proxy,
                amount,
            } => {
                let fx = self.proxy_mut(proxy)?.increase_stake(*amount)?;
                (Some((*sender, *proxy, *amount)), fx)
            }
            Op::ProxyWithdraw { sender, proxy } => (None, self.proxy_mut(proxy)?.withdraw(sender)?),
            Op::ProxyAnchor { anchor } => (None, self.proxy_mut(&anchor.proxy)?.anchor(anchor)?),
            Op::ProxyRequestClose { sender, proxy } => {
                (None, self.proxy_mut(proxy)?.request_close(sender, now)?)
            }
            Op::ProxyCompleteClose { sender, proxy } => {
                (None, self.proxy_mut(proxy)?.complete_close(sender, now)?)
            }
            Op::DeployClient {
                owner,
                proxy,
                deposit,
            } => {
                let p = self.proxy_mut(proxy)?;
                let c = ClientContract::deploy(*owner, p, *deposit)?;
                let addr = c.address;
                if self.clients.contains_key(&addr) {
                    return Err(LedgerError::AlreadyDeployed(addr));
                }
                self.require_empty(&addr)?;
                self.clients.insert(addr, c);
                (Some((*owner, *proxy, *deposit)), none)
            }
            Op::ClientTopUp {
                sender,
                client,
                amount,
            } => {
                let (c, p) = self.client_pair(client)?;
                let fx = c.top_up(p, *amount)?;
                (Some((*sender, p.address, *amount)), fx)
            }
            Op::ClientWithdraw { sender, client } => {
                let (c, p) = self.client_pair(client)?;
                (None, c.withdraw(sender, p)?)
            }
            Op::ClientRequestClose { sender, client } => {
                let (c, p) = self.client_pair(client)?;
                (None, c.request_close(sender, p, now)?)
            }
            Op::ClientRegister {
                sender,
                client,
                nonce,
            } => {
                let (c, _) = self.client_pair(client)?;
                (None, c.register(sender, *nonce)?)
            }
            Op::ClientIncreaseStake {
                sender,
                client,
                stake,
            } => {
                let (c, _) = self.client_pair(client)?;
                (None, c.increase_stake(sender, *stake)?)
            }
            Op::ClientSetSecretHash {
                sender,
                client,
                hash,
            } => {
                let (c, _) = self.client_pair(client)?;
                (None, c.set_secret_hash(sender, *hash)?)
            }
            Op::ClientCharge { client, voucher } => {
                let (c, p) = self.client_pair(client)?;
                (None, c.charge(p, voucher)?)
            }
            Op::ClientGrantRefund { client, voucher } => {
                let (c, p) = self.client_pair(client)?;
                (None, c.grant_refund(p, voucher)?)
            }
            Op::DeployWorker { owner, proxy } => {
                let p = self.proxy_mut(proxy)?;
                let w = WorkerContract::deploy(*owner, p)?;
                let addr = w.address;
                if self.workers.contains_key(&addr) {
                    return Err(LedgerError::AlreadyDeployed(addr));
                }
                self.require_empty(&addr)?;
                self.workers.insert(addr, w);
                (None, none)
            }
            Op::WorkerPayout { worker, voucher } => {
                let (w, p) = self.worker_pair(worker)?;
                (None, w.payout(p, voucher)?)
            }
            Op::WorkerLastPayout { worker, voucher } => {
                let (w, p) = self.worker_pair(worker)?;
                (None, w.last_payout(p, voucher)?)
            }
        })
    }

    /// Checks the accounting invariants: coins are conserved (`total == minted`); each
    /// proxy holds exactly the sum of its buckets; its client deposits equal its clients'
    /// balances; client and worker contracts hold no coins themselves.
    pub fn check_invariants(&self) -> Result<()> {
        if self.total() != u128::from(self.minted) {
            return Err(LedgerError::Invariant("total coins differ from minted"));
        }
        for (addr, p) in &self.proxies {
            if u128::from(self.balance(addr)) != u128::from(p.holdings()?) {
                return Err(LedgerError::Invariant(
                    "proxy coins differ from its buckets",
                ));
            }
            let deposits: u128 = self
                .clients
                .values()
                .filter(|c| c.proxy == *addr)
                .map(|c| u128::from(c.balance))
                .sum();
            if deposits != u128::from(p.client_deposits) {
                return Err(LedgerError::Invariant(
                    "client deposits differ from balances",
                ));
            }
        }
        let holds_coins = self
            .clients
            .keys()
            .chain(self.workers.keys())
            .any(|a| self.balance(a) != 0);
        if holds_coins {
            return Err(LedgerError::Invariant(
                "a client or worker contract holds coins",
            ));
        }
        Ok(())
    }
}
