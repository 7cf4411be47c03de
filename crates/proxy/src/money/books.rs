//! In-memory books: every client's credit and every worker's earnings, with their three
//! counters. Request admission and billing happen here, under one short lock.

use super::store::{Head, PeerKind, Row};
use super::Payments;
use cocoon_ledger::{
    Address, ClientAccount, CounterView, LedgerError, PeerCounters, ReservationId, SignedVoucher,
    Voucher, VoucherOp,
};
use cocoon_proto::{money::payment_status, ErrorCode, PaymentStatus};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

pub(crate) struct ClientBook {
    pub owner: Address,
    pub account: ClientAccount,
    /// The latest charge voucher signed (for anchored usage).
    pub voucher: Option<SignedVoucher>,
    pub last_use: Instant,
}

pub(crate) struct WorkerBook {
    pub owner: Address,
    pub counters: PeerCounters,
    /// Tokens the worker contract has been paid (last read from chain).
    pub paid_on_chain: u64,
    pub voucher: Option<SignedVoucher>,
    pub last_use: Instant,
}

pub(crate) struct Books {
    pub price_per_token: u64,
    pub clients: HashMap<Address, ClientBook>,
    pub workers: HashMap<Address, WorkerBook>,
    /// The last batch written to the DB.
    pub head: Head,
    /// The last batch anchored on chain.
    pub anchored: u64,
}

impl Books {
    /// Rows whose in-memory value is ahead of the DB, sorted by contract for the hash.
    pub fn dirty_rows(&self, seqno: u64) -> Vec<Row> {
        let clients = self.clients.iter().filter_map(|(c, b)| {
            let used = b.account.used();
            (used.in_memory() != used.committed_db()).then_some(Row {
                kind: PeerKind::Client,
                contract: *c,
                owner: b.owner,
                value: used.in_memory(),
                seqno,
            })
        });
        let workers = self.workers.iter().filter_map(|(w, b)| {
            (b.counters.in_memory() != b.counters.committed_db()).then_some(Row {
                kind: PeerKind::Worker,
                contract: *w,
                owner: b.owner,
                value: b.counters.in_memory(),
                seqno,
            })
        });
        let mut rows: Vec<Row> = clients.chain(workers).collect();
        rows.sort_by_key(|r| (r.contract, r.kind));
        rows
    }

    pub fn counters_mut(
        &mut self,
        kind: PeerKind,
        contract: &Address,
    ) -> Option<&mut PeerCounters> {
        match kind {
            PeerKind::Client => self.clients.get_mut(contract).map(|b| b.account.used_mut()),
            PeerKind::Worker => self.workers.get_mut(contract).map(|b| &mut b.counters),
        }
    }
}

/// A request's reservation. Settle it with the billed usage; dropping it unsettled
/// releases the reservation (the request failed, or the app went away, before any usage
/// was reported).
pub(crate) struct Ticket {
    payments: Arc<Payments>,
    client: Address,
    id: Option<ReservationId>,
    pub reserved: u64,
}

impl Ticket {
    /// Bills `adjusted` tokens (capped at the reservation) to the client and credits the
    /// same to `worker`. Returns the tokens billed.
    pub fn settle(mut self, worker: Option<Address>, adjusted: u64) -> u64 {
        let Some(id) = self.id.take() else { return 0 };
        self.bill(id, worker, adjusted, true)
    }

    /// Bills the part of the answer a failed worker delivered and credits it to that worker;
    /// the reservation stays open (capped at what is left) for the worker that continues.
    pub fn settle_part(&mut self, worker: Option<Address>, adjusted: u64) -> u64 {
        let Some(id) = self.id else { return 0 };
        let billed = self.bill(id, worker, adjusted, false);
        self.reserved = self.reserved.saturating_sub(billed);
        billed
    }

