//! A TON HTTP API client (toncenter v2 REST, also served by other providers): account state,
//! get-methods, transactions, and sending messages.
//!
//! Every call is paced (public endpoints allow about 1 request/s without a key, 10 with one),
//! retried with exponential backoff on connection failures, timeouts, 5xx and 429 (honouring
//! `Retry-After`), bounded in time and in response size, and its errors name the endpoint.
//! Sending a message is safe to retry: the same signed external message is the same message
//! (its wallet seqno and expiry make a second delivery a no-op).

use crate::TonError;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;
use tonlib_core::TonAddress;

/// Largest response body read.
const MAX_RESPONSE_BYTES: usize = 8 << 20;
/// Longest wait a server's `Retry-After` may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// e.g. `https://toncenter.com/api/v2` or `https://testnet.toncenter.com/api/v2`.
    pub base_url: String,
    /// Sent as `X-API-Key`.
    pub api_key: Option<String>,
    /// Requests per second this client allows itself.
    pub requests_per_second: f64,
    /// Tries per call (the first included).
    pub max_attempts: u32,
    /// First backoff; doubles per retry, up to 8 s.
    pub backoff: Duration,
    /// Bound on one HTTP exchange.
    pub timeout: Duration,
}

impl ApiConfig {
    pub fn new(base_url: &str, api_key: Option<String>) -> Self {
        ApiConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            requests_per_second: if api_key.is_some() { 10.0 } else { 1.0 },
            api_key,
            max_attempts: 5,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(15),
        }
    }
}

/// An account's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountInfo {
    /// nanoTON.
    pub balance: u128,
    pub status: AccountStatus,
    /// Code and data BOCs (empty when not active).
    pub code: Vec<u8>,
    pub data: Vec<u8>,
    pub last_transaction: Option<TxId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountStatus {
    Active,
    Uninitialized,
    Frozen,
}

/// A transaction's logical time and hash (base64, as the API gives it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxId {
    pub lt: u64,
    pub hash: String,
}

