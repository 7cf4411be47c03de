//! Metrics every node serves (DESIGN §9): `/metrics` in the Prometheus text format with
//! closed label sets (role, model, outcome, token class, error code, window, peer, kind —
//! never request content or client identities) and a `rates` object in `/jsonstats`.
//!
//! - [`Encoder`]: the text format, label names from [`LABEL_NAMES`], values `&'static str`.
//! - [`DecayingRates`]: per-second rates over 1 s … 1 day (exponential decay; see `rates`).
//! - [`NodeMetrics`]: what every node counts about requests (outcome, tokens per class,
//!   error codes, time to first token, decode speed, duration, money), recorded through a
//!   [`Request`] guard so that every request ends in exactly one outcome (a dropped guard
//!   is an error with code `cancelled`: the caller went away). Hot-path cost: relaxed
//!   atomic adds and two clock reads per request; nothing per chunk but an `Option` check.
//! - model labels: [`intern`] / [`lookup`] (at most [`MAX_MODELS`], the rest "other").

mod histogram;
mod models;
mod rates;
#[cfg(test)]
mod tests;
mod text;

pub use histogram::{
    Histogram, HistogramSnapshot, DURATION_BOUNDS, TOKENS_PER_SECOND_BOUNDS, TTFT_BOUNDS,
};
pub use models::{
    intern, lookup, valid_model_label, ModelId, MAX_MODELS, MAX_MODEL_LABEL_BYTES, OTHER,
};
pub use rates::{decaying_mean, DecayingRates, Rates, Window, FOLD_INTERVAL, WINDOWS};
pub use text::{format_value, response, Encoder, Kind, Labels, CONTENT_TYPE, LABEL_NAMES};

use cocoon_proto::{ErrorCode, Usage};
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// Which node this is (`role` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Proxy,
    Worker,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Client, Role::Proxy, Role::Worker];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Proxy => "proxy",
            Role::Worker => "worker",
        }
    }

    /// The money this node's requests move: a client spends, a proxy earns its commission,
    /// a worker earns its fee.
    fn money(self) -> &'static str {
        match self {
            Role::Client => "spent_nanoton",
            Role::Proxy | Role::Worker => "earned_nanoton",
        }
    }
}

/// How a request ended (`outcome` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Admitted but failed: deadline, upstream or protocol failure, cancelled, internal.
    Error,
    /// Not admitted: invalid, unknown model, no capacity, overloaded, too expensive,
    /// insufficient funds, unauthorized.
    Refused,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Success, Outcome::Error, Outcome::Refused];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Error => "error",
            Outcome::Refused => "refused",
        }
    }

    /// The outcome of a request that failed with `code` (an `ErrorCode`).
    pub fn of_error(code: i32) -> Outcome {
        match ErrorCode::try_from(code).unwrap_or(ErrorCode::Unspecified) {
            ErrorCode::BadRequest
            | ErrorCode::UnknownModel
            | ErrorCode::NoCapacity
            | ErrorCode::InsufficientFunds
            | ErrorCode::TooExpensive
            | ErrorCode::Unauthorized
            | ErrorCode::Overloaded => Outcome::Refused,
            ErrorCode::Unspecified
            | ErrorCode::Deadline
            | ErrorCode::Upstream
            | ErrorCode::Protocol
            | ErrorCode::Internal
            | ErrorCode::Cancelled => Outcome::Error,
        }
    }
}

/// `code` label values, indexed by `ErrorCode` value.
pub const ERROR_CODES: [&str; 13] = [
    "unspecified",
    "bad_request",
    "unknown_model",
    "no_capacity",
    "deadline",
    "upstream",
    "insufficient_funds",
    "too_expensive",
    "protocol",
    "unauthorized",
    "internal",
    "cancelled",
    "overloaded",
];

fn code_index(code: i32) -> usize {
    usize::try_from(code)
        .ok()
        .filter(|c| *c < ERROR_CODES.len())
        .unwrap_or(0)
}

