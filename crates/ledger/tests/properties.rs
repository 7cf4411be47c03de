//! Property tests: random interleavings of deposits, requests (reserve → settle/release),
//! DB commits and anchors, charges, payouts, withdrawals, closes, forged vouchers and time
//! jumps, run against the `World` with the proxy's `ClientAccount`/`PeerCounters` in the
//! loop, then a full settlement. Checked after every step and at the end:
//!
//! - coins are conserved (no fees in the pure model): `total == minted`, and each proxy's
//!   coins equal its buckets;
//! - no contract counter and no signed voucher ever decreases;
//! - a client is never billed above its reservations, and every charge is collected in full
//!   (the proxy never serves beyond what the client's contract can pay);
//! - worker earnings = Σ adjusted × fee exactly; client spend = Σ adjusted × price (less
//!   only if it forced a refund from a silent proxy);
//! - after the close and settlement, every nanoTON is back in a wallet.

mod common;

use cocoon_ledger::*;
use common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const FUNDS: u64 = 10_000_000;
const COEFFICIENTS: [u32; 4] = [500, 1000, 1500, 2500];

#[derive(Clone, Debug)]
enum Action {
    TopUp {
        c: usize,
        amount: u64,
    },
    Start {
        c: usize,
        w: usize,
        prompt: u64,
        cached: u64,
        max_tokens: u64,
        max_coef: u32,
    },
    Finish {
        k: usize,
        completion_pct: u64,
        reasoning_pct: u64,
        overrun: u64,
    },
    Fail {
        k: usize,
    },
    CommitDb,
    Anchor,
    Charge {
        c: usize,
    },
    Payout {
        w: usize,
    },
    Withdraw {
        c: usize,
    },
    Close {
        c: usize,
    },
    GrantRefund {
        c: usize,
    },
    ProxyWithdraw,
    Forge {
        target: usize,
        kind: u8,
    },
    Wait {
        secs: u64,
    },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        6 => (0..3usize, 1..60_000u64).prop_map(|(c, amount)| Action::TopUp { c, amount }),
        // Small enough that several requests fit in one client stake (500 tokens here).
        20 => (0..3usize, 0..3usize, 0..40u64, 0..40u64, 1..25u64, 1000..2600u32).prop_map(
            |(c, w, prompt, cached, max_tokens, max_coef)| Action::Start {
                c, w, prompt, cached, max_tokens, max_coef
            }
        ),
        16 => (0..8usize, 0..=100u64, 0..=100u64, prop_oneof![8 => Just(0u64), 1 => 1..50u64])
            .prop_map(|(k, completion_pct, reasoning_pct, overrun)| Action::Finish {
                k, completion_pct, reasoning_pct, overrun
            }),
        2 => (0..8usize).prop_map(|k| Action::Fail { k }),
        5 => Just(Action::CommitDb),
        5 => Just(Action::Anchor),
        5 => (0..3usize).prop_map(|c| Action::Charge { c }),
        5 => (0..3usize).prop_map(|w| Action::Payout { w }),
        2 => (0..3usize).prop_map(|c| Action::Withdraw { c }),
        1 => (0..3usize).prop_map(|c| Action::Close { c }),
        1 => (0..3usize).prop_map(|c| Action::GrantRefund { c }),
        2 => Just(Action::ProxyWithdraw),
        3 => (0..6usize, 0..4u8).prop_map(|(target, kind)| Action::Forge { target, kind }),
        4 => prop_oneof![3 => 0..30u64, 1 => 250..700u64].prop_map(|secs| Action::Wait { secs }),
    ]
}

struct ClientSim {
    name: String,
    addr: Address,
    account: ClientAccount,
    /// Σ billed tokens and Σ reserved tokens of settled requests.
    billed: u64,
    reserved_settled: u64,
    forced: bool,
}