/// One value of a get-method's result stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StackValue {
    /// Integers up to 257 bits, as decimal text when they exceed i128.
    Int(i128),
    BigInt(String),
    /// A cell or slice, as its BOC.
    Cell(Vec<u8>),
    /// Tuples, lists, null: passed on as the API sent them.
    Other(Value),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetMethodResult {
    pub exit_code: i32,
    pub gas_used: u64,
    pub stack: Vec<StackValue>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub id: TxId,
    pub utime: u64,
    /// Total fees in nanoTON.
    pub fee: u64,
    pub in_msg: Option<TxMessage>,
    pub out_msgs: Vec<TxMessage>,
    /// The transaction's own BOC (`tx::outcome` reads whether the contract accepted).
    pub data: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxMessage {
    /// As the API writes them (user-friendly form; empty for external).
    pub source: String,
    pub destination: String,
    pub value: u64,
    /// The body's BOC, when the API included it.
    pub body: Option<Vec<u8>>,
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    code: Option<u16>,
}

#[derive(Debug)]
pub struct TonApi {
    config: ApiConfig,
    http: reqwest::Client,
    /// When the next request may leave (pacing).
    next_slot: tokio::sync::Mutex<Instant>,
}

/// How one attempt ended.
enum Attempt {
    Done(Value),
    /// Worth another try, after at least this long.
    Retry(String, Option<Duration>),
    Fail(String),
}

impl TonApi {
    pub fn new(config: ApiConfig) -> Result<Self, TonError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| TonError::Api {
                url: config.base_url.clone(),
                message: e.to_string(),
            })?;
        Ok(TonApi {
            config,
            http,
            next_slot: tokio::sync::Mutex::new(Instant::now()),
        })
    }

    fn error(&self, message: impl Into<String>) -> TonError {
        TonError::Api {
            url: self.config.base_url.clone(),
            message: message.into(),
        }
    }

    /// Waits for this request's slot under the rate limit.
    async fn pace(&self) {
        let interval = Duration::from_secs_f64(1.0 / self.config.requests_per_second.max(0.01));
        let mut next = self.next_slot.lock().await;
        let now = Instant::now();
        let at = (*next).max(now);
        *next = at + interval;
        drop(next);
        tokio::time::sleep_until(at).await;
    }

    /// `GET {base}/{method}?query` or `POST {base}/{method}` with a JSON body; the `result`.
    async fn call(
        &self,
        method: &str,
        query: &[(&str, String)],
        post: Option<Value>,
    ) -> Result<Value, TonError> {
        let url = format!("{}/{method}", self.config.base_url);
        let mut backoff = self.config.backoff;
        let mut last = String::new();
        let mut rate_limited = 0;
        for attempt in 1..=self.config.max_attempts.max(1) {
            self.pace().await;
            let mut request = match &post {
                Some(body) => self.http.post(&url).json(body),
                None => {
                    let with_query = reqwest::Url::parse_with_params(&url, query)
                        .map_err(|e| self.error(format!("{method}: bad URL: {e}")))?;
                    self.http.get(with_query)
                }
            };
            if let Some(key) = &self.config.api_key {
                request = request.header("X-API-Key", key);
            }
            let outcome = match request.send().await {
                Err(e) => Attempt::Retry(format!("request failed: {e}"), None),
                Ok(response) => self.read(response).await,
            };
            match outcome {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(message) => return Err(self.error(format!("{method}: {message}"))),
                Attempt::Retry(message, wait) => {
                    if message.contains("429") {
                        rate_limited += 1;
                    }
                    tracing::debug!(method, attempt, "TON API call failed, retrying: {message}");
                    last = message;
                    if attempt < self.config.max_attempts {
                        tokio::time::sleep(wait.unwrap_or(backoff)).await;
                        backoff = (backoff * 2).min(Duration::from_secs(8));
                    }
                }
            }
        }
        if rate_limited == self.config.max_attempts {
            return Err(TonError::RateLimited {
                url: self.config.base_url.clone(),
                attempts: rate_limited,
            });
        }
        Err(self.error(format!(
            "{method}: failed after {} attempts: {last}",
            self.config.max_attempts
        )))
    }

    async fn read(&self, mut response: reqwest::Response) -> Attempt {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Attempt::Fail(format!(
                            "response larger than {MAX_RESPONSE_BYTES} bytes"
                        ));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Attempt::Retry(format!("reading the response: {e}"), None),
            }
        }
        let envelope = serde_json::from_slice::<Envelope>(&body).ok();
        let message = envelope
            .as_ref()
            .and_then(|e| e.error.clone())
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
        let code = envelope.as_ref().and_then(|e| e.code);
        if status.as_u16() == 429 || code == Some(429) {
            return Attempt::Retry(format!("HTTP 429: {message}"), retry_after);
        }
        if status.is_server_error() || code.is_some_and(|c| c >= 500) {
            return Attempt::Retry(format!("HTTP {}: {message}", status.as_u16()), retry_after);
        }
        match envelope {
            Some(Envelope {
                ok: true,
                result: Some(result),
                ..
            }) if status.is_success() => Attempt::Done(result),
            _ => Attempt::Fail(format!("HTTP {}: {message}", status.as_u16())),
        }
    }

    fn parse<T: DeserializeOwned>(&self, what: &str, v: Value) -> Result<T, TonError> {
        serde_json::from_value(v)
            .map_err(|e| self.error(format!("{what}: unexpected response: {e}")))
    }

    /// Balance, status, code and data of an account.
    pub async fn account(&self, address: &TonAddress) -> Result<AccountInfo, TonError> {
        #[derive(Deserialize)]
        struct Raw {
            balance: NumText,
            #[serde(default)]
            code: String,
            #[serde(default)]
            data: String,
            #[serde(default)]
            state: String,
            #[serde(default)]
            last_transaction_id: Option<RawTxId>,
        }
        let v = self
            .call(
                "getAddressInformation",
                &[("address", address.to_hex())],
                None,
            )
            .await?;
        let raw: Raw = self.parse("getAddressInformation", v)?;
        let status = match raw.state.as_str() {
            "active" => AccountStatus::Active,
            "frozen" => AccountStatus::Frozen,
            _ => AccountStatus::Uninitialized,
        };
        Ok(AccountInfo {
            balance: raw
                .balance
                .0
                .parse()
                .map_err(|_| self.error("balance is not a number"))?,
            status,
            code: self.base64(&raw.code)?,
            data: self.base64(&raw.data)?,
            last_transaction: raw
                .last_transaction_id
                .and_then(|t| t.into_id().filter(|id| id.lt > 0)),
        })
    }

    /// Runs a get-method with integer arguments.
    pub async fn run_get_method(
        &self,
        address: &TonAddress,
        method: &str,
        args: &[i128],
    ) -> Result<GetMethodResult, TonError> {
        #[derive(Deserialize)]
        struct Raw {
            exit_code: i32,
            #[serde(default)]
            gas_used: u64,
            #[serde(default)]
            stack: Vec<Value>,
        }
        let stack: Vec<Value> = args
            .iter()
            .map(|a| json!(["num", format!("{a}")]))
            .collect();
        let body = json!({"address": address.to_hex(), "method": method, "stack": stack});
        let v = self.call("runGetMethod", &[], Some(body)).await?;
        let raw: Raw = self.parse("runGetMethod", v)?;
        let stack = raw
            .stack
            .into_iter()
            .map(|entry| self.stack_value(entry))
            .collect::<Result<_, _>>()?;
        Ok(GetMethodResult {
            exit_code: raw.exit_code,
            gas_used: raw.gas_used,
            stack,
        })
    }

    fn stack_value(&self, entry: Value) -> Result<StackValue, TonError> {
        let (kind, value) = match entry.as_array().map(Vec::as_slice) {
            Some([Value::String(kind), value]) => (kind.clone(), value.clone()),
            _ => return Ok(StackValue::Other(entry)),
        };
        Ok(match (kind.as_str(), &value) {
            ("num", Value::String(text)) => {
                let (negative, digits) = match text.strip_prefix('-') {
                    Some(d) => (true, d),
                    None => (false, text.as_str()),
                };
                let parsed = match digits.strip_prefix("0x") {
                    Some(hex) => i128::from_str_radix(hex, 16).ok(),
                    None => digits.parse::<i128>().ok(),
                };
                match parsed {
                    Some(n) if negative => StackValue::Int(-n),
                    Some(n) => StackValue::Int(n),
                    None => StackValue::BigInt(text.clone()),
                }
            }
            ("cell" | "slice", Value::Object(o)) => match o.get("bytes") {
                Some(Value::String(b)) => StackValue::Cell(self.base64(b)?),
                _ => StackValue::Other(value),
            },
            _ => StackValue::Other(json!([kind, value])),
        })
    }

    /// Sends a signed external message (BOC); returns its hash as the API reports it.
    pub async fn send_boc(&self, boc: &[u8]) -> Result<String, TonError> {
        let body = json!({"boc": base64::engine::general_purpose::STANDARD.encode(boc)});
        let v = self.call("sendBocReturnHash", &[], Some(body)).await?;
        Ok(v.get("hash")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// The last masterchain block's seqno, and the network's time when the endpoint says it
    /// (a local sandbox does; toncenter does not).
    pub async fn masterchain(&self) -> Result<(u64, Option<u64>), TonError> {
        #[derive(Deserialize)]
        struct Last {
            seqno: u64,
        }
        #[derive(Deserialize)]
        struct Raw {
            last: Last,
            #[serde(default)]
            utime: Option<u64>,
        }
        let v = self.call("getMasterchainInfo", &[], None).await?;
        let raw: Raw = self.parse("getMasterchainInfo", v)?;
        Ok((raw.last.seqno, raw.utime))
    }

    /// Up to `limit` transactions of an account, newest first, from `before` (inclusive) back.
    pub async fn transactions(
        &self,
        address: &TonAddress,
        limit: u32,
        before: Option<&TxId>,
    ) -> Result<Vec<Transaction>, TonError> {
        let mut query = vec![
            ("address", address.to_hex()),
            ("limit", limit.clamp(1, 100).to_string()),
            ("archival", "true".to_string()),
        ];
        if let Some(id) = before {
            query.push(("lt", id.lt.to_string()));
            query.push(("hash", id.hash.clone()));
        }
        let v = self.call("getTransactions", &query, None).await?;
        let raw: Vec<RawTransaction> = self.parse("getTransactions", v)?;
        raw.into_iter().map(|t| self.transaction(t)).collect()
    }

    fn transaction(&self, t: RawTransaction) -> Result<Transaction, TonError> {
        let id = t
            .transaction_id
            .into_id()
            .ok_or_else(|| self.error("transaction without an id"))?;
        let message = |m: RawMessage| -> Result<TxMessage, TonError> {
            let body = match m.msg_data.and_then(|d| d.body) {
                Some(b) if !b.is_empty() => Some(self.base64(&b)?),
                _ => None,
            };
            Ok(TxMessage {
                source: m.source,
                destination: m.destination,
                value: m.value.0.parse().unwrap_or(0),
                body,
            })
        };
        Ok(Transaction {
            id,
            utime: t.utime,
            fee: t.fee.0.parse().unwrap_or(0),
            in_msg: t.in_msg.map(message).transpose()?,
            out_msgs: t
                .out_msgs
                .into_iter()
                .map(message)
                .collect::<Result<_, _>>()?,
            data: match t.data.as_str() {
                "" => None,
                d => Some(self.base64(d)?),
            },
        })
    }

    fn base64(&self, s: &str) -> Result<Vec<u8>, TonError> {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| self.error(format!("bad base64 from the API: {e}")))
    }
}