/// Token classes (`class` label). Engines report cached ⊆ prompt and reasoning ⊆
/// completion; the counters keep the engine's numbers as they are.
pub const TOKEN_CLASSES: [&str; 4] = ["prompt", "cached", "completion", "reasoning"];

fn usage_classes(u: &Usage) -> [u64; 4] {
    [
        u.prompt_tokens,
        u.cached_tokens,
        u.completion_tokens,
        u.reasoning_tokens,
    ]
}

/// `peer` label values (connected peers by kind).
pub const PEERS: [&str; 3] = ["client", "proxy", "worker"];

/// `kind` label values used by node-specific families (payment events).
pub const KINDS: &[&str] = &[
    "batch",
    "anchor",
    "charge",
    "payout",
    "refund",
    "chain_error",
    "db_error",
    "alarm",
    "refusal",
    "top_up",
    "self_charge",
];

/// Whether (`name`, `value`) belongs to the closed label sets (what tests check every
/// scraped sample against). `le` and `version` are written by the encoder and the build.
pub fn is_closed_label(name: &str, value: &str) -> bool {
    match name {
        "role" => Role::ALL.iter().any(|r| r.as_str() == value),
        "model" => value == OTHER || lookup(value) != ModelId::OTHER,
        "outcome" => Outcome::ALL.iter().any(|o| o.as_str() == value),
        "class" => TOKEN_CLASSES.contains(&value),
        "code" => ERROR_CODES.contains(&value),
        "window" => WINDOWS.iter().any(|w| w.label == value),
        "peer" => PEERS.contains(&value),
        "kind" => KINDS.contains(&value),
        "version" => value == env!("CARGO_PKG_VERSION"),
        "le" => value == "+Inf" || value.parse::<f64>().is_ok(),
        _ => false,
    }
}

// Rate series.
const R_REQUESTS: usize = 0;
const R_ERRORS: usize = 1;
const R_REFUSED: usize = 2;
const R_TOKENS: usize = 3; // … 4 classes: 3..=6
const R_MONEY: usize = 7;
const R_TTFT_SUM_US: usize = 8;
const R_TTFT_COUNT: usize = 9;
const R_TPS_SUM_MILLI: usize = 10;
const R_TPS_COUNT: usize = 11;
const R_SERIES: usize = 12;

/// Selects one of a model's histograms.
type PickHistogram = fn(&ModelStats) -> &Histogram;

#[derive(Debug)]
struct ModelStats {
    outcomes: [AtomicU64; 3],
    /// nanoTON spent (client) or earned (proxy, worker) on this model.
    money: AtomicU64,
    tokens: [AtomicU64; 4],
    ttft: Histogram,
    duration: Histogram,
    tokens_per_second: Histogram,
}

impl ModelStats {
    fn new() -> Self {
        ModelStats {
            outcomes: Default::default(),
            money: AtomicU64::new(0),
            tokens: Default::default(),
            ttft: Histogram::new(TTFT_BOUNDS),
            duration: Histogram::new(DURATION_BOUNDS),
            tokens_per_second: Histogram::new(TOKENS_PER_SECOND_BOUNDS),
        }
    }

    fn used(&self) -> bool {
        self.outcomes.iter().any(|o| o.load(Relaxed) > 0)
    }
}

/// Request metrics of one node. Share it in an `Arc`; start requests with
/// [`NodeMetrics::start`].
#[derive(Debug)]
pub struct NodeMetrics {
    role: Role,
    started: Instant,
    models: Box<[ModelStats]>,
    errors: [AtomicU64; ERROR_CODES.len()],
    money: AtomicU64,
    active: AtomicU64,
    rates: DecayingRates,
}

impl NodeMetrics {
    pub fn new(role: Role) -> Arc<Self> {
        Self::starting_at(role, Instant::now())
    }

