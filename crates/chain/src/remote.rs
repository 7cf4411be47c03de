//! `RemoteChain`: the `Chain` of a `cocoon chain serve` endpoint, so processes on other
//! hosts share one devnet.
//!
//! The trait is sync, reqwest is async: requests run on a [`RuntimeThread`] and the caller
//! waits for them. `registry()` never does I/O: a background task refreshes a cached copy
//! every `refresh` (1 s by default).

use crate::http::{AdvanceBody, BalanceBody, ErrorBody};
use crate::{Chain, ChainError, Registry, RuntimeThread, Tip, TxRecord};
use cocoon_ledger::{Address, Op, World};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Bound on every request, so a hung server cannot hang a caller forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct RemoteChain {
    base: String,
    client: reqwest::Client,
    /// Dropping it ends the runtime thread (and the refresher with it).
    rt: RuntimeThread,
    registry: Arc<RwLock<Arc<Registry>>>,
}

impl RemoteChain {
    /// Connects to `url` (e.g. `http://127.0.0.1:11500`) and fetches the registry once, so
    /// a wrong address fails here rather than at the first handshake.
    pub fn connect(url: &str) -> Result<Arc<Self>, ChainError> {
        Self::connect_with(url, Duration::from_secs(1))
    }

    /// Like `connect`, refreshing the cached registry every `refresh`.
    pub fn connect_with(url: &str, refresh: Duration) -> Result<Arc<Self>, ChainError> {
        let base = url.trim_end_matches('/').to_string();
        let remote_err = |message: String| ChainError::Remote {
            url: base.clone(),
            message,
        };
        let rt = RuntimeThread::start("remote-chain").map_err(remote_err)?;
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| remote_err(format!("cannot build HTTP client: {e}")))?;
        let first: Registry = call(&rt, get(&client, &base, "/registry"), &base)?;
        let chain = Arc::new(RemoteChain {
            base,
            client,
            rt,
            registry: Arc::new(RwLock::new(Arc::new(first))),
        });
        chain.spawn_refresher(refresh);
        Ok(chain)
    }

    /// Fetches the registry now (instead of waiting for the background refresh).
    pub fn refresh_registry(&self) -> Result<Arc<Registry>, ChainError> {
        let fresh: Arc<Registry> =
            Arc::new(self.call(get(&self.client, &self.base, "/registry"))?);
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
        Ok(fresh)
    }

    fn spawn_refresher(&self, every: Duration) {
        let (client, base, cache) = (
            self.client.clone(),
            self.base.clone(),
            self.registry.clone(),
        );
        self.rt.handle().spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match exchange::<Registry>(get(&client, &base, "/registry"), &base).await {
                    Ok(r) => *cache.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(r),
                    // Keep serving the last registry: a chain server restart must not take
                    // the network down.
                    Err(e) => tracing::warn!("registry refresh failed: {e}"),
                }
            }
        });
    }

    fn call<T: DeserializeOwned + Send + 'static>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ChainError> {
        call(&self.rt, req, &self.base)
    }
}

impl Chain for RemoteChain {
    fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn submit(&self, op: Op) -> Result<TxRecord, ChainError> {
        let url = format!("{}/submit", self.base);
        self.call(self.client.post(url).json(&op))
    }

    fn tip(&self) -> Result<Tip, ChainError> {
        self.call(get(&self.client, &self.base, "/time"))
    }

    fn world(&self) -> Result<Arc<World>, ChainError> {
        self.call::<World>(get(&self.client, &self.base, "/state"))
            .map(Arc::new)
    }

    fn balance(&self, address: &Address) -> Result<u64, ChainError> {
        let path = format!("/balance/{address}");
        self.call::<BalanceBody>(get(&self.client, &self.base, &path))
            .map(|b| b.balance)
    }

    fn history(&self, from_seq: u64, limit: usize) -> Result<Vec<TxRecord>, ChainError> {
        // The server caps each answer; page until `limit` or the end.
        let mut out: Vec<TxRecord> = Vec::new();
        let mut from = from_seq;
        while out.len() < limit {
            let want = (limit - out.len()).min(crate::http::MAX_HISTORY);
            let path = format!("/history?from={from}&limit={want}");
            let page: Vec<TxRecord> = self.call(get(&self.client, &self.base, &path))?;
            let Some(last) = page.last() else { break };
            // The server chose the seq: never overflow on it (pages end at `limit` anyway).
            from = last.seq.saturating_add(1);
            let short = page.len() < want;
            out.extend(page);
            if short {
                break;
            }
        }
        Ok(out)
    }

    fn advance(&self, secs: u64) -> Result<Tip, ChainError> {
        let url = format!("{}/advance", self.base);
        self.call(self.client.post(url).json(&AdvanceBody { secs }))
    }
}

fn get(client: &reqwest::Client, base: &str, path: &str) -> reqwest::RequestBuilder {
    client.get(format!("{base}{path}"))
}

/// Runs one request on the client runtime and waits for its answer.
fn call<T: DeserializeOwned + Send + 'static>(
    rt: &RuntimeThread,
    req: reqwest::RequestBuilder,
    base: &str,
) -> Result<T, ChainError> {
    let url = base.to_string();
    rt.block(async move { exchange::<T>(req, &url).await })
        .ok_or_else(|| ChainError::Remote {
            url: base.to_string(),
            message: "client runtime stopped".into(),
        })?
}

/// Largest answer accepted from a chain server (the whole-ledger snapshot is the biggest).
const MAX_ANSWER_BYTES: usize = 16 << 20;

async fn exchange<T: DeserializeOwned>(
    req: reqwest::RequestBuilder,
    url: &str,
) -> Result<T, ChainError> {
    let remote = |message: String| ChainError::Remote {
        url: url.to_string(),
        message,
    };
    let mut resp = req.send().await.map_err(|e| remote(e.to_string()))?;
    let status = resp.status();
    // Bounded: a misbehaving server cannot make this process buffer without limit.
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(remote(format!(
            "answer larger than {MAX_ANSWER_BYTES} bytes"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| remote(e.to_string()))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(remote(format!(
                "answer larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| remote(format!("bad answer: {e}")));
    }
    let message = serde_json::from_slice::<ErrorBody>(&body)
        .map(|b| b.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
    Err(match status {
        StatusCode::CONFLICT => ChainError::Rejected {
            reason: message
                .strip_prefix("op rejected: ")
                .unwrap_or(&message)
                .to_string(),
            ledger: None,
        },
        StatusCode::BAD_REQUEST => ChainError::BadRequest(message),
        _ => remote(format!("{status}: {message}")),
    })
}
