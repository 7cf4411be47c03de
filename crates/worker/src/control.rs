//! The worker half of the control session (DESIGN §4 "Worker joins a proxy"):
//! hello → accepted/refused → balance compare → handshake complete → events.

use crate::payments::{payout_tick, Wallet, PAYMENT_POLL};
use crate::serve::BoxStream;
use crate::Shared;
use cocoon_proto::{
    money, proxy_to_worker::Msg as In, worker_to_proxy::Msg as Out, BalanceCompare,
    HandshakeComplete, PaymentStatusRequest, ProxyToWorker, SetCoefficient, SetEnabled,
    WorkerParams, WorkerToProxy,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

/// How long the proxy may take to answer each handshake step.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn session(
    shared: Arc<Shared>,
    inbound: Streaming<ProxyToWorker>,
    link_closed: CancellationToken,
) -> BoxStream<WorkerToProxy> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        if let Err(reason) = drive(&shared, inbound, &tx).await {
            tracing::warn!("proxy link ended: {reason}");
        }
        // Without a control session the link is useless: drop it so the link loop redials.
        link_closed.cancel();
    });
    Box::pin(ReceiverStream::new(rx))
}

async fn send(tx: &mpsc::Sender<Result<WorkerToProxy, Status>>, msg: Out) -> Result<(), String> {
    tx.send(Ok(WorkerToProxy { msg: Some(msg) }))
        .await
        .map_err(|_| "proxy closed the control stream".to_string())
}

async fn receive(inbound: &mut Streaming<ProxyToWorker>) -> Result<In, String> {
    match tokio::time::timeout(STEP_TIMEOUT, inbound.message()).await {
        Err(_) => Err("proxy did not answer the handshake in time".into()),
        Ok(Err(status)) => Err(format!("control stream failed: {}", status.message())),
        Ok(Ok(None)) => Err("proxy ended the control stream".into()),
        Ok(Ok(Some(ProxyToWorker { msg: None }))) => Err("empty message from proxy".into()),
        Ok(Ok(Some(ProxyToWorker { msg: Some(m) }))) => Ok(m),
    }
}

/// Earnings in metrics: voucher growth (adjusted tokens) times the registry's worker fee.
fn record_earned(shared: &Shared, tokens: u64) {
    if tokens > 0 {
        let fee = shared.config.chain.registry().params.worker_fee_per_token;
        shared.metrics.add_money(tokens.saturating_mul(fee));
    }
}

async fn drive(
    shared: &Shared,
    mut inbound: Streaming<ProxyToWorker>,
    tx: &mpsc::Sender<Result<WorkerToProxy, Status>>,
) -> Result<(), String> {
    let config = &shared.config;
    let mut enabled_rx = shared.enabled.subscribe();
    let mut coefficient_rx = shared.coefficient.subscribe();
    let hello = WorkerParams {
        owner_address: config.owner_address.clone(),
        model_id: config.model_id.clone(),
        coefficient: *coefficient_rx.borrow_and_update(),
        max_active_requests: config.max_active_requests,
        proxy_count: config.proxies.len().max(1) as u32,
        hardware: Some(config.hardware.clone()),
        protocol: Some(cocoon_proto::local_protocol_range()),
        enabled: *enabled_rx.borrow_and_update(),
        instance_name: config.name.clone(),
    };
    send(tx, Out::Hello(hello)).await?;
    let terms = match receive(&mut inbound).await? {
        In::Accepted(a) => {
            let proxy = a.proxy.clone().unwrap_or_default();
            tracing::info!(
                protocol = proxy.protocol_version,
                share = a.max_active_requests,
                "proxy accepted this worker"
            );
            let (chain, owner) = (config.chain.clone(), config.owner_address.clone());
            let worker_contract = a.worker_contract_address.clone();
            tokio::task::spawn_blocking(move || {
                Wallet::terms(
                    chain.as_ref(),
                    &owner,
                    &proxy.contract_address,
                    &proxy.public_key,
                    &worker_contract,
                )
            })
            .await
            .map_err(|e| format!("terms check failed: {e}"))??
        }
        In::Refused(r) => {
            return Err(format!(
                "proxy refused this worker: {}",
                cocoon_proto::bounded_text(&r.reason)
            ))
        }
        _ => return Err("protocol violation: expected accepted/refused".into()),
    };
    // Balance compare: the highest voucher and counters we saw from this proxy. A proxy
    // that was rolled back finds us ahead of it and refuses us (and raises its alarm).
    let (highest, seen) = match &terms {
        Some(t) => shared.wallet.compare(t),
        None => (None, Default::default()),
    };
    send(
        tx,
        Out::BalanceCompare(BalanceCompare {
            highest_voucher: highest.as_ref().map(money::voucher_to_wire),
            counters: Some(money::counters_to_wire(&seen)),
        }),
    )
    .await?;
    match receive(&mut inbound).await? {
        In::BalanceCompareResult(r) if r.ok => {
            if let Some(t) = &terms {
                let earned = shared.wallet.observe(t, r.payment.as_ref())?;
                record_earned(shared, earned);
            }
        }
        In::BalanceCompareResult(r) => {
            return Err(format!(
                "balance compare failed: {}",
                cocoon_proto::bounded_text(&r.reason)
            ))
        }
        _ => return Err("protocol violation: expected balance compare result".into()),
    }
    let enabled_now = *enabled_rx.borrow_and_update();
    send(
        tx,
        Out::HandshakeComplete(HandshakeComplete {
            enabled: enabled_now,
        }),
    )
    .await?;
    match receive(&mut inbound).await? {
        In::HandshakeAck(_) => {}
        _ => return Err("protocol violation: expected handshake ack".into()),
    }
    let mut poll = tokio::time::interval(PAYMENT_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = poll.tick(), if terms.is_some() => {
                send(tx, Out::PaymentStatusRequest(PaymentStatusRequest {})).await?;
                if let Some(t) = terms {
                    // Off the select loop: a slow chain must not stall control messages.
                    tokio::spawn(payout_tick(shared.wallet.clone(), shared.config.chain.clone(), t));
                }
            }
            changed = enabled_rx.changed() => {
                if changed.is_err() { return Ok(()); }
                let enabled = *enabled_rx.borrow_and_update();
                let reason = if enabled { "ready" } else { "engine down or disabled by operator" };
                send(tx, Out::SetEnabled(SetEnabled { enabled, reason: reason.into() })).await?;
            }
            changed = coefficient_rx.changed() => {
                if changed.is_err() { return Ok(()); }
                let coefficient = *coefficient_rx.borrow_and_update();
                send(tx, Out::SetCoefficient(SetCoefficient { coefficient })).await?;
            }
            msg = inbound.message() => match msg {
                Ok(Some(ProxyToWorker { msg: Some(In::PaymentStatus(status)) })) => {
                    if let Some(t) = &terms {
                        let earned = shared.wallet.observe(t, Some(&status))?;
                        record_earned(shared, earned);
                    }
                }
                Ok(Some(_)) => return Err("protocol violation: unexpected message after handshake".into()),
                Ok(None) => return Err("proxy ended the control stream".into()),
                Err(status) => return Err(format!("control stream failed: {}", status.message())),
            },
        }
    }
}
