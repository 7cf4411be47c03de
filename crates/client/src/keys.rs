//! Optional bearer API keys for the app-facing API (issue 7): each key may carry a spend cap
//! (nanoTON) and a requests-per-minute limit. Without keys configured the API is open (a
//! client usually listens on localhost next to its app).
//!
//! Keys are kept only as SHA-256 digests, so comparing a presented key leaks nothing useful
//! through timing, and a heap dump does not hold them.

use crate::errors::ApiError;
use axum::http::{header, HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One API key as configured.
#[derive(Clone, Debug)]
pub struct ApiKey {
    /// Shown in errors and stats; never the secret.
    pub name: String,
    pub secret: String,
    /// Most nanoTON this key may spend (over the client's lifetime); None = no cap.
    pub spend_cap: Option<u64>,
    /// Most requests per rolling minute; None = no limit.
    pub requests_per_minute: Option<u32>,
}

const MINUTE: Duration = Duration::from_secs(60);

pub(crate) struct KeyState {
    pub name: String,
    digest: [u8; 32],
    spend_cap: Option<u64>,
    rpm: Option<u32>,
    pub spent: AtomicU64,
    pub requests: AtomicU64,
    pub refused: AtomicU64,
    recent: Mutex<VecDeque<Instant>>,
}

impl KeyState {
    /// Adds a finished request's cost to this key's spend.
    pub fn spend(&self, nanoton: u64) {
        self.spent.fetch_add(nanoton, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub(crate) struct KeyRing {
    keys: Vec<Arc<KeyState>>,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl KeyRing {
    pub fn new(keys: &[ApiKey]) -> KeyRing {
        KeyRing {
            keys: keys
                .iter()
                .map(|k| {
                    Arc::new(KeyState {
                        name: k.name.clone(),
                        digest: digest(&k.secret),
                        spend_cap: k.spend_cap,
                        rpm: k.requests_per_minute,
                        spent: AtomicU64::new(0),
                        requests: AtomicU64::new(0),
                        refused: AtomicU64::new(0),
                        recent: Mutex::new(VecDeque::new()),
                    })
                })
                .collect(),
        }
    }

    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks the request's key, its rate limit and its spend cap. `Ok(None)` when no keys
    /// are configured.
    pub fn admit(
        &self,
        headers: &HeaderMap,
        now: Instant,
    ) -> Result<Option<Arc<KeyState>>, ApiError> {
        if self.is_open() {
            return Ok(None);
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthorized("missing API key: send `Authorization: Bearer <key>`"))?;
        let d = digest(presented);
        let key = self
            .keys
            .iter()
            .find(|k| k.digest == d)
            .ok_or_else(|| unauthorized("invalid API key"))?;
        if let Some(cap) = key.spend_cap {
            let spent = key.spent.load(Ordering::Relaxed);
            if spent >= cap {
                key.refused.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError {
                    status: StatusCode::PAYMENT_REQUIRED,
                    kind: "insufficient_quota",
                    code: "spend_cap_reached",
                    message: format!(
                        "API key {:?} reached its spend cap: {spent} of {cap} nanoTON spent",
                        key.name
                    ),
                    error_code: cocoon_proto::ErrorCode::InsufficientFunds,
                    retry_after: None,
                });
            }
        }
        if let Some(rpm) = key.rpm {
            let mut recent = key.recent.lock().unwrap_or_else(|p| p.into_inner());
            while recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= MINUTE)
            {
                recent.pop_front();
            }
            if recent.len() >= rpm as usize {
                let wait = recent
                    .front()
                    .map_or(MINUTE, |t| MINUTE.saturating_sub(now.duration_since(*t)));
                key.refused.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::rate_limited(
                    format!(
                        "API key {:?} is limited to {rpm} requests per minute; retry in {} s",
                        key.name,
                        wait.as_secs().max(1)
                    ),
                    wait.as_secs().max(1),
                ));
            }
            recent.push_back(now);
        }
        key.requests.fetch_add(1, Ordering::Relaxed);
        Ok(Some(key.clone()))
    }

    /// Per-key usage for `/jsonstats` (names only, never secrets).
    pub fn stats(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.keys
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "name": k.name,
                        "requests": k.requests.load(Ordering::Relaxed),
                        "refused": k.refused.load(Ordering::Relaxed),
                        "spent_nanoton": k.spent.load(Ordering::Relaxed),
                        "spend_cap_nanoton": k.spend_cap,
                        "requests_per_minute": k.rpm,
                    })
                })
                .collect(),
        )
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        kind: "invalid_request_error",
        code: "invalid_api_key",
        message: message.into(),
        error_code: cocoon_proto::ErrorCode::Unauthorized,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ring() -> KeyRing {
        KeyRing::new(&[ApiKey {
            name: "bot".into(),
            secret: "sk-test".into(),
            spend_cap: Some(100),
            requests_per_minute: Some(2),
        }])
    }

    fn bearer(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
        );
        h
    }

    #[test]
    fn open_without_keys() {
        assert!(KeyRing::new(&[])
            .admit(&HeaderMap::new(), Instant::now())
            .unwrap()
            .is_none());
    }

    #[test]
    fn missing_and_wrong_keys_are_401() {
        let r = ring();
        let now = Instant::now();
        assert_eq!(r.admit(&HeaderMap::new(), now).err().unwrap().status, 401);
        assert_eq!(r.admit(&bearer("sk-other"), now).err().unwrap().status, 401);
        assert!(r.admit(&bearer("sk-test"), now).unwrap().is_some());
    }

    #[test]
    fn rate_limit_then_spend_cap() {
        let r = ring();
        let t0 = Instant::now();
        let key = r.admit(&bearer("sk-test"), t0).unwrap().unwrap();
        r.admit(&bearer("sk-test"), t0).unwrap();
        let e = r
            .admit(&bearer("sk-test"), t0 + Duration::from_secs(1))
            .err()
            .unwrap();
        assert_eq!(e.status, 429);
        assert!(e.message.contains("2 requests per minute"), "{}", e.message);
        // A minute later the window has room again.
        r.admit(&bearer("sk-test"), t0 + Duration::from_secs(61))
            .unwrap();
        key.spend(100);
        let e = r
            .admit(&bearer("sk-test"), t0 + Duration::from_secs(200))
            .err()
            .unwrap();
        assert_eq!(e.status, 402);
        assert!(e.message.contains("spend cap"), "{}", e.message);
    }
}
