//! A private single-thread tokio runtime on its own thread, for the sync `Chain` of an async
//! client (`RemoteChain`, TON's). Callers wait on a channel for what they hand it, which works
//! from any context — plain threads, `spawn_blocking`, even another runtime's worker (blocked
//! for that call) — and never deadlocks on the caller's runtime.

use std::future::Future;

#[derive(Debug)]
pub struct RuntimeThread {
    handle: tokio::runtime::Handle,
    /// Dropping it ends the thread and every task spawned on it.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl RuntimeThread {
    /// Starts the thread, named `name`.
    pub fn start(name: &str) -> Result<RuntimeThread, String> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(rt.handle().clone()));
                // Spawned tasks run while this waits; they are dropped with the runtime.
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| format!("cannot start thread {name}: {e}"))?;
        let handle = ready_rx
            .recv()
            .map_err(|_| format!("thread {name} died"))?
            .map_err(|e| format!("cannot start the runtime of {name}: {e}"))?;
        Ok(RuntimeThread {
            handle,
            _stop: stop,
        })
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Runs `fut` on the thread and waits for it; `None` when the runtime has stopped.
    pub fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().ok()
    }
}