struct WorkerSim {
    name: String,
    addr: Address,
    coefficient: u32,
    counters: PeerCounters,
    /// Σ adjusted × fee of the requests it served.
    earned: u64,
}

struct Pending {
    c: usize,
    w: usize,
    id: ReservationId,
    reserved: u64,
    usage: TokenCounts,
    max_tokens: u64,
}

struct Sim {
    net: Net,
    clients: Vec<ClientSim>,
    workers: Vec<WorkerSim>,
    pending: Vec<Pending>,
    seqno: u64,
    signed: BTreeMap<Address, u64>,
    counters_seen: BTreeMap<Address, u64>,
}

impl Sim {
    fn new(n_clients: usize, n_workers: usize, deposits: &[u64]) -> Sim {
        let names: Vec<String> = (0..n_clients)
            .map(|i| format!("client{i}"))
            .chain((0..n_workers).map(|i| format!("worker{i}")))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut net = Net::new(&refs, FUNDS);
        let mut clients = Vec::new();
        for (i, name) in names[..n_clients].iter().enumerate() {
            let addr = net.client(name, deposits[i]);
            let onchain = OnChainClient::from(&net.world.clients[&addr]);
            let account = ClientAccount::new(PRICE, onchain, PeerCounters::new()).unwrap();
            let name = name.clone();
            clients.push(ClientSim {
                name,
                addr,
                account,
                billed: 0,
                reserved_settled: 0,
                forced: false,
            });
        }
        let mut workers = Vec::new();
        for (i, name) in names[n_clients..].iter().enumerate() {
            let addr = net.worker(name);
            let coefficient = COEFFICIENTS[i % COEFFICIENTS.len()];
            let name = name.clone();
            workers.push(WorkerSim {
                name,
                addr,
                coefficient,
                counters: PeerCounters::new(),
                earned: 0,
            });
        }
        Sim {
            net,
            clients,
            workers,
            pending: Vec::new(),
            seqno: 0,
            signed: BTreeMap::new(),
            counters_seen: BTreeMap::new(),
        }
    }

    fn sign(&mut self, op: VoucherOp, contract: Address, cumulative: u64) -> SignedVoucher {
        let last = self.signed.entry(contract).or_insert(0);
        assert!(cumulative >= *last, "a signed voucher went backwards");
        *last = cumulative;
        self.net.sign(op, contract, cumulative)
    }

    fn commit_db(&mut self) {
        self.seqno += 1;
        for c in &mut self.clients {
            c.account.used_mut().commit_db(self.seqno).unwrap();
        }
        for w in &mut self.workers {
            w.counters.commit_db(self.seqno).unwrap();
        }
    }

    fn anchor(&mut self) {
        for c in &mut self.clients {
            c.account.used_mut().anchored(self.seqno);
        }
        for w in &mut self.workers {
            w.counters.anchored(self.seqno);
        }
    }

    /// After every op: invariants hold, counters never go back, the proxy's view syncs.
    fn check(&mut self) {
        self.net.world.check_invariants().unwrap();
        let counters = self
            .net
            .world
            .clients
            .iter()
            .map(|(a, c)| (*a, c.tokens_charged))
            .chain(
                self.net
                    .world
                    .workers
                    .iter()
                    .map(|(a, w)| (*a, w.tokens_paid)),
            );
        for (addr, value) in counters.collect::<Vec<_>>() {
            let seen = self.counters_seen.entry(addr).or_insert(0);
            assert!(value >= *seen, "a contract counter decreased");
            *seen = value;
        }
        for c in &mut self.clients {
            let onchain = OnChainClient::from(&self.net.world.clients[&c.addr]);
            c.account.observe_chain(onchain).unwrap();
        }
    }

