//! Inbound worker links: accept, then the proxy half of the control session
//! (DESIGN §4 "Worker joins a proxy").

use crate::workers::WorkerEntry;
use crate::Shared;
use cocoon_net::{channel_over, ClosedSignal, WatchedStream};
use cocoon_proto::{
    proxy_to_worker::Msg as Out, worker_link_client::WorkerLinkClient, worker_to_proxy::Msg as In,
    BalanceCompareResult, ErrorCode, HandshakeAck, PaymentStatus, ProxyToWorker, Refusal,
    WorkerAccepted, WorkerParams, WorkerToProxy, MAX_MESSAGE_BYTES, MAX_TEXT_BYTES,
};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

/// How long a worker may take for each handshake step.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest coefficient a worker may ask for (1000× the base price).
const MAX_COEFFICIENT: u32 = 1_000_000;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Runs one worker link from the accepted TLS stream until it closes.
pub(crate) async fn handle(shared: Arc<Shared>, stream: cocoon_net::TlsServerStream) {
    let (stream, closed) = WatchedStream::new(stream);
    let channel = match channel_over(stream, &shared.config.timing).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("worker link setup failed: {e}");
            return;
        }
    };
    let client = WorkerLinkClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let (tx, rx) = mpsc::channel::<ProxyToWorker>(16);
    let inbound = match client.clone().control(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(status) => {
            tracing::warn!("worker refused the control session: {}", status.message());
            return;
        }
    };
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    match session(&shared, id, client, inbound, &tx, &closed).await {
        Ok(()) => tracing::info!(worker = id, "worker link closed"),
        Err(reason) => {
            tracing::warn!(worker = id, "worker link dropped: {reason}");
            // Best effort: tell the worker why before the link goes.
            let refusal = Refusal {
                code: ErrorCode::Protocol as i32,
                reason: reason.clone(),
            };
            let _ = tx.try_send(ProxyToWorker {
                msg: Some(Out::Refused(refusal)),
            });
        }
    }
    shared.workers.remove(id);
}

async fn send(tx: &mpsc::Sender<ProxyToWorker>, msg: Out) -> Result<(), String> {
    tx.send(ProxyToWorker { msg: Some(msg) })
        .await
        .map_err(|_| "control stream closed".to_string())
}

async fn receive(inbound: &mut Streaming<WorkerToProxy>) -> Result<In, String> {
    match tokio::time::timeout(STEP_TIMEOUT, inbound.message()).await {
        Err(_) => Err("worker did not complete the handshake in time".into()),
        Ok(Err(status)) => Err(format!("control stream failed: {}", status.message())),
        Ok(Ok(None)) => Err("worker ended the control stream".into()),
        Ok(Ok(Some(WorkerToProxy { msg: None }))) => Err("empty message from worker".into()),
        Ok(Ok(Some(WorkerToProxy { msg: Some(m) }))) => Ok(m),
    }
}

/// Checks a worker's parameters against protocol and registry; returns the negotiated version.
fn check_params(shared: &Shared, p: &WorkerParams) -> Result<u32, String> {
    let version = cocoon_proto::negotiate(p.protocol.as_ref())?;
    for (field, value) in [
        ("owner_address", &p.owner_address),
        ("model_id", &p.model_id),
        ("instance_name", &p.instance_name),
    ] {
        if value.len() > MAX_TEXT_BYTES {
            return Err(format!("{field} longer than {MAX_TEXT_BYTES} bytes"));
        }
    }
    if p.model_id.is_empty() || !p.model_id.contains('@') {
        return Err(format!(
            "model id {:?} is not of the form name@revision:hash",
            p.model_id
        ));
    }
    if !shared.config.chain.registry().has_model(&p.model_id) {
        return Err(format!(
            "model {:?} is not allowed by the registry",
            p.model_id
        ));
    }
    if p.coefficient > MAX_COEFFICIENT {
        return Err(format!(
            "coefficient {} above the maximum {MAX_COEFFICIENT}",
            p.coefficient
        ));
    }
    if p.max_active_requests == 0 || p.proxy_count == 0 {
        return Err("max_active_requests and proxy_count must be at least 1".into());
    }
    Ok(version)
}

