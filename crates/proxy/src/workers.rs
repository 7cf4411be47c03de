//! The proxy's table of worker links and the choice of a worker for a request.

use crate::routing::{self, Outcome, Perf, RoutingConfig, Scored};
use cocoon_proto::{worker_link_client::WorkerLinkClient, ErrorCode, HardwareProfile, ModelInfo};
use rand::Rng;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// How long a model that lost all its workers is still reported as "busy" (503) rather
/// than "unknown" (404).
const MODEL_MEMORY: Duration = Duration::from_secs(600);

/// One worker link as the proxy sees it.
pub(crate) struct WorkerEntry {
    pub id: u64,
    pub name: String,
    pub owner: String,
    /// The worker contract earnings are credited to (None when payments are off).
    pub contract: Option<cocoon_ledger::Address>,
    pub model_id: String,
    pub base_model: String,
    pub hardware: HardwareProfile,
    pub max_active: u32,
    pub coefficient: AtomicU32,
    pub enabled: AtomicBool,
    pub active: AtomicU32,
    pub served: AtomicU64,
    pub failed: AtomicU64,
    pub client: WorkerLinkClient<Channel>,
    /// Measured speed, reputation and breaker (see `routing`).
    pub perf: Mutex<Perf>,
}

impl WorkerEntry {
    pub fn perf(&self) -> std::sync::MutexGuard<'_, Perf> {
        self.perf.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Holds a request slot on a worker; released on drop, however the request ends.
pub(crate) struct Slot(pub Arc<WorkerEntry>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Decisions kept for `/jsonstats`.
const DECISIONS_KEPT: usize = 16;

/// One routing decision with every input, for `/jsonstats`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Decision {
    pub model: String,
    pub candidates: Vec<Scored>,
    pub picked: u64,
    pub explored: bool,
}

pub(crate) struct WorkerTable {
    entries: RwLock<HashMap<u64, Arc<WorkerEntry>>>,
    seen_models: Mutex<HashMap<String, Instant>>,
    pub routing: RoutingConfig,
    decisions: Mutex<VecDeque<Decision>>,
    /// Until when, after a restart, workers are still reconnecting: an unseen model is then
    /// "busy" (retryable 503), not "unknown" (404). None for a fresh proxy.
    reconnect_until: Option<Instant>,
}

/// How long after start an unseen model counts as reconnecting rather than unknown.
const RECONNECT_GRACE: Duration = Duration::from_secs(30);

/// Why no worker could be chosen, as the app will see it.
pub(crate) struct NoWorker {
    pub code: ErrorCode,
    pub message: String,
}

impl WorkerTable {
    /// `restarted`: this proxy had served before (its DB says so), so its workers will be back.
    pub fn new(routing: RoutingConfig, restarted: bool) -> Self {
        WorkerTable {
            entries: Default::default(),
            seen_models: Default::default(),
            routing,
            decisions: Default::default(),
            reconnect_until: restarted.then(|| Instant::now() + RECONNECT_GRACE),
        }
    }

    pub fn insert(&self, entry: Arc<WorkerEntry>) {
        self.remember_model(&entry.base_model);
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(entry.id, entry);
    }

    pub fn remove(&self, id: u64) {
        let removed = self
            .entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(e) = removed {
            self.remember_model(&e.base_model);
        }
    }

    fn remember_model(&self, model: &str) {
        let mut seen = self.seen_models.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, t| t.elapsed() < MODEL_MEMORY);
        seen.insert(model.to_string(), Instant::now());
    }