    fn step(&mut self, action: &Action) {
        let owner = |name: &str| Address::wallet(name);
        match *action {
            Action::TopUp { c, amount } => {
                let Some(cs) = self.clients.get(c) else {
                    return;
                };
                let op = Op::ClientTopUp {
                    sender: owner(&cs.name),
                    client: cs.addr,
                    amount,
                };
                let open = self.net.world.clients[&cs.addr].state == ContractState::Open;
                assert_eq!(self.net.apply(op).is_ok(), open);
            }
            Action::Start {
                c,
                w,
                prompt,
                cached,
                max_tokens,
                max_coef,
            } => {
                let (Some(cs), Some(ws)) = (self.clients.get_mut(c), self.workers.get(w)) else {
                    return;
                };
                // The proxy only routes to workers at or under the client's max coefficient.
                if ws.coefficient > max_coef {
                    return;
                }
                let before = cs.account.credit();
                match cs
                    .account
                    .reserve_request(&params(), prompt, max_tokens, max_coef)
                {
                    Ok((id, reserved)) => {
                        assert!(reserved <= before);
                        let usage = TokenCounts {
                            prompt,
                            cached: cached.min(prompt),
                            completion: 0,
                            reasoning: 0,
                        };
                        self.pending.push(Pending {
                            c,
                            w,
                            id,
                            reserved,
                            usage,
                            max_tokens,
                        });
                    }
                    Err(LedgerError::InsufficientCredit { needed, available }) => {
                        assert!(needed > available)
                    }
                    Err(LedgerError::ClientNotOpen { .. }) => {}
                    Err(e) => panic!("unexpected reserve error {e}"),
                }
            }
            Action::Finish {
                k,
                completion_pct,
                reasoning_pct,
                overrun,
            } => {
                if self.pending.is_empty() {
                    return;
                }
                let mut p = self.pending.remove(k % self.pending.len());
                // The worker enforces max_tokens; `overrun` models one that does not.
                p.usage.completion = p.max_tokens * completion_pct / 100 + overrun;
                p.usage.reasoning = p.usage.completion * reasoning_pct / 100;
                let ws = &mut self.workers[p.w];
                let charge = params().charge(p.usage, ws.coefficient);
                let adj = charge.adjusted_tokens();
                let cs = &mut self.clients[p.c];
                let s = cs.account.settle(p.id, adj).unwrap();
                assert!(s.billed <= p.reserved, "billed above the reservation");
                if overrun == 0 {
                    assert_eq!(s.billed, adj, "in-bounds usage is billed exactly");
                    assert_eq!(charge.worker_earning, adj * FEE);
                }
                cs.billed += s.billed;
                cs.reserved_settled += p.reserved;
                ws.counters.add(s.billed).unwrap();
                ws.earned += s.billed * FEE;
            }
            Action::Fail { k } => {
                if self.pending.is_empty() {
                    return;
                }
                let p = self.pending.remove(k % self.pending.len());
                assert_eq!(self.clients[p.c].account.release(p.id).unwrap(), p.reserved);
            }
            Action::CommitDb => self.commit_db(),
            Action::Anchor => self.anchor(),
            Action::Charge { c } => {
                let Some(cs) = self.clients.get(c) else {
                    return;
                };
                let Some(tokens) = cs.account.chargeable() else {
                    return;
                };
                let addr = cs.addr;
                let charged_before = cs.account.onchain().tokens_charged;
                let voucher = self.sign(VoucherOp::ClientCharge, addr, tokens);
                let proxy = self.net.proxy;
                let bucket = self.net.world.proxies[&proxy].charged;
                if self
                    .net
                    .apply(Op::ClientCharge {
                        client: addr,
                        voucher,
                    })
                    .is_ok()
                {
                    // Collected in full: credit never lets usage outrun the balance.
                    let got = self.net.world.proxies[&proxy].charged - bucket;
                    assert_eq!(got, (tokens - charged_before) * PRICE);
                } else {
                    assert_eq!(self.net.world.clients[&addr].state, ContractState::Closed);
                }
            }
            Action::Payout { w } => {
                let Some(ws) = self.workers.get(w) else {
                    return;
                };
                let addr = ws.addr;
                let paid = self.net.world.workers[&addr].tokens_paid;
                let tokens = ws.counters.committed_chain();
                if tokens > paid {
                    let voucher = self.sign(VoucherOp::WorkerPayout, addr, tokens);
                    self.net
                        .apply(Op::WorkerPayout {
                            worker: addr,
                            voucher,
                        })
                        .unwrap();
                }
            }
            Action::Withdraw { c } => {
                let Some(cs) = self.clients.get(c) else {
                    return;
                };
                let _ = self.net.apply(Op::ClientWithdraw {
                    sender: owner(&cs.name),
                    client: cs.addr,
                });
            }
            Action::Close { c } => {
                let Some(cs) = self.clients.get_mut(c) else {
                    return;
                };
                let was = self.net.world.clients[&cs.addr].state;
                let op = Op::ClientRequestClose {
                    sender: owner(&cs.name),
                    client: cs.addr,
                };
                if self.net.apply(op).is_ok() && was == ContractState::Closing {
                    cs.forced = true;
                }
            }
            Action::GrantRefund { c } => {
                // The cooperative close: only for a client with nothing in flight, after
                // committing and anchoring so the voucher covers all its usage.
                let Some(cs) = self.clients.get(c) else {
                    return;
                };
                let addr = cs.addr;
                if self.pending.iter().any(|p| p.c == c)
                    || self.net.world.clients[&addr].state == ContractState::Closed
                {
                    return;
                }
                self.commit_db();
                self.anchor();
                let tokens = self.clients[c].account.used().committed_chain();
                let voucher = self.sign(VoucherOp::ClientGrantRefund, addr, tokens);
                self.net
                    .apply(Op::ClientGrantRefund {
                        client: addr,
                        voucher,
                    })
                    .unwrap();
            }
            Action::ProxyWithdraw => {
                let (sender, proxy) = (self.net.proxy_owner, self.net.proxy);
                let _ = self.net.apply(Op::ProxyWithdraw { sender, proxy });
            }
            Action::Forge { target, kind } => self.forge(target, kind),
            Action::Wait { secs } => self.net.advance(secs),
        }
        self.check();
    }