async fn session(
    shared: &Arc<Shared>,
    id: u64,
    client: WorkerLinkClient<tonic::transport::Channel>,
    mut inbound: Streaming<WorkerToProxy>,
    tx: &mpsc::Sender<ProxyToWorker>,
    closed: &ClosedSignal,
) -> Result<(), String> {
    let params = match receive(&mut inbound).await? {
        In::Hello(p) => p,
        _ => return Err("protocol violation: expected hello".into()),
    };
    let version = check_params(shared, &params)?;
    // Each proxy gets its share of the worker's capacity.
    let share = params.max_active_requests.div_ceil(params.proxy_count);
    let contract = match &shared.payments {
        Some(p) => {
            let owner = cocoon_ledger::Address::parse_owner(&params.owner_address);
            Some(p.join_worker(owner).await?)
        }
        None => None,
    };
    send(
        tx,
        Out::Accepted(WorkerAccepted {
            proxy: Some(shared.proxy_params(version)),
            worker_contract_address: contract.map(|c| c.to_hex()).unwrap_or_default(),
            max_active_requests: share,
        }),
    )
    .await?;
    let compare = match receive(&mut inbound).await? {
        In::BalanceCompare(c) => c,
        _ => return Err("protocol violation: expected balance compare".into()),
    };
    // What the worker holds must not be ahead of our books (DESIGN §4): if it is, our
    // state was rolled back; the worker is refused and an alarm raised, nothing aborts.
    let payment = match (&shared.payments, contract) {
        (Some(p), Some(c)) => {
            let voucher = money_from_wire(compare.highest_voucher.as_ref())?;
            let seen = cocoon_proto::money::counters_from_wire(compare.counters.as_ref())
                .map_err(|e| format!("balance compare: {e}"))?;
            match p.compare_worker(&c, voucher.as_ref(), &seen) {
                Ok(status) => status,
                Err(reason) => {
                    let _ = send(
                        tx,
                        Out::BalanceCompareResult(BalanceCompareResult {
                            ok: false,
                            reason: reason.clone(),
                            payment: None,
                        }),
                    )
                    .await;
                    return Err(reason);
                }
            }
        }
        _ => PaymentStatus::default(),
    };
    send(
        tx,
        Out::BalanceCompareResult(BalanceCompareResult {
            ok: true,
            reason: String::new(),
            payment: Some(payment),
        }),
    )
    .await?;
    let enabled = match receive(&mut inbound).await? {
        In::HandshakeComplete(h) => h.enabled,
        _ => return Err("protocol violation: expected handshake complete".into()),
    };
    let entry = Arc::new(WorkerEntry {
        id,
        name: params.instance_name.clone(),
        owner: params.owner_address.clone(),
        contract,
        base_model: params
            .model_id
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string(),
        model_id: params.model_id.clone(),
        hardware: params.hardware.clone().unwrap_or_default(),
        max_active: share,
        coefficient: AtomicU32::new(params.coefficient),
        enabled: AtomicBool::new(enabled),
        active: AtomicU32::new(0),
        served: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        client,
        perf: std::sync::Mutex::new(crate::routing::Perf::new(&shared.workers.routing)),
    });
    shared.workers.insert(entry.clone());
    send(tx, Out::HandshakeAck(HandshakeAck {})).await?;
    tracing::info!(worker = id, model = %params.model_id, enabled, "worker joined");
    loop {
        let msg = tokio::select! {
            m = inbound.message() => m,
            _ = closed.closed() => return Ok(()),
        };
        match msg {
            Ok(Some(WorkerToProxy {
                msg: Some(In::SetEnabled(s)),
            })) => {
                entry.enabled.store(s.enabled, Ordering::Relaxed);
                tracing::info!(worker = id, enabled = s.enabled, "worker changed state");
            }
            Ok(Some(WorkerToProxy {
                msg: Some(In::SetCoefficient(c)),
            })) => {
                if c.coefficient > MAX_COEFFICIENT {
                    return Err(format!("coefficient {} above the maximum", c.coefficient));
                }
                entry.coefficient.store(c.coefficient, Ordering::Relaxed);
            }
            Ok(Some(WorkerToProxy {
                msg: Some(In::PaymentStatusRequest(_)),
            })) => {
                let status = match (&shared.payments, contract) {
                    (Some(p), Some(c)) => p.worker_status(&c),
                    _ => PaymentStatus::default(),
                };
                send(tx, Out::PaymentStatus(status)).await?
            }
            Ok(Some(_)) => {
                return Err("protocol violation: unexpected message after handshake".into())
            }
            Ok(None) => return Ok(()),
            Err(status) => return Err(format!("control stream failed: {}", status.message())),
        }
    }
}

fn money_from_wire(
    v: Option<&cocoon_proto::SignedVoucher>,
) -> Result<Option<cocoon_ledger::SignedVoucher>, String> {
    cocoon_proto::money::voucher_from_wire(v).map_err(|e| format!("balance compare: {e}"))
}
