//! The money task of one paid proxy link: every `poll` it fetches the payment status (and
//! checks it for rollback), reads the client contract from chain, tops it up when the
//! unused balance runs low, and submits the held charge voucher when the proxy lags.

use super::auth::{PaidProxy, Payer};
use super::book::{ChainView, Refusal};
use super::decide::top_up_due;
use super::{on_chain, PaymentError};
use cocoon_chain::ledger::{ClientContract, ContractState, Op, SignedVoucher};
use cocoon_proto::{client_link_client::ClientLinkClient, PaymentStatus, PaymentStatusRequest};
use tokio::time::{Instant, MissedTickBehavior};
use tonic::transport::Channel;

impl Payer {
    /// Runs until the proxy's report is refused (returned) or the future is dropped (the
    /// link closed). Other failures are logged and retried at the next poll.
    pub async fn money_loop(
        &self,
        mut client: ClientLinkClient<Channel>,
        paid: PaidProxy,
        endpoint: String,
    ) -> Refusal {
        let mut poll = tokio::time::interval(self.payments.poll);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_warning = String::new();
        loop {
            poll.tick().await;
            match self.tick(&mut client, &paid).await {
                Ok(()) => last_warning.clear(),
                Err(PaymentError::Refused(r)) => return r,
                Err(e) => {
                    // Once per distinct problem, not once per poll.
                    let text = e.to_string();
                    if text != last_warning {
                        tracing::warn!(proxy = %endpoint, "payments: {text}");
                        last_warning = text;
                    }
                }
            }
        }
    }

    /// One poll.
    pub async fn tick(
        &self,
        client: &mut ClientLinkClient<Channel>,
        paid: &PaidProxy,
    ) -> Result<(), PaymentError> {
        let status = self.payment_status(client).await?;
        self.books.with(&paid.proxy_contract, |b| {
            b.accept_report(&paid.key, &status)
        })?;
        let address = paid.client_contract;
        let read = on_chain(&self.chain, move |c| {
            c.world().map(|w| {
                w.clients.get(&address).cloned().map(|contract| {
                    // The price the contract charges at: its proxy contract's parameters.
                    let price = match w.proxies.get(&contract.proxy) {
                        Some(p) => p.params.price_per_token,
                        None => c.registry().params.price_per_token,
                    };
                    (contract, price)
                })
            })
        })
        .await?;
        let Some((contract, price)) = read else {
            return Err(PaymentError::NoClientContract(address));
        };
        let now = Instant::now();
        let (used, held, charge_due) = self.books.with(&paid.proxy_contract, |b| {
            b.chain = Some(chain_view(&contract, price));
            let held = b.held;
            let due = b.charge_lag.observe(
                held.map(|v| v.cumulative),
                contract.tokens_charged,
                now,
                self.payments.charge_lag,
            );
            (b.seen.0.in_memory, held, due)
        });
        if let (true, Some(voucher)) = (charge_due, held) {
            self.charge(paid, voucher).await;
        }
        let low = top_up_due(
            contract.balance,
            contract.stake,
            contract.tokens_charged,
            used,
            price,
        );
        if low && contract.state == ContractState::Open && self.payments.deposit > 0 {
            self.top_up(paid).await?;
        }
        Ok(())
    }

    async fn payment_status(
        &self,
        client: &mut ClientLinkClient<Channel>,
    ) -> Result<PaymentStatus, PaymentError> {
        tokio::time::timeout(
            self.step,
            client.get_payment_status(PaymentStatusRequest {}),
        )
        .await
        .map_err(|_| PaymentError::Timeout("payment status"))?
        .map(tonic::Response::into_inner)
        .map_err(|s| PaymentError::Rpc {
            call: "payment status",
            message: cocoon_proto::bounded_text(s.message()).to_string(),
        })
    }

    /// Submits the held charge voucher because the proxy has not. Losing the race to the
    /// proxy (a stale voucher) is the normal case, not an error.
    async fn charge(&self, paid: &PaidProxy, voucher: SignedVoucher) {
        let client = paid.client_contract;
        let result = on_chain(&self.chain, move |c| {
            c.submit(Op::ClientCharge { client, voucher })
        })
        .await;
        let outcome = match result {
            Ok(_) => {
                tracing::info!(%client, tokens = voucher.cumulative, "submitted a lagging charge voucher");
                Some(())
            }
            Err(PaymentError::Chain(e)) if e.is_stale_voucher() => {
                tracing::debug!(%client, "charge voucher already applied: {e}");
                None
            }
            Err(e) => {
                tracing::warn!(%client, tokens = voucher.cumulative, "cannot submit charge voucher: {e}");
                None
            }
        };
        self.books.with(&paid.proxy_contract, |b| {
            b.charge_lag.reset();
            if outcome.is_some() {
                b.self_charges += 1;
            }
        });
    }

    async fn top_up(&self, paid: &PaidProxy) -> Result<(), PaymentError> {
        let op = Op::ClientTopUp {
            sender: self.owner,
            client: paid.client_contract,
            amount: self.payments.deposit,
        };
        on_chain(&self.chain, move |c| c.submit(op)).await?;
        tracing::info!(client = %paid.client_contract, amount = self.payments.deposit, "topped up client contract");
        self.books.with(&paid.proxy_contract, |b| b.top_ups += 1);
        Ok(())
    }
}

fn chain_view(c: &ClientContract, price: u64) -> ChainView {
    ChainView {
        balance: c.balance,
        stake: c.stake,
        tokens_charged: c.tokens_charged,
        state: format!("{:?}", c.state).to_lowercase(),
        price_per_token: price,
    }
}
