//! The client contract (per client × proxy): the accounting of one client's deposit, which
//! itself sits on the proxy contract.

use super::proxy::ProxyContract;
use super::{add, require_owner, ContractState, Effects, TransferKind};
use crate::address::{Address, PublicKey};
use crate::error::{LedgerError, Result};
use crate::voucher::{SignedVoucher, VoucherOp};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientContract {
    pub address: Address,
    /// Receives withdrawals and refunds.
    pub owner: Address,
    /// The proxy contract holding this client's deposit.
    pub proxy: Address,
    /// The key whose vouchers this contract accepts.
    pub proxy_key: PublicKey,
    pub state: ContractState,
    /// nanoTON deposited and neither charged nor refunded.
    pub balance: u64,
    /// nanoTON that stays locked while open: the credit the proxy may extend unsettled.
    pub stake: u64,
    /// Cumulative adjusted tokens charged (the highest accepted voucher).
    pub tokens_charged: u64,
    /// SHA-256 of the short-auth secret (DESIGN §6, client auth).
    pub secret_hash: [u8; 32],
    /// When a closing contract may force its refund.
    pub unlock_at: u64,
    /// The last nonce the owner registered (long auth: proves wallet control to a proxy).
    #[serde(default)]
    pub registered_nonce: u64,
}

impl ClientContract {
    /// Deploys the client contract of `owner` at `proxy` with an initial deposit (the
    /// deploy message's value, already delivered to the proxy contract by the caller).
    pub fn deploy(owner: Address, proxy: &mut ProxyContract, deposit: u64) -> Result<Self> {
        let address = Address::client_contract(&proxy.address, &owner);
        // Check the deposit fits before registering, so a failure leaves the proxy as it was.
        add(proxy.client_deposits, deposit, "client deposits")?;
        proxy.register(address, false)?;
        proxy.client_deposit(deposit)?;
        Ok(ClientContract {
            address,
            owner,
            proxy: proxy.address,
            proxy_key: proxy.key,
            state: ContractState::Open,
            balance: deposit,
            stake: proxy.params.min_client_stake,
            tokens_charged: 0,
            secret_hash: [0; 32],
            unlock_at: 0,
            registered_nonce: 0,
        })
    }

    fn require_proxy(&self, proxy: &ProxyContract) -> Result<()> {
        if proxy.address != self.proxy {
            return Err(LedgerError::WrongProxy {
                contract: self.address,
                expected: self.proxy,
                got: proxy.address,
            });
        }
        Ok(())
    }

    fn wrong_state(&self, op: &'static str) -> LedgerError {
        LedgerError::WrongState {
            contract: self.address,
            state: self.state,
            op,
        }
    }

    /// Adds `amount` (the attached value, delivered to the proxy contract). Anyone may top
    /// up; only while both contracts are open, so closing proxies take no new money.
    pub fn top_up(&mut self, proxy: &mut ProxyContract, amount: u64) -> Result<Effects> {
        self.require_proxy(proxy)?;
        if self.state != ContractState::Open {
            return Err(self.wrong_state("top_up"));
        }
        if amount == 0 {
            return Err(LedgerError::ZeroAmount);
        }
        let balance = add(self.balance, amount, "client balance")?;
        proxy.client_deposit(amount)?;
        self.balance = balance;
        Ok(Effects::none())
    }

    /// Raises the stake (never lowers it: the proxy may already have served on it).
    pub fn increase_stake(&mut self, sender: &Address, stake: u64) -> Result<Effects> {
        require_owner(sender, &self.owner)?;
        if self.state != ContractState::Open {
            return Err(self.wrong_state("increase_stake"));
        }
        if stake <= self.stake {
            return Err(LedgerError::StakeTooLow {
                got: stake,
                min: self.stake.saturating_add(1),
            });
        }
        self.stake = stake;
        Ok(Effects::none())
    }

    pub fn set_secret_hash(&mut self, sender: &Address, hash: [u8; 32]) -> Result<Effects> {
        require_owner(sender, &self.owner)?;
        if self.state == ContractState::Closed {
            return Err(self.wrong_state("set_secret_hash"));
        }
        self.secret_hash = hash;
        Ok(Effects::none())
    }

    /// Long auth (DESIGN §4): the owner registers the nonce a proxy issued, proving it
    /// controls the owner wallet; the proxy then reads it back from chain.
    pub fn register(&mut self, sender: &Address, nonce: u64) -> Result<Effects> {
        require_owner(sender, &self.owner)?;
        if self.state != ContractState::Open {
            return Err(self.wrong_state("register"));
        }
        self.registered_nonce = nonce;
        Ok(Effects::none())
    }