    /// Metrics whose rate clock starts at `start` (tests).
    pub fn starting_at(role: Role, start: Instant) -> Arc<Self> {
        Arc::new(NodeMetrics {
            role,
            started: start,
            models: (0..=MAX_MODELS).map(|_| ModelStats::new()).collect(),
            errors: Default::default(),
            money: AtomicU64::new(0),
            active: AtomicU64::new(0),
            rates: DecayingRates::starting_at(R_SERIES, start),
        })
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// A request begins now. `stream`: the answer streams, so time to first token and
    /// decode speed can be measured (a non-streamed answer arrives all at once).
    pub fn start(self: &Arc<Self>, model: ModelId, stream: bool) -> Request {
        self.start_at(model, stream, Instant::now())
    }

    pub fn start_at(self: &Arc<Self>, model: ModelId, stream: bool, now: Instant) -> Request {
        self.active.fetch_add(1, Relaxed);
        Request {
            metrics: self.clone(),
            model,
            stream,
            start: now,
            first_token: None,
            done: false,
        }
    }

    /// nanoTON this node's requests moved (a client's spend, a proxy's commission, a
    /// worker's fee).
    pub fn add_money(&self, nanoton: u64) {
        self.add_money_at(nanoton, Instant::now());
    }

    /// [`add_money`](Self::add_money), also counted for `model` (dashboards show spend
    /// per model).
    pub fn add_money_for(&self, model: ModelId, nanoton: u64) {
        if let Some(m) = self.models.get(model.index()) {
            m.money.fetch_add(nanoton, Relaxed);
        }
        self.add_money(nanoton);
    }

    /// Money per model label, for models with any.
    pub fn money_by_model(&self) -> Map<String, Value> {
        self.models
            .iter()
            .enumerate()
            .filter(|(_, m)| m.money.load(Relaxed) > 0)
            .map(|(i, m)| {
                (
                    ModelId::from_index(i).label().to_string(),
                    json!(m.money.load(Relaxed)),
                )
            })
            .collect()
    }

    pub fn add_money_at(&self, nanoton: u64, now: Instant) {
        self.money.fetch_add(nanoton, Relaxed);
        self.rates.add_all_at(&[(R_MONEY, nanoton)], now);
    }

    /// Requests finished with `outcome`, over every model.
    pub fn requests(&self, outcome: Outcome) -> u64 {
        self.models
            .iter()
            .map(|m| m.outcomes[outcome as usize].load(Relaxed))
            .sum()
    }

    /// Tokens of class `class` (index into [`TOKEN_CLASSES`]) over every model.
    pub fn tokens(&self, class: usize) -> u64 {
        self.models
            .iter()
            .map(|m| m.tokens.get(class).map_or(0, |t| t.load(Relaxed)))
            .sum()
    }

    pub fn money(&self) -> u64 {
        self.money.load(Relaxed)
    }

    pub fn active(&self) -> u64 {
        self.active.load(Relaxed)
    }

    fn finish(&self, r: &Request, error: Option<i32>, usage: Option<&Usage>, now: Instant) {
        let m = &self.models[r.model.index().min(MAX_MODELS)];
        let outcome = error.map_or(Outcome::Success, Outcome::of_error);
        m.outcomes[outcome as usize].fetch_add(1, Relaxed);
        let mut rates = [(R_REQUESTS, 1u64); 12];
        let mut n = 1;
        let mut push = |series: usize, amount: u64| {
            rates[n] = (series, amount);
            n += 1;
        };
        match outcome {
            Outcome::Success => {}
            Outcome::Error => push(R_ERRORS, 1),
            Outcome::Refused => push(R_REFUSED, 1),
        }
        if let Some(code) = error {
            self.errors[code_index(code)].fetch_add(1, Relaxed);
        }
        if let Some(u) = usage {
            for (i, amount) in usage_classes(u).into_iter().enumerate() {
                m.tokens[i].fetch_add(amount, Relaxed);
                push(R_TOKENS + i, amount);
            }
        }
        if let (true, Some(first)) = (r.stream, r.first_token) {
            let ttft = first.saturating_duration_since(r.start);
            m.ttft.observe(ttft.as_secs_f64());
            push(
                R_TTFT_SUM_US,
                u64::try_from(ttft.as_micros()).unwrap_or(u64::MAX),
            );
            push(R_TTFT_COUNT, 1);
            // Decode speed: tokens after the first over the time after the first.
            let completion = usage.map_or(0, |u| u.completion_tokens);
            let decode = now.saturating_duration_since(first).as_secs_f64();
            if error.is_none() && completion > 1 && decode > 0.0 {
                let tps = (completion - 1) as f64 / decode;
                m.tokens_per_second.observe(tps);
                push(R_TPS_SUM_MILLI, (tps * 1000.0) as u64);
                push(R_TPS_COUNT, 1);
            }
        }
        if error.is_none() {
            m.duration
                .observe(now.saturating_duration_since(r.start).as_secs_f64());
        }
        self.rates.add_all_at(&rates[..n], now);
    }

    fn rate_values_at(&self, now: Instant) -> Vec<Rates> {
        self.rates.rates_at(now)
    }

    /// The `rates` object of `/jsonstats`: per-second rates (averages for latency and
    /// decode speed, `null` while a window has seen nothing) keyed by window.
    pub fn rates_json(&self) -> Value {
        self.rates_json_at(Instant::now())
    }

    pub fn rates_json_at(&self, now: Instant) -> Value {
        let r = self.rate_values_at(now);
        let windows = |values: &Rates| -> Value {
            let map: Map<String, Value> = WINDOWS
                .iter()
                .zip(values)
                .map(|(w, v)| (w.label.to_string(), json!(v)))
                .collect();
            Value::Object(map)
        };
        let means = |values: [Option<f64>; WINDOWS.len()]| -> Value {
            let map: Map<String, Value> = WINDOWS
                .iter()
                .zip(values)
                .map(|(w, v)| (w.label.to_string(), json!(v)))
                .collect();
            Value::Object(map)
        };
        let tokens: Map<String, Value> = TOKEN_CLASSES
            .iter()
            .enumerate()
            .map(|(i, c)| (c.to_string(), windows(&r[R_TOKENS + i])))
            .collect();
        let mut out = Map::new();
        out.insert("requests_per_second".into(), windows(&r[R_REQUESTS]));
        out.insert("errors_per_second".into(), windows(&r[R_ERRORS]));
        out.insert("refused_per_second".into(), windows(&r[R_REFUSED]));
        out.insert("tokens_per_second".into(), Value::Object(tokens));
        out.insert(
            format!("{}_per_second", self.role.money()),
            windows(&r[R_MONEY]),
        );
        out.insert(
            "time_to_first_token_seconds".into(),
            means(decaying_mean(&r[R_TTFT_SUM_US], &r[R_TTFT_COUNT], 1e6)),
        );
        out.insert(
            "decode_tokens_per_second".into(),
            means(decaying_mean(&r[R_TPS_SUM_MILLI], &r[R_TPS_COUNT], 1e3)),
        );
        Value::Object(out)
    }

    /// Totals for `/jsonstats` (`metrics`): requests by outcome, tokens by class, errors by
    /// code, money, active requests.
    pub fn totals_json(&self) -> Value {
        let outcomes: Map<String, Value> = Outcome::ALL
            .iter()
            .map(|o| (o.as_str().to_string(), json!(self.requests(*o))))
            .collect();
        let tokens: Map<String, Value> = TOKEN_CLASSES
            .iter()
            .enumerate()
            .map(|(i, c)| (c.to_string(), json!(self.tokens(i))))
            .collect();
        let errors: Map<String, Value> = ERROR_CODES
            .iter()
            .zip(&self.errors)
            .filter(|(_, n)| n.load(Relaxed) > 0)
            .map(|(c, n)| (c.to_string(), json!(n.load(Relaxed))))
            .collect();
        json!({
            "requests": outcomes,
            "tokens": tokens,
            "errors": errors,
            self.role.money(): self.money(),
            "by_model": {self.role.money(): self.money_by_model()},
            "active_requests": self.active(),
        })
    }

    /// Writes the families every node has; the node adds its own after.
    pub fn render(&self, enc: &mut Encoder) {
        self.render_at(enc, Instant::now());
    }

    pub fn render_at(&self, enc: &mut Encoder, now: Instant) {
        let role = ("role", self.role.as_str());
        enc.family("cocoon_info", Kind::Gauge, "Build of this node (always 1).")
            .int(&[role, ("version", env!("CARGO_PKG_VERSION"))], 1);
        enc.family(
            "cocoon_uptime_seconds",
            Kind::Gauge,
            "Seconds since this node started.",
        )
        .float(
            &[role],
            now.saturating_duration_since(self.started).as_secs_f64(),
        );
        enc.family(
            "cocoon_active_requests",
            Kind::Gauge,
            "Requests in flight at this node.",
        )
        .int(&[role], self.active());
        let used: Vec<(ModelId, &ModelStats)> = self
            .models
            .iter()
            .enumerate()
            .filter(|(_, m)| m.used())
            .map(|(i, m)| (ModelId::from_index(i), m))
            .collect();
        enc.family(
            "cocoon_requests_total",
            Kind::Counter,
            "Finished requests by model and outcome (success, error, refused).",
        );
        for (id, m) in &used {
            for o in Outcome::ALL {
                enc.int(
                    &[role, ("model", id.label()), ("outcome", o.as_str())],
                    m.outcomes[o as usize].load(Relaxed),
                );
            }
        }
        enc.family(
            "cocoon_errors_total",
            Kind::Counter,
            "Requests that did not succeed, by error code (refusals included).",
        );
        for (code, n) in ERROR_CODES.iter().zip(&self.errors) {
            enc.int(&[role, ("code", code)], n.load(Relaxed));
        }
        enc.family(
            "cocoon_tokens_total",
            Kind::Counter,
            "Tokens by model and class as the engine reported them (cached is part of prompt, reasoning part of completion).",
        );
        for (id, m) in &used {
            if m.tokens.iter().all(|t| t.load(Relaxed) == 0) {
                continue; // e.g. "other": requests for unknown models carry no usage
            }
            for (i, class) in TOKEN_CLASSES.iter().enumerate() {
                enc.int(
                    &[role, ("model", id.label()), ("class", class)],
                    m.tokens[i].load(Relaxed),
                );
            }
        }
        let (money_total, money_rate, money_help, money_rate_help) = match self.role {
            Role::Client => (
                "cocoon_spent_nanoton_total",
                "cocoon_spent_nanoton_rate",
                "nanoTON spent on requests (sum of usage.total_cost).",
                "nanoTON spent per second, decaying over the window.",
            ),
            Role::Proxy => (
                "cocoon_earned_nanoton_total",
                "cocoon_earned_nanoton_rate",
                "Commission earned on billed requests, nanoTON (billed minus the workers' fee).",
                "Commission per second, decaying over the window.",
            ),
            Role::Worker => (
                "cocoon_earned_nanoton_total",
                "cocoon_earned_nanoton_rate",
                "Fee earned, nanoTON: growth of proxy-signed payout vouchers times the worker fee.",
                "Fee earned per second, decaying over the window.",
            ),
        };
        enc.family(money_total, Kind::Counter, money_help)
            .int(&[role], self.money());
        let histograms: [(&'static str, &'static str, PickHistogram); 3] = [
            (
                "cocoon_time_to_first_token_seconds",
                "Time from the request to the first answer chunk (streamed requests).",
                |m| &m.ttft,
            ),
            (
                "cocoon_decode_tokens_per_second",
                "Completion tokens per second after the first chunk (streamed requests that succeeded).",
                |m| &m.tokens_per_second,
            ),
            (
                "cocoon_request_duration_seconds",
                "Whole request, successful requests.",
                |m| &m.duration,
            ),
        ];
        for (name, help, pick) in histograms {
            enc.family(name, Kind::Histogram, help);
            for (id, m) in &used {
                let s = pick(m).snapshot();
                if s.count() == 0 {
                    continue;
                }
                enc.histogram(&[role, ("model", id.label())], s.bounds, &s.counts, s.sum);
            }
        }
        let r = self.rate_values_at(now);
        let simple: [(&'static str, &'static str, usize); 4] = [
            (
                "cocoon_requests_rate",
                "Finished requests per second, decaying over the window.",
                R_REQUESTS,
            ),
            (
                "cocoon_errors_rate",
                "Failed (outcome error) requests per second, decaying over the window.",
                R_ERRORS,
            ),
            (
                "cocoon_refused_rate",
                "Refused requests per second, decaying over the window.",
                R_REFUSED,
            ),
            (money_rate, money_rate_help, R_MONEY),
        ];
        for (name, help, series) in simple {
            enc.family(name, Kind::Gauge, help);
            for (w, v) in WINDOWS.iter().zip(r[series]) {
                enc.float(&[role, ("window", w.label)], v);
            }
        }
        enc.family(
            "cocoon_tokens_rate",
            Kind::Gauge,
            "Tokens per second by class, decaying over the window.",
        );
        for (i, class) in TOKEN_CLASSES.iter().enumerate() {
            for (w, v) in WINDOWS.iter().zip(r[R_TOKENS + i]) {
                enc.float(&[role, ("class", class), ("window", w.label)], v);
            }
        }
        let means: [(&'static str, &'static str, usize, usize, f64); 2] = [
            (
                "cocoon_time_to_first_token_seconds_avg",
                "Mean time to first token, decaying over the window (absent while the window saw none).",
                R_TTFT_SUM_US,
                R_TTFT_COUNT,
                1e6,
            ),
            (
                "cocoon_decode_tokens_per_second_avg",
                "Mean decode speed, decaying over the window (absent while the window saw none).",
                R_TPS_SUM_MILLI,
                R_TPS_COUNT,
                1e3,
            ),
        ];
        for (name, help, sum, count, scale) in means {
            enc.family(name, Kind::Gauge, help);
            for (w, v) in WINDOWS.iter().zip(decaying_mean(&r[sum], &r[count], scale)) {
                if let Some(v) = v {
                    enc.float(&[role, ("window", w.label)], v);
                }
            }
        }
    }
}

/// One request in flight. Finish it with [`Request::succeed`] or [`Request::fail`];
/// dropped unfinished (the caller went away) it counts as an error with code `cancelled`.
#[derive(Debug)]
pub struct Request {
    metrics: Arc<NodeMetrics>,
    model: ModelId,
    stream: bool,
    start: Instant,
    first_token: Option<Instant>,
    done: bool,
}

impl Request {
    pub fn set_model(&mut self, model: ModelId) {
        self.model = model;
    }