    /// A forged voucher of each kind is refused and changes nothing.
    fn forge(&mut self, target: usize, kind: u8) {
        let (contract, op, current) = match target {
            t if t < 3 => match self.clients.get(t) {
                Some(c) => (
                    c.addr,
                    VoucherOp::ClientCharge,
                    self.net.world.clients[&c.addr].tokens_charged,
                ),
                None => return,
            },
            t => match self.workers.get(t - 3) {
                Some(w) => (
                    w.addr,
                    VoucherOp::WorkerPayout,
                    self.net.world.workers[&w.addr].tokens_paid,
                ),
                None => return,
            },
        };
        let voucher = match kind {
            0 => Voucher::new(op, contract, current + 1_000)
                .sign(&keypair_from_seed(&[66; 32]).unwrap()),
            1 => self
                .net
                .sign(op, Address::wallet("elsewhere"), current + 1_000),
            2 => self.net.sign(op, contract, current),
            _ => {
                let mut v = self.net.sign(op, contract, current + 1);
                v.cumulative += 1_000;
                v
            }
        };
        let msg = if op == VoucherOp::ClientCharge {
            Op::ClientCharge {
                client: contract,
                voucher,
            }
        } else {
            Op::WorkerPayout {
                worker: contract,
                voucher,
            }
        };
        let before = self.net.world.clone();
        let err = self.net.apply(msg).unwrap_err();
        let closed = matches!(
            err,
            LedgerError::WrongState {
                state: ContractState::Closed,
                ..
            }
        );
        let expected = match kind {
            0 | 3 => matches!(err, LedgerError::BadSignature),
            1 => matches!(err, LedgerError::WrongContract { .. }),
            _ => matches!(err, LedgerError::StaleVoucher { .. }),
        };
        assert!(
            expected || closed,
            "forged voucher kind {kind}: unexpected {err}"
        );
        assert_eq!(self.net.world, before);
    }

