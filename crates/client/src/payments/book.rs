//! What the client remembers about each proxy contract for the life of the process.
//!
//! Rollback resistance (DESIGN §6): every payment status a proxy reports is checked against
//! the highest counters and the highest valid charge voucher it reported before. A report
//! that goes back means the proxy's state was restored from an older copy: the link is
//! refused, and stays refused for as long as the proxy's reports stay behind (the memory
//! outlives the link, so a reconnect is checked against it too).

use super::decide::ChargeLag;
use cocoon_chain::ledger::{
    Address, CounterView, LedgerError, PublicKey, SeenCounters, SignatureFormat, SignedVoucher,
    VoucherOp,
};
use cocoon_proto as proto;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Why a proxy's payment report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("invalid charge voucher: {0}")]
    InvalidVoucher(String),
    #[error("voucher went back: the proxy reports {got} cumulative tokens but already signed {held}; its state was rolled back")]
    VoucherBehind { held: u64, got: u64 },
    #[error("counters went back: {0}; its state was rolled back")]
    CountersBehind(LedgerError),
    #[error("counters out of order: chain {chain}, db {db}, memory {memory} (must be chain ≤ db ≤ memory)")]
    CountersOutOfOrder { chain: u64, db: u64, memory: u64 },
}

/// The short-auth secret for one proxy. Never printed or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub [u8; 32]);

impl Secret {
    pub fn random() -> Secret {
        Secret(rand::random())
    }

    /// What the client contract stores and the proxy compares against.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The client contract as last read from chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChainView {
    pub balance: u64,
    pub stake: u64,
    pub tokens_charged: u64,
    pub state: String,
    pub price_per_token: u64,
}

/// Per proxy contract.
#[derive(Debug, Default)]
pub struct ProxyBook {
    pub endpoint: String,
    pub client_contract: Address,
    pub secret: Option<Secret>,
    pub seen: SeenCounters,
    /// The highest valid charge voucher the proxy reported.
    pub held: Option<SignedVoucher>,
    pub charge_lag: ChargeLag,
    pub chain: Option<ChainView>,
    pub top_ups: u64,
    pub self_charges: u64,
    pub refusals: u64,
    /// Set while the proxy's last report was refused.
    pub refused: Option<String>,
    pub short_auths: u64,
    pub long_auths: u64,
    /// What the proxy signs vouchers over on the chain in use.
    pub format: SignatureFormat,
}

/// A charge voucher as the proxy reported it: `None` when it has signed none yet.
pub fn parse_voucher(
    v: Option<&proto::SignedVoucher>,
    client_contract: &Address,
    key: &PublicKey,
    format: SignatureFormat,
) -> Result<Option<SignedVoucher>, Refusal> {
    let Some(v) = v.filter(|v| !v.signature.is_empty()) else {
        return Ok(None);
    };
    let bad = |m: String| Refusal::InvalidVoucher(m);
    let Some(voucher) = proto::money::voucher_from_wire(Some(v)).map_err(|e| bad(e.to_string()))?
    else {
        return Ok(None);
    };
    if voucher.op != VoucherOp::ClientCharge {
        return Err(bad(format!("op {:?}, expected ClientCharge", voucher.op)));
    }
    if voucher.contract != *client_contract {
        return Err(bad(format!(
            "bound to contract {}, not to this client's {client_contract}",
            voucher.contract
        )));
    }
    voucher
        .verify_in(format, key)
        .map_err(|e| bad(e.to_string()))?;
    Ok(Some(voucher))
}

pub fn counter_view(c: Option<&proto::Counters>) -> CounterView {
    c.map_or_else(CounterView::default, |c| CounterView {
        in_memory: c.max_tokens,
        committed_db: c.tokens_committed_to_db,
        committed_chain: c.tokens_committed_to_chain,
    })
}

impl ProxyBook {
    /// Checks a payment report and, only if it is not behind anything seen, remembers it.
    /// On refusal nothing changes except the refusal record.
    pub fn accept_report(
        &mut self,
        key: &PublicKey,
        status: &proto::PaymentStatus,
    ) -> Result<(), Refusal> {
        let result = self.check_report(key, status);
        match &result {
            Ok(()) => self.refused = None,
            Err(e) => {
                self.refusals += 1;
                self.refused = Some(e.to_string());
            }
        }
        result
    }

    fn check_report(
        &mut self,
        key: &PublicKey,
        status: &proto::PaymentStatus,
    ) -> Result<(), Refusal> {
        let voucher = parse_voucher(
            status.voucher.as_ref(),
            &self.client_contract,
            key,
            self.format,
        )?;
        if let Some(held) = &self.held {
            let got = voucher.as_ref().map_or(0, |v| v.cumulative);
            if got < held.cumulative {
                return Err(Refusal::VoucherBehind {
                    held: held.cumulative,
                    got,
                });
            }
        }
        let report = counter_view(status.counters.as_ref());
        if report.committed_chain > report.committed_db || report.committed_db > report.in_memory {
            return Err(Refusal::CountersOutOfOrder {
                chain: report.committed_chain,
                db: report.committed_db,
                memory: report.in_memory,
            });
        }
        let mut seen = self.seen;
        seen.observe(report).map_err(Refusal::CountersBehind)?;
        self.seen = seen;
        if let Some(v) = voucher {
            if self.held.is_none_or(|h| v.cumulative > h.cumulative) {
                self.held = Some(v);
            }
        }
        Ok(())
    }
}

/// Books of every proxy contract this process has talked to.
#[derive(Debug, Default)]
pub struct Books {
    inner: Mutex<BTreeMap<Address, ProxyBook>>,
}

impl Books {
    /// Runs `f` on the book of `proxy`, creating an empty one first if needed.
    pub fn with<R>(&self, proxy: &Address, f: impl FnOnce(&mut ProxyBook) -> R) -> R {
        let mut books = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(books.entry(*proxy).or_default())
    }

    pub fn views(&self) -> Vec<ProxyPaymentView> {
        let books = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        books.iter().map(|(proxy, b)| b.view(proxy)).collect()
    }
}

/// One proxy's payment state, as `/jsonstats` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ProxyPaymentView {
    pub endpoint: String,
    pub proxy_contract: String,
    pub client_contract: String,
    /// The client contract as last read from chain.
    pub chain: Option<ChainView>,
    /// Cumulative tokens of the highest valid charge voucher held.
    pub voucher_cumulative: Option<u64>,
    pub seen: CounterView,
    pub top_ups: u64,
    pub self_charges: u64,
    pub refusals: u64,
    pub refused: Option<String>,
    pub short_auths: u64,
    pub long_auths: u64,
}

impl ProxyBook {
    fn view(&self, proxy: &Address) -> ProxyPaymentView {
        ProxyPaymentView {
            endpoint: self.endpoint.clone(),
            proxy_contract: proxy.to_hex(),
            client_contract: self.client_contract.to_hex(),
            chain: self.chain.clone(),
            voucher_cumulative: self.held.map(|v| v.cumulative),
            seen: self.seen.0,
            top_ups: self.top_ups,
            self_charges: self.self_charges,
            refusals: self.refusals,
            refused: self.refused.clone(),
            short_auths: self.short_auths,
            long_auths: self.long_auths,
        }
    }
}

#[cfg(test)]
mod tests;
