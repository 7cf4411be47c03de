//! The worker contract (per worker × proxy): how many tokens of this worker's work the
//! proxy has paid for. Payouts are proxy-signed cumulative vouchers that anyone (normally
//! the worker) may submit.

use super::proxy::ProxyContract;
use super::{ContractState, Effects};
use crate::address::{Address, PublicKey};
use crate::error::{LedgerError, Result};
use crate::voucher::{SignedVoucher, VoucherOp};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerContract {
    pub address: Address,
    /// The operator's address: receives the worker part of every payout.
    pub owner: Address,
    pub proxy: Address,
    pub proxy_key: PublicKey,
    /// Open or Closed (a last payout closes it; there is no delay, nothing is held here).
    pub state: ContractState,
    /// Cumulative adjusted tokens paid (the highest accepted voucher).
    pub tokens_paid: u64,
}

impl WorkerContract {
    pub fn deploy(owner: Address, proxy: &mut ProxyContract) -> Result<Self> {
        let address = Address::worker_contract(&proxy.address, &owner);
        proxy.register(address, true)?;
        Ok(WorkerContract {
            address,
            owner,
            proxy: proxy.address,
            proxy_key: proxy.key,
            state: ContractState::Open,
            tokens_paid: 0,
        })
    }

    fn precheck(&self, proxy: &ProxyContract, op: &'static str) -> Result<()> {
        if proxy.address != self.proxy {
            return Err(LedgerError::WrongProxy {
                contract: self.address,
                expected: self.proxy,
                got: proxy.address,
            });
        }
        if self.state != ContractState::Open {
            return Err(LedgerError::WrongState {
                contract: self.address,
                state: self.state,
                op,
            });
        }
        Ok(())
    }

    /// Pays `Δtokens × worker_fee_per_token` to the owner and credits `Δtokens × (price −
    /// fee)` to the proxy's commission.
    pub fn payout(
        &mut self,
        proxy: &mut ProxyContract,
        voucher: &SignedVoucher,
    ) -> Result<Effects> {
        self.precheck(proxy, "payout")?;
        let delta = voucher.check(
            VoucherOp::WorkerPayout,
            &self.address,
            &self.proxy_key,
            self.tokens_paid,
        )?;
        let fx = proxy.worker_payout(self.owner, delta)?;
        self.tokens_paid = voucher.cumulative;
        Ok(fx)
    }

    /// The final payout (may repeat the last count), then the contract closes, which lets
    /// a closing proxy complete.
    pub fn last_payout(
        &mut self,
        proxy: &mut ProxyContract,
        voucher: &SignedVoucher,
    ) -> Result<Effects> {
        self.precheck(proxy, "last_payout")?;
        let delta = voucher.check(
            VoucherOp::WorkerLastPayout,
            &self.address,
            &self.proxy_key,
            self.tokens_paid,
        )?;
        let fx = proxy.worker_payout(self.owner, delta)?;
        proxy.unregister(&self.address, true);
        self.tokens_paid = voucher.cumulative;
        self.state = ContractState::Closed;
        Ok(fx)
    }
}
