//! Opening the books: key, proxy contract, DB, and the rollback checks against chain.
//! Also the joins of peers (client auth, worker contract), which read the chain.

use super::books::{Books, ClientBook, WorkerBook};
use super::store::{Head, PeerKind, Store};
use super::{key, MoneyError, MoneyStats, Payments, ProxyPayments};
use cocoon_chain::{Chain, ChainError};
use cocoon_ledger::{
    public_key, Address, ClientAccount, ContractState, OnChainClient, Op, PeerCounters, World,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

fn chain_err(what: &str) -> impl Fn(cocoon_chain::ChainError) -> MoneyError + '_ {
    move |e| MoneyError::Chain(format!("{what}: {e}"))
}

impl Payments {
    /// Opens everything; blocking (DB and chain calls). Refuses to start on a tampered or
    /// rolled-back DB.
    pub fn open(
        config: ProxyPayments,
        owner: Address,
        chain: Arc<dyn Chain>,
    ) -> Result<Arc<Payments>, MoneyError> {
        std::fs::create_dir_all(&config.state_dir).map_err(|e| {
            MoneyError::Db(format!("cannot create {}: {e}", config.state_dir.display()))
        })?;
        let (key, _) = key::load_or_create(&config.state_dir.join("proxy.key"))?;
        let public = public_key(&key);
        let registry = chain.registry();
        let store = Store::open(&config.state_dir.join("proxy.db"))?;
        let (head, rows) = store.load(&public)?;
        // Chains that cannot list every contract (TON) read the ones named here: the
        // contract this key would deploy now and every contract the DB has books for.
        let _ = chain.proxy_contract(&owner, &public, registry.version);
        chain.watch(&rows.iter().map(|r| r.contract).collect::<Vec<_>>());
        let mut world = chain.world().map_err(chain_err("reading the ledger"))?;
        // The contract this key already serves (registry updates bump its version, which
        // must not move a running proxy to a new contract); else a new one.
        let existing = world
            .proxies
            .values()
            .find(|p| p.owner == owner && p.key == public && p.state != ContractState::Closed)
            .map(|p| p.address);
        let contract = match existing {
            Some(c) => c,
            None => {
                let stake = match config.stake {
                    0 => registry.params.min_proxy_stake,
                    s => s,
                };
                let record = chain
                    .submit(Op::DeployProxy {
                        owner,
                        key: public,
                        params_version: registry.version,
                        stake,
                    })
                    .map_err(|e| {
                        MoneyError::Chain(format!(
                            "cannot deploy the proxy contract (stake {stake} nanoTON from owner \
                             wallet {owner}; fund it with `cocoon wallet faucet`): {e}"
                        ))
                    })?;
                let contract = chain
                    .proxy_contract(&owner, &public, registry.version)
                    .map_err(chain_err("deriving the proxy contract"))?;
                tracing::info!(%contract, stake, seq = record.seq, "deployed the proxy contract");
                world = chain.world().map_err(chain_err("reading the ledger"))?;
                contract
            }
        };
        let proxy = world
            .proxies
            .get(&contract)
            .ok_or_else(|| MoneyError::Chain("proxy contract missing after deploy".into()))?;
        let price = proxy.params.price_per_token;

        check_head(&head, proxy.anchor_seqno, &proxy.anchor_hash)?;
        let mut anchor_seqno = proxy.anchor_seqno;
        if head.seqno > anchor_seqno {
            let anchor = cocoon_ledger::SignedAnchor::sign_in(
                chain.signature_format(),
                &key,
                contract,
                head.seqno,
                head.hash,
            );
            chain
                .submit(Op::ProxyAnchor { anchor })
                .map_err(chain_err("anchoring the DB head at start"))?;
            anchor_seqno = head.seqno;
        }

        let mut books = Books {
            price_per_token: price,
            clients: HashMap::new(),
            workers: HashMap::new(),
            head,
            anchored: anchor_seqno,
        };
        let now = Instant::now();
        for row in &rows {
            // A row written by an anchored batch is chain-committed; a later one counts
            // as committed only up to what the chain already settled.
            let anchored = row.seqno <= anchor_seqno;
            match row.kind {
                PeerKind::Client => {
                    let onchain = client_onchain(&world, &row.contract);
                    let chain_value = if anchored {
                        row.value
                    } else {
                        onchain.tokens_charged.min(row.value)
                    };
                    let counters = PeerCounters::restore(row.value, chain_value, row.seqno)
                        .map_err(|e| MoneyError::Tampered(e.to_string()))?;
                    let account = ClientAccount::new(price, onchain, counters).map_err(|e| {
                        MoneyError::RolledBack(format!("client contract {}: {e}", row.contract))
                    })?;
                    books.clients.insert(
                        row.contract,
                        ClientBook {
                            owner: row.owner,
                            account,
                            voucher: None,
                            last_use: now,
                        },
                    );
                }
                PeerKind::Worker => {
                    let paid = world
                        .workers
                        .get(&row.contract)
                        .map_or(0, |w| w.tokens_paid);
                    if paid > row.value {
                        return Err(MoneyError::RolledBack(format!(
                            "worker contract {} was paid {paid} tokens, the DB knows {}",
                            row.contract, row.value
                        )));
                    }
                    let chain_value = if anchored { row.value } else { paid };
                    let counters = PeerCounters::restore(row.value, chain_value, row.seqno)
                        .map_err(|e| MoneyError::Tampered(e.to_string()))?;
                    books.workers.insert(
                        row.contract,
                        WorkerBook {
                            owner: row.owner,
                            counters,
                            paid_on_chain: paid,
                            voucher: None,
                            last_use: now,
                        },
                    );
                }
            }
        }
        // Settled contracts the DB has never heard of: the DB lost them.
        let forgotten = world
            .clients
            .values()
            .filter(|c| c.proxy == contract && c.tokens_charged > 0)
            .map(|c| c.address)
            .chain(
                world
                    .workers
                    .values()
                    .filter(|w| w.proxy == contract && w.tokens_paid > 0)
                    .map(|w| w.address),
            )
            .find(|a| !books.clients.contains_key(a) && !books.workers.contains_key(a));
        if let Some(a) = forgotten {
            return Err(MoneyError::RolledBack(format!(
                "contract {a} was settled on chain but the DB has no record of it"
            )));
        }
        let payments = Arc::new(Payments {
            key,
            public,
            owner,
            contract,
            config,
            chain,
            books: Mutex::new(books),
            store: Mutex::new(store),
            stats: MoneyStats::default(),
            last_alarm: Mutex::new(None),
            restarted: head.seqno > 0,
        });
        {
            let mut books = payments.books();
            payments.sign_anchored(&mut books);
            tracing::info!(
                %contract,
                db_seqno = books.head.seqno,
                anchored = books.anchored,
                clients = books.clients.len(),
                workers = books.workers.len(),
                "proxy books opened"
            );
        }
        Ok(payments)
    }