    fn snapshot(&self) -> Vec<Arc<WorkerEntry>> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Picks the least-loaded eligible worker (random among equals) and takes a slot on it.
    pub fn choose(
        &self,
        model: &str,
        max_coefficient: u32,
        exclude: &[u64],
    ) -> Result<Slot, NoWorker> {
        let all: Vec<_> = self
            .snapshot()
            .into_iter()
            .filter(|w| w.base_model == model)
            .collect();
        if all.is_empty() {
            let recently = self
                .seen_models
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(model)
                .is_some_and(|t| t.elapsed() < MODEL_MEMORY);
            if !recently && self.reconnect_until.is_some_and(|t| Instant::now() < t) {
                return Err(NoWorker {
                    code: ErrorCode::NoCapacity,
                    message: format!(
                        "no worker for model {model:?} yet: this proxy just started and \
                         workers are reconnecting"
                    ),
                });
            }
            return Err(if recently {
                NoWorker {
                    code: ErrorCode::NoCapacity,
                    message: format!("no worker for model {model:?} is connected right now"),
                }
            } else {
                NoWorker {
                    code: ErrorCode::UnknownModel,
                    message: format!("model {model:?} is not served by this network"),
                }
            });
        }
        let enabled: Vec<_> = all
            .into_iter()
            .filter(|w| w.enabled.load(Ordering::Relaxed) && !exclude.contains(&w.id))
            .collect();
        if enabled.is_empty() {
            return Err(NoWorker {
                code: ErrorCode::NoCapacity,
                message: format!("no worker for model {model:?} is ready (none enabled)"),
            });
        }
        let cheapest = enabled
            .iter()
            .map(|w| w.coefficient.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0);
        if cheapest > max_coefficient {
            return Err(NoWorker {
                code: ErrorCode::TooExpensive,
                message: format!(
                    "every worker for model {model:?} costs more than max_coefficient {max_coefficient}; \
                     the cheapest needs max_coefficient >= {cheapest}"
                ),
            });
        }
        // Read each worker's load once: other requests change it concurrently, and two reads
        // could leave no worker at the minimum (a false "all busy").
        let now = Instant::now();
        let free: Vec<_> = enabled
            .into_iter()
            .filter(|w| w.coefficient.load(Ordering::Relaxed) <= max_coefficient)
            .filter_map(|w| {
                let active = w.active.load(Ordering::Relaxed);
                (active < w.max_active).then_some((active, w))
            })
            .collect();
        if free.is_empty() {
            return Err(NoWorker {
                code: ErrorCode::Overloaded,
                message: format!("all workers for model {model:?} are busy"),
            });
        }
        let ready: Vec<_> = free
            .iter()
            .filter(|(_, w)| w.perf().available(now))
            .cloned()
            .collect();
        if ready.is_empty() {
            let wait = free
                .iter()
                .map(|(_, w)| w.perf().cooldown_left(now))
                .min()
                .unwrap_or_default();
            return Err(NoWorker {
                code: ErrorCode::NoCapacity,
                message: format!(
                    "every worker for model {model:?} is cooling down after failures; \
                     the next is probed in {} s",
                    wait.as_secs().max(1)
                ),
            });
        }
        // One worker lock at a time (never two at once: no lock-order deadlocks).
        let fallback = routing::fallback(ready.iter().map(|(_, w)| {
            let p = w.perf();
            (p.ttft_ms, p.tokens_per_s)
        }));
        let scored: Vec<Scored> = ready
            .iter()
            .map(|(active, w)| {
                let perf = w.perf();
                let reputation = perf.reputation(now, self.routing.reputation_half_life);
                routing::score(
                    w.id,
                    &perf,
                    reputation,
                    *active,
                    w.coefficient.load(Ordering::Relaxed),
                    fallback,
                )
            })
            .collect();
        let mut rng = rand::thread_rng();
        let explored = ready.len() > 1 && rng.gen_bool(routing::EXPLORE);
        let probe = (0..ready.len()).find(|&i| ready[i].1.perf().wants_probe(now));
        let order: Vec<usize> = if let Some(i) = probe {
            vec![i]
        } else if explored {
            vec![rng.gen_range(0..ready.len())]
        } else {
            // Random among the ties, so idle traffic spreads instead of pinning one worker.
            let ties = routing::ties(&scored);
            vec![ties[rng.gen_range(0..ties.len())]]
        };
        // A half-open worker takes one probe at a time: another request may have just taken
        // it, in which case the best other ready worker serves.
        let mut by_score: Vec<usize> = (0..ready.len()).collect();
        by_score.sort_by(|a, b| scored[*a].score.total_cmp(&scored[*b].score));
        for i in order.into_iter().chain(by_score) {
            let w = &ready[i].1;
            if !w.perf().admit(now) {
                continue;
            }
            w.active.fetch_add(1, Ordering::Relaxed);
            self.remember_decision(Decision {
                model: model.to_string(),
                picked: w.id,
                explored,
                candidates: scored,
            });
            return Ok(Slot(w.clone()));
        }
        Err(NoWorker {
            code: ErrorCode::NoCapacity,
            message: format!("every worker for model {model:?} is cooling down after failures"),
        })
    }