    fn bill(&self, id: ReservationId, worker: Option<Address>, adjusted: u64, last: bool) -> u64 {
        let mut books = self.payments.books();
        let Some(client) = books.clients.get_mut(&self.client) else {
            return 0;
        };
        let settled = if last {
            client.account.settle(id, adjusted)
        } else {
            client.account.settle_part(id, adjusted)
        };
        let billed = match settled {
            Ok(s) => {
                if s.unbilled > 0 {
                    tracing::warn!(
                        reserved = self.reserved,
                        reported = adjusted,
                        "usage above the reservation was not billed"
                    );
                }
                s.billed
            }
            Err(e) => {
                // Only a counter overflow gets here; nothing was billed and the reservation
                // is kept out of credit until restart rather than silently freed.
                tracing::error!("cannot bill a request: {e}");
                return 0;
            }
        };
        client.last_use = Instant::now();
        if let Some(w) = worker.and_then(|w| books.workers.get_mut(&w)) {
            if let Err(e) = w.counters.add(billed) {
                tracing::error!("cannot credit a worker: {e}");
            }
            w.last_use = Instant::now();
        }
        billed
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            if let Some(c) = self.payments.books().clients.get_mut(&self.client) {
                // Unknown ids cannot happen (each ticket holds its own), so ignoring is safe.
                let _ = c.account.release(id);
            }
        }
    }
}

impl Payments {
    /// Admits a request: reserves its worst case against the client's credit.
    pub fn admit(
        self: &Arc<Self>,
        client: &Address,
        prompt_estimate: u64,
        max_tokens: u64,
        max_coefficient: u32,
    ) -> Result<Ticket, (ErrorCode, String)> {
        let params = self.chain.registry().params.clone();
        let mut books = self.books();
        let Some(book) = books.clients.get_mut(client) else {
            return Err((
                ErrorCode::Unauthorized,
                "client has no account at this proxy".into(),
            ));
        };
        match book
            .account
            .reserve_request(&params, prompt_estimate, max_tokens, max_coefficient)
        {
            Ok((id, reserved)) => Ok(Ticket {
                payments: self.clone(),
                client: *client,
                id: Some(id),
                reserved,
            }),
            Err(e @ LedgerError::InsufficientCredit { .. }) => Err((
                ErrorCode::InsufficientFunds,
                format!("{e}; top up the client contract {client}"),
            )),
            Err(e) => Err((ErrorCode::InsufficientFunds, e.to_string())),
        }
    }

    fn sign(&self, op: VoucherOp, contract: Address, cumulative: u64) -> SignedVoucher {
        Voucher::new(op, contract, cumulative).sign_in(self.chain.signature_format(), &self.key)
    }

    /// Signs fresh vouchers for every peer whose anchored counter moved past its voucher.
    pub(super) fn sign_anchored(&self, books: &mut Books) {
        for (addr, b) in books.clients.iter_mut() {
            let anchored = b.account.used().committed_chain();
            if anchored > b.voucher.map_or(0, |v| v.cumulative) {
                b.voucher = Some(self.sign(VoucherOp::ClientCharge, *addr, anchored));
            }
        }
        for (addr, b) in books.workers.iter_mut() {
            let anchored = b.counters.committed_chain();
            if anchored > b.voucher.map_or(0, |v| v.cumulative) {
                b.voucher = Some(self.sign(VoucherOp::WorkerPayout, *addr, anchored));
            }
        }
    }

    pub fn client_status(&self, client: &Address) -> PaymentStatus {
        let books = self.books();
        match books.clients.get(client) {
            Some(b) => payment_status(b.voucher.as_ref(), &b.account.used().view()),
            None => payment_status(None, &CounterView::default()),
        }
    }

    pub fn worker_status(&self, worker: &Address) -> PaymentStatus {
        let books = self.books();
        match books.workers.get(worker) {
            Some(b) => payment_status(b.voucher.as_ref(), &b.counters.view()),
            None => payment_status(None, &CounterView::default()),
        }
    }