    /// Returns the balance above the stake to the owner. The stake stays: it is what
    /// backs the usage the proxy has served but not yet charged.
    pub fn withdraw(&mut self, sender: &Address, proxy: &mut ProxyContract) -> Result<Effects> {
        require_owner(sender, &self.owner)?;
        self.require_proxy(proxy)?;
        if self.state != ContractState::Open {
            return Err(self.wrong_state("withdraw"));
        }
        if self.balance <= self.stake {
            return Err(LedgerError::NothingToWithdraw {
                balance: self.balance,
                stake: self.stake,
            });
        }
        let amount = self.balance - self.stake;
        let fx = proxy.client_refund(self.owner, amount, TransferKind::ClientWithdraw)?;
        self.balance = self.stake;
        Ok(fx)
    }

    /// First call (open): closing; the balance above the stake is refunded now, and the
    /// proxy has `client_delay_before_close` to charge what it served and grant the refund.
    /// Second call (closing, unlocked): the proxy stayed silent, so the contract closes and
    /// refunds the remaining balance by force; uncharged usage is then the proxy's loss,
    /// capped by the client's stake because credit never exceeds it.
    pub fn request_close(
        &mut self,
        sender: &Address,
        proxy: &mut ProxyContract,
        now: u64,
    ) -> Result<Effects> {
        require_owner(sender, &self.owner)?;
        self.require_proxy(proxy)?;
        match self.state {
            ContractState::Open => {
                let unlock_at = add(
                    now,
                    proxy.params.client_delay_before_close_secs,
                    "client unlock time",
                )?;
                let above = self.balance.saturating_sub(self.stake);
                let fx = proxy.client_refund(self.owner, above, TransferKind::ClientRefund)?;
                self.balance -= above;
                self.unlock_at = unlock_at;
                self.state = ContractState::Closing;
                Ok(fx)
            }
            ContractState::Closing if now < self.unlock_at => Err(LedgerError::NotUnlocked {
                contract: self.address,
                unlock_at: self.unlock_at,
                now,
            }),
            ContractState::Closing => self.close_and_refund(proxy),
            ContractState::Closed => Err(self.wrong_state("request_close")),
        }
    }

    /// Applies a proxy-signed charge voucher: `Δtokens × price` moves from the deposit to
    /// the proxy, floored at the balance (as the reference does) so that a valid voucher is
    /// never unusable; serving beyond the balance is the proxy's loss, not the client's.
    pub fn charge(
        &mut self,
        proxy: &mut ProxyContract,
        voucher: &SignedVoucher,
    ) -> Result<Effects> {
        self.require_proxy(proxy)?;
        if self.state == ContractState::Closed {
            return Err(self.wrong_state("charge"));
        }
        voucher.check(
            VoucherOp::ClientCharge,
            &self.address,
            &self.proxy_key,
            self.tokens_charged,
        )?;
        self.apply_charge(proxy, voucher.cumulative)?;
        Ok(Effects::none())
    }

    /// The proxy's cooperative close: charge up to the voucher's count (which may repeat
    /// the last one), then close and refund everything left. Accepted open or closing.
    pub fn grant_refund(
        &mut self,
        proxy: &mut ProxyContract,
        voucher: &SignedVoucher,
    ) -> Result<Effects> {
        self.require_proxy(proxy)?;
        if self.state == ContractState::Closed {
            return Err(self.wrong_state("grant_refund"));
        }
        voucher.check(
            VoucherOp::ClientGrantRefund,
            &self.address,
            &self.proxy_key,
            self.tokens_charged,
        )?;
        let before = (self.clone(), proxy.clone());
        self.apply_charge(proxy, voucher.cumulative)?;
        match self.close_and_refund(proxy) {
            Ok(fx) => Ok(fx),
            Err(e) => {
                // Keep the all-or-nothing promise if the refund step fails.
                (*self, *proxy) = before;
                Err(e)
            }
        }
    }

    /// The charge amount of moving the counter to `cumulative`.
    pub fn charge_amount(&self, cumulative: u64, price_per_token: u64) -> u64 {
        let delta = cumulative.saturating_sub(self.tokens_charged);
        // u128 cannot overflow (u64 × u64); the result is capped by the balance (a u64).
        let amount = u128::from(delta) * u128::from(price_per_token);
        amount.min(u128::from(self.balance)) as u64
    }

    fn apply_charge(&mut self, proxy: &mut ProxyContract, cumulative: u64) -> Result<()> {
        let amount = self.charge_amount(cumulative, proxy.params.price_per_token);
        proxy.client_charged(amount)?;
        self.balance -= amount;
        self.tokens_charged = cumulative;
        Ok(())
    }

    fn close_and_refund(&mut self, proxy: &mut ProxyContract) -> Result<Effects> {
        let fx = proxy.client_refund(self.owner, self.balance, TransferKind::ClientRefund)?;
        proxy.unregister(&self.address, false);
        self.balance = 0;
        self.state = ContractState::Closed;
        Ok(fx)
    }
}
