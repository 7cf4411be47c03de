//! Engine health: the worker offers itself to proxies only while its engine answers.

use crate::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) async fn probe_loop(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut engine_ok = false;
    loop {
        let ok = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, shared.engine.health()).await,
            Ok(Ok(()))
        );
        if ok != engine_ok {
            if ok {
                tracing::info!("engine is up");
            } else {
                tracing::warn!("engine is down: disabling this worker toward proxies");
            }
            engine_ok = ok;
        }
        recompute_enabled(&shared, Some(engine_ok));
        tokio::select! {
            _ = tokio::time::sleep(shared.config.engine_probe_interval) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Publishes enabled = engine healthy && not operator-disabled. `engine_ok = None` keeps
/// the engine half as last seen.
pub(crate) fn recompute_enabled(shared: &Shared, engine_ok: Option<bool>) {
    if let Some(ok) = engine_ok {
        shared.engine_ok.store(ok, Ordering::SeqCst);
    }
    let enabled =
        shared.engine_ok.load(Ordering::SeqCst) && !shared.operator_disabled.load(Ordering::SeqCst);
    shared
        .enabled
        .send_if_modified(|v| std::mem::replace(v, enabled) != enabled);
}