    fn remember_decision(&self, d: Decision) {
        let mut all = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
        if all.len() == DECISIONS_KEPT {
            all.pop_front();
        }
        all.push_back(d);
    }

    /// The last routing decisions, newest last.
    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Records how a request on `worker` went (speed, reputation, breaker).
    pub fn record(&self, worker: &WorkerEntry, outcome: Outcome) {
        worker.perf().record(outcome, Instant::now(), &self.routing);
    }

    /// `/v1/models` data: per base model, live counts and coefficient range.
    pub fn models(&self) -> Vec<ModelInfo> {
        let mut by_model: HashMap<String, ModelInfo> = HashMap::new();
        for w in self.snapshot() {
            let info = by_model
                .entry(w.base_model.clone())
                .or_insert_with(|| ModelInfo {
                    name: w.base_model.clone(),
                    min_coefficient: u32::MAX,
                    ..Default::default()
                });
            if !info.model_ids.contains(&w.model_id) {
                info.model_ids.push(w.model_id.clone());
            }
            if w.enabled.load(Ordering::Relaxed) {
                let c = w.coefficient.load(Ordering::Relaxed);
                info.workers += 1;
                info.min_coefficient = info.min_coefficient.min(c);
                info.max_coefficient = info.max_coefficient.max(c);
                info.running_requests += w.active.load(Ordering::Relaxed);
                info.max_running_requests += w.max_active;
                // Bounded by the worker count; identical machines are listed once.
                if !info.hardware.contains(&w.hardware) && info.hardware.len() < 64 {
                    info.hardware.push(w.hardware.clone());
                }
            }
        }
        let mut list: Vec<_> = by_model.into_values().collect();
        for m in &mut list {
            if m.workers == 0 {
                m.min_coefficient = 0;
            }
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    pub fn stats(&self) -> Vec<WorkerStat> {
        let mut list: Vec<_> = self
            .snapshot()
            .iter()
            .map(|w| {
                // One lock per worker: a second `perf()` in the same expression would deadlock.
                let perf = w.perf();
                WorkerStat {
                    id: w.id,
                    name: w.name.clone(),
                    owner: w.owner.clone(),
                    model_id: w.model_id.clone(),
                    gpu_model: w.hardware.gpu_model.clone(),
                    gpu_count: w.hardware.gpu_count,
                    vram_mib: w.hardware.vram_mib,
                    gpu_driver: w.hardware.driver.clone(),
                    cc_mode: w.hardware.cc_mode,
                    cpu_cores: w.hardware.cpu_cores,
                    memory_mib: w.hardware.memory_mib,
                    coefficient: w.coefficient.load(Ordering::Relaxed),
                    enabled: w.enabled.load(Ordering::Relaxed),
                    active: w.active.load(Ordering::Relaxed),
                    max_active: w.max_active,
                    served: w.served.load(Ordering::Relaxed),
                    failed: w.failed.load(Ordering::Relaxed),
                    ttft_ms: perf.ttft_ms,
                    tokens_per_s: perf.tokens_per_s,
                    success_rate: perf
                        .reputation(Instant::now(), self.routing.reputation_half_life),
                    breaker: perf.breaker,
                }
            })
            .collect();
        list.sort_by_key(|w| w.id);
        list
    }
}

/// A worker's row in `/jsonstats`.
#[derive(Serialize)]
pub(crate) struct WorkerStat {
    pub id: u64,
    pub name: String,
    pub owner: String,
    pub model_id: String,
    pub gpu_model: String,
    pub gpu_count: u32,
    pub vram_mib: u64,
    pub gpu_driver: String,
    /// GPU confidential-computing mode on.
    pub cc_mode: bool,
    pub cpu_cores: u32,
    pub memory_mib: u64,
    pub coefficient: u32,
    pub enabled: bool,
    pub active: u32,
    pub max_active: u32,
    pub served: u64,
    pub failed: u64,
    pub ttft_ms: Option<f64>,
    pub tokens_per_s: Option<f64>,
    pub success_rate: f64,
    pub breaker: routing::Breaker,
}