/// A number the API writes as a string (or, sometimes, as a JSON number).
#[derive(Deserialize, Default)]
#[serde(try_from = "Value")]
struct NumText(String);

impl TryFrom<Value> for NumText {
    type Error = String;

    fn try_from(v: Value) -> Result<Self, String> {
        match v {
            Value::String(s) => Ok(NumText(s)),
            Value::Number(n) => Ok(NumText(n.to_string())),
            other => Err(format!("expected a number, got {other}")),
        }
    }
}

#[derive(Deserialize)]
struct RawTxId {
    lt: NumText,
    #[serde(default)]
    hash: String,
}

impl RawTxId {
    fn into_id(self) -> Option<TxId> {
        Some(TxId {
            lt: self.lt.0.parse().ok()?,
            hash: self.hash,
        })
    }
}

#[derive(Deserialize)]
struct RawTransaction {
    #[serde(default)]
    utime: u64,
    transaction_id: RawTxId,
    #[serde(default)]
    fee: NumText,
    #[serde(default)]
    in_msg: Option<RawMessage>,
    #[serde(default)]
    out_msgs: Vec<RawMessage>,
    #[serde(default)]
    data: String,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    source: String,
    #[serde(default)]
    destination: String,
    #[serde(default)]
    value: NumText,
    #[serde(default)]
    msg_data: Option<RawMsgData>,
}

#[derive(Deserialize)]
struct RawMsgData {
    #[serde(default)]
    body: Option<String>,
}