    /// The latest payout voucher of a worker (sent along with each request).
    pub fn worker_voucher(&self, worker: &Address) -> Option<SignedVoucher> {
        self.books().workers.get(worker).and_then(|b| b.voucher)
    }

    /// Balance compare (DESIGN §4): what a worker holds must not be ahead of our books.
    /// A voucher that does not verify under our key is a protocol error, not an alarm.
    pub fn compare_worker(
        &self,
        worker: &Address,
        voucher: Option<&SignedVoucher>,
        seen: &CounterView,
    ) -> Result<PaymentStatus, String> {
        if let Some(v) = voucher {
            if v.contract != *worker || v.op != VoucherOp::WorkerPayout {
                return Err("balance compare: voucher is not a payout of this worker".into());
            }
            v.verify_in(self.chain.signature_format(), &self.public)
                .map_err(|_| "balance compare: voucher was not signed by this proxy".to_string())?;
        }
        let books = self.books();
        let Some(b) = books.workers.get(worker) else {
            return Err("balance compare: worker has no account".into());
        };
        let ours = b.counters.committed_chain();
        let ahead = match voucher {
            Some(v) if v.cumulative > ours => Some(format!(
                "worker {worker} holds a voucher for {} tokens, this proxy only anchored {ours}",
                v.cumulative
            )),
            _ => b
                .counters
                .check_peer_not_ahead(seen)
                .err()
                .map(|e| format!("worker {worker}: {e}")),
        };
        if let Some(reason) = ahead {
            drop(books);
            self.alarm(reason.clone());
            return Err(reason);
        }
        Ok(payment_status(b.voucher.as_ref(), &b.counters.view()))
    }

    /// `/jsonstats` section.
    pub fn stats_json(&self) -> Value {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.stats;
        let books = self.books();
        let mut clients: Vec<Value> = books
            .clients
            .iter()
            .map(|(addr, b)| {
                let on = b.account.onchain();
                let used = b.account.used().view();
                json!({
                    "contract": addr.to_hex(), "owner": b.owner.to_hex(),
                    "state": on.state, "balance": on.balance, "stake": on.stake,
                    "tokens_charged": on.tokens_charged, "credit_tokens": b.account.credit(),
                    "reserved_tokens": b.account.reserved(), "in_flight": b.account.in_flight(),
                    "counters": used, "uncharged_tokens": b.account.uncharged(),
                    "voucher_tokens": b.voucher.map_or(0, |v| v.cumulative),
                })
            })
            .collect();
        clients.sort_by(|a, b| a["contract"].as_str().cmp(&b["contract"].as_str()));
        let mut workers: Vec<Value> = books
            .workers
            .iter()
            .map(|(addr, b)| {
                json!({
                    "contract": addr.to_hex(), "owner": b.owner.to_hex(),
                    "counters": b.counters.view(), "paid_tokens": b.paid_on_chain,
                    "unpaid_tokens": b.counters.committed_chain().saturating_sub(b.paid_on_chain),
                    "voucher_tokens": b.voucher.map_or(0, |v| v.cumulative),
                })
            })
            .collect();
        workers.sort_by(|a, b| a["contract"].as_str().cmp(&b["contract"].as_str()));
        json!({
            "contract": self.contract.to_hex(),
            "owner": self.owner.to_hex(),
            "public_key": self.public.to_hex(),
            "db_seqno": books.head.seqno,
            "anchored_seqno": books.anchored,
            "batches": s.batches.load(Relaxed),
            "anchors": s.anchors.load(Relaxed),
            "charges": s.charges.load(Relaxed),
            "payouts": s.payouts.load(Relaxed),
            "refunds": s.refunds.load(Relaxed),
            "chain_errors": s.chain_errors.load(Relaxed),
            "db_errors": s.db_errors.load(Relaxed),
            "alarms": s.alarms.load(Relaxed),
            "last_alarm": *self.last_alarm.lock().unwrap_or_else(|p| p.into_inner()),
            "clients": clients,
            "workers": workers,
        })
    }
}
