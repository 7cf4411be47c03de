//! The proxy's money loops: DB batches about every second, anchors every 30–60 s, and
//! settlement after each anchor (charge clients, pay workers, refund closing clients, and
//! when the proxy itself is closing, settle everyone for the last time).

use super::store::{next_hash, Head};
use super::Payments;
use cocoon_ledger::{Address, ContractState, OnChainClient, Op, SignedAnchor, Voucher, VoucherOp};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// What one settlement op is, for stats.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Charge,
    Refund,
    Payout,
}

impl Payments {
    /// Runs the loops until `shutdown`; a last batch is committed on the way out.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut commit = tokio::time::interval(self.config.commit_interval);
        let mut anchor = tokio::time::interval(self.config.anchor_interval);
        commit.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        anchor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick of an interval fires at once; the anchor's should not.
        anchor.tick().await;
        loop {
            tokio::select! {
                _ = commit.tick() => self.commit_batch().await,
                _ = anchor.tick() => {
                    self.commit_batch().await;
                    self.anchor().await;
                    self.settle().await;
                }
                _ = shutdown.cancelled() => {
                    self.commit_batch().await;
                    return;
                }
            }
        }
    }

    /// Writes every changed counter as one signed batch. Counters are read under the lock,
    /// written without it, and marked committed with the values that were written.
    pub(crate) async fn commit_batch(self: &Arc<Self>) {
        let (head, rows) = {
            let books = self.books();
            let seqno = books.head.seqno + 1;
            let rows = books.dirty_rows(seqno);
            if rows.is_empty() {
                return;
            }
            let hash = next_hash(&books.head.hash, seqno, &rows);
            (Head { seqno, hash }, rows)
        };
        let me = self.clone();
        let written = rows.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut store = me.store.lock().unwrap_or_else(|p| p.into_inner());
            store.commit(&me.key, head, &written)
        })
        .await;
        match result {
            Ok(Ok(())) => {
                let mut books = self.books();
                for row in &rows {
                    if let Some(c) = books.counters_mut(row.kind, &row.contract) {
                        if let Err(e) = c.commit_db_value(head.seqno, row.value) {
                            tracing::error!("counter of {} after batch: {e}", row.contract);
                        }
                    }
                }
                books.head = head;
                self.stats.batches.fetch_add(1, Relaxed);
            }
            Ok(Err(e)) => {
                self.stats.db_errors.fetch_add(1, Relaxed);
                tracing::error!("proxy DB batch failed (will retry): {e}");
            }
            Err(e) => {
                self.stats.db_errors.fetch_add(1, Relaxed);
                tracing::error!("proxy DB task failed: {e}");
            }
        }
    }

    /// Puts the last batch on chain; on success its counters become signable.
    pub(crate) async fn anchor(self: &Arc<Self>) {
        let (head, anchored) = {
            let b = self.books();
            (b.head, b.anchored)
        };
        if head.seqno <= anchored {
            return;
        }
        let format = self.chain.signature_format();
        let anchor = SignedAnchor::sign_in(format, &self.key, self.contract, head.seqno, head.hash);
        match self
            .chain_call(move |c| c.submit(Op::ProxyAnchor { anchor }))
            .await
        {
            Ok(_) => {
                let mut books = self.books();
                for b in books.clients.values_mut() {
                    b.account.used_mut().anchored(head.seqno);
                }
                for b in books.workers.values_mut() {
                    b.counters.anchored(head.seqno);
                }
                books.anchored = head.seqno;
                self.sign_anchored(&mut books);
                self.stats.anchors.fetch_add(1, Relaxed);
            }
            Err(e) => {
                self.stats.chain_errors.fetch_add(1, Relaxed);
                if e.is_stale_anchor() {
                    self.alarm(format!(
                        "the chain holds a newer anchor than batch {}: another proxy \
                         writes with this key, or this DB was rolled back",
                        head.seqno
                    ));
                    return;
                }
                tracing::warn!("anchor of batch {} failed (will retry): {e}", head.seqno);
            }
        }
    }

    /// Decides and submits settlement ops from the books and the chain's view.
    pub(crate) async fn settle(self: &Arc<Self>) {
        let world = match self.chain_call(|c| c.world()).await {
            Ok(w) => w,
            Err(e) => {
                self.stats.chain_errors.fetch_add(1, Relaxed);
                tracing::warn!("settlement skipped, cannot read the chain: {e}");
                return;
            }
        };
        let proxy_closing = world
            .proxies
            .get(&self.contract)
            .is_some_and(|p| p.state != ContractState::Open);
        let idle = self.config.idle_settle;
        let now = Instant::now();
        let mut ops: Vec<(Kind, Op)> = Vec::new();
        let mut alarms = Vec::new();
        {
            let mut books = self.books();
            for (addr, b) in books.clients.iter_mut() {
                let Some(c) = world.clients.get(addr) else {
                    continue;
                };
                if let Err(e) = b.account.observe_chain(OnChainClient::from(c)) {
                    alarms.push(format!("client contract {addr}: {e}"));
                    continue;
                }
                let signed = b.voucher.map_or(0, |v| v.cumulative);
                let used = b.account.used();
                let all_signed = b.account.in_flight() == 0 && used.in_memory() == signed;
                let closing = c.state == ContractState::Closing
                    || (proxy_closing && c.state == ContractState::Open);
                if closing && all_signed {
                    let v = Voucher::new(VoucherOp::ClientGrantRefund, *addr, signed);
                    ops.push((
                        Kind::Refund,
                        Op::ClientGrantRefund {
                            client: *addr,
                            voucher: v.sign_in(self.chain.signature_format(), &self.key),
                        },
                    ));
                } else if let Some(v) = b.voucher {
                    let due = v.cumulative > c.tokens_charged
                        && (v.cumulative - c.tokens_charged >= self.config.charge_threshold
                            || now.duration_since(b.last_use) >= idle
                            || closing);
                    if due && c.state != ContractState::Closed {
                        ops.push((
                            Kind::Charge,
                            Op::ClientCharge {
                                client: *addr,
                                voucher: v,
                            },
                        ));
                    }
                }
            }
            for (addr, b) in books.workers.iter_mut() {
                let Some(w) = world.workers.get(addr) else {
                    continue;
                };
                if w.tokens_paid > b.counters.committed_chain() {
                    alarms.push(format!(
                        "worker contract {addr} was paid {} tokens, this proxy anchored {}",
                        w.tokens_paid,
                        b.counters.committed_chain()
                    ));
                    continue;
                }
                b.paid_on_chain = w.tokens_paid;
                if w.state != ContractState::Open {
                    continue;
                }
                let signed = b.voucher.map_or(0, |v| v.cumulative);
                if proxy_closing && b.counters.in_memory() == signed {
                    let v = Voucher::new(VoucherOp::WorkerLastPayout, *addr, signed);
                    ops.push((
                        Kind::Payout,
                        Op::WorkerLastPayout {
                            worker: *addr,
                            voucher: v.sign_in(self.chain.signature_format(), &self.key),
                        },
                    ));
                } else if let Some(v) = b.voucher {
                    let due = v.cumulative > w.tokens_paid
                        && (v.cumulative - w.tokens_paid >= self.config.payout_threshold
                            || now.duration_since(b.last_use) >= idle
                            || proxy_closing);
                    if due {
                        ops.push((
                            Kind::Payout,
                            Op::WorkerPayout {
                                worker: *addr,
                                voucher: v,
                            },
                        ));
                    }
                }
            }
        }
        for reason in alarms {
            self.alarm(reason);
        }
        // Charges first, so payouts come out of charged money rather than the stake.
        ops.sort_by_key(|(k, _)| matches!(k, Kind::Payout));
        for (kind, op) in ops {
            let target = op_target(&op);
            match self.chain_call(move |c| c.submit(op)).await {
                Ok(_) => {
                    let counter = match kind {
                        Kind::Charge => &self.stats.charges,
                        Kind::Refund => &self.stats.refunds,
                        Kind::Payout => &self.stats.payouts,
                    };
                    counter.fetch_add(1, Relaxed);
                }
                // The holder submitted the same voucher first: nothing to do.
                Err(e) if e.is_stale_voucher() => {}
                Err(e) => {
                    self.stats.chain_errors.fetch_add(1, Relaxed);
                    tracing::warn!(contract = %target, "settlement {kind:?} failed: {e}");
                }
            }
        }
    }
}

fn op_target(op: &Op) -> Address {
    match op {
        Op::ClientCharge { client, .. } | Op::ClientGrantRefund { client, .. } => *client,
        Op::WorkerPayout { worker, .. } | Op::WorkerLastPayout { worker, .. } => *worker,
        _ => Address::default(),
    }
}