    /// Settle everything and close the proxy; then check the end-state properties.
    fn settle_and_close(&mut self) {
        while let Some(p) = self.pending.pop() {
            self.clients[p.c].account.release(p.id).unwrap();
        }
        self.commit_db();
        self.anchor();
        for c in 0..self.clients.len() {
            self.step(&Action::GrantRefund { c });
        }
        for i in 0..self.workers.len() {
            let addr = self.workers[i].addr;
            let tokens = self.workers[i].counters.committed_chain();
            let voucher = self.sign(VoucherOp::WorkerLastPayout, addr, tokens);
            self.net
                .apply(Op::WorkerLastPayout {
                    worker: addr,
                    voucher,
                })
                .unwrap();
            self.check();
        }
        let (owner, proxy) = (self.net.proxy_owner, self.net.proxy);
        self.net
            .apply(Op::ProxyRequestClose {
                sender: owner,
                proxy,
            })
            .unwrap();
        self.net.advance(PROXY_DELAY);
        self.net
            .apply(Op::ProxyCompleteClose {
                sender: owner,
                proxy,
            })
            .unwrap();
        self.check();

        assert_eq!(self.net.world.in_contracts(), 0, "coins left in contracts");
        for w in &self.workers {
            assert_eq!(
                self.net.wallet(&w.name),
                FUNDS + w.earned,
                "worker earnings"
            );
        }
        for c in &self.clients {
            let spent = FUNDS - self.net.wallet(&c.name);
            assert!(c.billed <= c.reserved_settled);
            if c.forced {
                assert!(spent <= c.billed * PRICE);
            } else {
                assert_eq!(spent, c.billed * PRICE, "client spend");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_conserve_and_settle(
        n_clients in 1..=3usize,
        n_workers in 1..=3usize,
        deposits in prop::collection::vec(0..200_000u64, 3),
        actions in prop::collection::vec(action(), 1..150),
    ) {
        let mut sim = Sim::new(n_clients, n_workers, &deposits);
        for a in &actions {
            sim.step(a);
        }
        sim.settle_and_close();
    }

    #[test]
    fn charge_vouchers_applied_in_any_order_end_at_the_maximum(
        counts in prop::collection::vec(1..10_000u64, 1..20),
    ) {
        let mut net = Net::new(&["alice"], FUNDS);
        let client = net.client("alice", FUNDS);
        let mut best = 0;
        for n in counts {
            let r = net.charge(client, n);
            prop_assert_eq!(r.is_ok(), n > best);
            best = best.max(n);
            prop_assert_eq!(net.world.clients[&client].tokens_charged, best);
            prop_assert_eq!(net.world.clients[&client].balance, FUNDS - best * PRICE);
        }
    }

    #[test]
    fn reservation_bounds_any_in_bounds_usage(
        prompt in 0..100_000u64, cached in 0..100_000u64, max_tokens in 0..100_000u64,
        completion_pct in 0..=100u64, reasoning_pct in 0..=100u64,
        max_coef in 1..10_000u32, coef_pct in 0..=100u32,
    ) {
        let p = params();
        let completion = max_tokens * completion_pct / 100;
        let usage = TokenCounts {
            prompt, cached: cached.min(prompt), completion,
            reasoning: completion * reasoning_pct / 100,
        };
        let coef = max_coef * coef_pct / 100;
        let charge = p.charge(usage, coef);
        prop_assert!(charge.adjusted_tokens() <= p.reservation_tokens(prompt, max_tokens, max_coef));
        prop_assert_eq!(charge.worker_earning, charge.adjusted_tokens() * FEE);
        prop_assert_eq!(charge.total_cost, charge.adjusted_tokens() * PRICE);
    }
}