    /// What a client's contract holds, for the Hello reply: (exists, secret hash).
    pub async fn client_secret_hash(&self, client: Address) -> Option<[u8; 32]> {
        let world = self.chain_call(|c| c.world()).await.ok()?;
        let c = world.clients.get(&client)?;
        (c.proxy == self.contract && c.secret_hash != [0; 32]).then_some(c.secret_hash)
    }

    /// Authorises a client whose contract proves it (`check` is handed the contract), and
    /// opens or refreshes its book. A contract charged beyond what this proxy anchored
    /// means our state was rolled back: alarm and refuse.
    pub async fn join_client(
        &self,
        client: Address,
        owner: Address,
        check: impl FnOnce(&cocoon_ledger::ClientContract) -> Result<(), String>,
    ) -> Result<(), String> {
        let world = self
            .chain_call(|c| c.world())
            .await
            .map_err(|e| format!("cannot read the chain: {e}"))?;
        let Some(c) = world.clients.get(&client) else {
            return Err(format!(
                "no client contract {client} on chain; deploy it first (DeployClient)"
            ));
        };
        if c.proxy != self.contract || c.owner != owner {
            return Err("client contract belongs to another proxy or owner".into());
        }
        check(c)?;
        let onchain = OnChainClient::from(c);
        let mut books = self.books();
        let price = books.price_per_token;
        let result = match books.clients.get_mut(&client) {
            Some(b) => b.account.observe_chain(onchain),
            None => ClientAccount::new(price, onchain, PeerCounters::new()).map(|account| {
                books.clients.insert(
                    client,
                    ClientBook {
                        owner,
                        account,
                        voucher: None,
                        last_use: Instant::now(),
                    },
                );
            }),
        };
        drop(books);
        result.map_err(|e| {
            let reason = format!("client contract {client}: {e}");
            self.alarm(reason.clone());
            reason
        })
    }

    /// Opens a worker's book, deploying its worker contract when it has none.
    pub async fn join_worker(&self, owner: Address) -> Result<Address, String> {
        let worker = self.worker_contract(&owner).await?;
        let proxy = self.contract;
        let world = self
            .chain_call(move |c| {
                let world = c.world()?;
                if world.workers.contains_key(&worker) {
                    return Ok(world);
                }
                match c.submit(Op::DeployWorker { owner, proxy }) {
                    // TON: only the worker's own wallet can deploy its contract; the worker
                    // does so before its first payout.
                    Err(ChainError::NotOwnWallet(_)) => return Ok(world),
                    Err(e) if !e.is_already_deployed() => return Err(e),
                    _ => {}
                }
                c.world()
            })
            .await
            .map_err(|e| format!("cannot open the worker contract: {e}"))?;
        let paid = world.workers.get(&worker).map_or(0, |w| w.tokens_paid);
        let mut books = self.books();
        let b = books.workers.entry(worker).or_insert_with(|| WorkerBook {
            owner,
            counters: PeerCounters::new(),
            paid_on_chain: 0,
            voucher: None,
            last_use: Instant::now(),
        });
        if paid > b.counters.committed_chain() {
            let reason = format!(
                "worker contract {worker} was paid {paid} tokens, this proxy anchored {}",
                b.counters.committed_chain()
            );
            drop(books);
            self.alarm(reason.clone());
            return Err(reason);
        }
        b.paid_on_chain = paid;
        Ok(worker)
    }
}

fn client_onchain(world: &World, contract: &Address) -> OnChainClient {
    world
        .clients
        .get(contract)
        .map(OnChainClient::from)
        .unwrap_or(OnChainClient {
            state: ContractState::Closed,
            balance: 0,
            stake: 0,
            tokens_charged: 0,
        })
}

/// The DB must be at or past the chain's anchor, and agree with it at the anchor.
fn check_head(
    head: &Head,
    anchor_seqno: u64,
    anchor_hash: &cocoon_ledger::SessionHash,
) -> Result<(), MoneyError> {
    if head.seqno < anchor_seqno {
        return Err(MoneyError::RolledBack(format!(
            "the DB is at batch {} but batch {anchor_seqno} is anchored on chain",
            head.seqno
        )));
    }
    if head.seqno == anchor_seqno && anchor_seqno > 0 && head.hash != *anchor_hash {
        return Err(MoneyError::RolledBack(format!(
            "the DB's batch {anchor_seqno} differs from the one anchored on chain"
        )));
    }
    Ok(())
}
