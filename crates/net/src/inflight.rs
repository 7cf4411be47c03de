//! Load shedding (issue 6): a node holds at most so many requests and so many bytes of
//! request bodies at once. Past either bound a request is refused at once (the client
//! answers the app 429 with `Retry-After`, the proxy answers `Overloaded`, which the client
//! turns into 503 with `Retry-After`) instead of being queued without bound.
//!
//! The client takes a request's share of the byte budget from its `Content-Length` (or the
//! largest body, when it sends none) before reading it, so memory is bounded before it is
//! spent; a body that is already in memory (at the proxy) is counted for as long as its
//! request runs, which is what matters for answers that stream for minutes.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
/// The budget is counted in KiB so a permit count fits a semaphore comfortably.
const UNIT: usize = 1024;

#[derive(Debug)]
pub struct InFlight {
    requests: Arc<Semaphore>,
    body_kib: Arc<Semaphore>,
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}; retry shortly")]
pub struct Busy(pub String);

/// Held for the life of a request, its answer stream included.
#[derive(Debug)]
pub struct Admitted {
    _request: OwnedSemaphorePermit,
    _body: OwnedSemaphorePermit,
}

impl InFlight {
    pub fn new(requests: usize, body_bytes: usize) -> Self {
        InFlight {
            requests: Arc::new(Semaphore::new(requests)),
            body_kib: Arc::new(Semaphore::new(body_bytes.div_ceil(UNIT))),
        }
    }

    /// Admits a request whose body is at most `body_len` bytes, or refuses it.
    pub fn admit(&self, body_len: usize) -> Result<Admitted, Busy> {
        let busy = |what: &str| Busy(format!("{what} are in flight at this node"));
        let request = self
            .requests
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy("too many requests"))?;
        let kib = u32::try_from(body_len.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        let body = self
            .body_kib
            .clone()
            .try_acquire_many_owned(kib)
            .map_err(|_| busy("too many bytes of request bodies"))?;
        Ok(Admitted {
            _request: request,
            _body: body,
        })
    }

    /// Requests in flight now, given the limit it was made with.
    pub fn requests(&self, limit: usize) -> usize {
        limit.saturating_sub(self.requests.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_either_bound_requests_are_refused_and_permits_come_back() {
        let inflight = InFlight::new(2, 10 * UNIT);
        let a = inflight.admit(100).unwrap();
        let _b = inflight.admit(100).unwrap();
        let e = inflight.admit(100).unwrap_err();
        assert!(e.to_string().contains("too many requests"), "{e}");
        assert_eq!(inflight.requests(2), 2);
        drop(a);
        // The request slot is back, but a body over the byte budget is refused.
        let e = inflight.admit(10 * UNIT).unwrap_err();
        assert!(e.to_string().contains("bytes"), "{e}");
        assert!(inflight.admit(8 * UNIT).is_ok());
    }
}