    pub fn set_stream(&mut self, stream: bool) {
        self.stream = stream;
    }

    pub fn model(&self) -> ModelId {
        self.model
    }

    /// The first answer chunk is here (later calls are no-ops).
    pub fn first_token(&mut self) {
        if self.first_token.is_none() {
            self.first_token = Some(Instant::now());
        }
    }

    pub fn first_token_at(&mut self, now: Instant) {
        self.first_token.get_or_insert(now);
    }

    pub fn succeed(self, usage: Option<&Usage>) {
        self.succeed_at(usage, Instant::now());
    }

    pub fn succeed_at(mut self, usage: Option<&Usage>, now: Instant) {
        self.done = true;
        self.metrics.finish(&self, None, usage, now);
    }

    /// Failed with `code` (an `ErrorCode`): refused or error by [`Outcome::of_error`].
    pub fn fail(self, code: i32) {
        self.fail_at(code, Instant::now());
    }

    pub fn fail_at(mut self, code: i32, now: Instant) {
        self.done = true;
        self.metrics.finish(&self, Some(code), None, now);
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if !self.done {
            self.metrics.finish(
                self,
                Some(ErrorCode::Cancelled as i32),
                None,
                Instant::now(),
            );
        }
        self.metrics.active.fetch_sub(1, Relaxed);
    }
}
