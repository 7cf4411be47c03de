//! The client's payment pieces against a `LocalChain` and a scripted proxy that speaks the
//! ClientLink protocol over an in-memory connection: long and short auth, the money task's
//! top-ups and lagging charges, and rollback refusals.

use cocoon_chain::ledger::{
    keypair_from_seed, public_key, Address, Op, SignedVoucher, Voucher, VoucherOp,
};
use cocoon_chain::{Chain, LocalChain, Registry};
use cocoon_client::payments::auth::{PaidProxy, Payer};
use cocoon_client::payments::{Books, ClientPayments, PaymentError, Refusal};
use cocoon_net::LinkTiming;
use cocoon_proto::{
    auth_request::Method, client_link_client::ClientLinkClient, client_link_server, Answer,
    AuthChallenge, AuthReply, AuthRequest, ClientAccepted, ClientConnectReply, ClientHello,
    ClientRunRequest, Counters, ModelsReply, ModelsRequest, PaymentStatus, PaymentStatusRequest,
    ProxyParams,
};
use ring::signature::Ed25519KeyPair;
use sha2::{Digest, Sha256};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

const TON: u64 = 1_000_000_000;

/// A proxy that checks auth against the chain as the real one does, and reports whatever
/// payment status the test sets.
struct FakeProxy {
    chain: Arc<LocalChain>,
    key: Ed25519KeyPair,
    contract: Address,
    nonce: Mutex<u64>,
    status: Mutex<PaymentStatus>,
    refuse_short: AtomicBool,
}

impl FakeProxy {
    fn client_contract(&self, owner: &str) -> Address {
        Address::client_contract(&self.contract, &Address::parse_owner(owner))
    }

    fn voucher(&self, client: Address, n: u64) -> SignedVoucher {
        Voucher::new(VoucherOp::ClientCharge, client, n).sign(&self.key)
    }

    fn set_status(&self, voucher: Option<SignedVoucher>, chain: u64, db: u64, mem: u64) {
        *self.status.lock().unwrap() = PaymentStatus {
            voucher: voucher.map(|v| cocoon_proto::SignedVoucher {
                op: v.op.code(),
                contract_address: v.contract.to_hex(),
                cumulative_tokens: v.cumulative,
                signature: v.signature.0.to_vec().into(),
            }),
            counters: Some(Counters {
                tokens_committed_to_chain: chain,
                tokens_committed_to_db: db,
                max_tokens: mem,
            }),
        };
    }
}

struct Service(Arc<FakeProxy>);

type AnswerStream = Pin<Box<dyn futures::Stream<Item = Result<Answer, Status>> + Send>>;

#[tonic::async_trait]
impl client_link_server::ClientLink for Service {
    type RunStream = AnswerStream;

    async fn hello(
        &self,
        request: Request<ClientHello>,
    ) -> Result<Response<ClientConnectReply>, Status> {
        let p = &self.0;
        let client = p.client_contract(&request.into_inner().owner_address);
        let nonce = rand::random::<u64>() | 1;
        *p.nonce.lock().unwrap() = nonce;
        let secret_hash = p
            .chain
            .world()
            .ok()
            .and_then(|w| w.clients.get(&client).map(|c| c.secret_hash))
            .filter(|h| *h != [0; 32])
            .map(|h| h.to_vec())
            .unwrap_or_default();
        let accepted = ClientAccepted {
            proxy: Some(ProxyParams {
                public_key: public_key(&p.key).0.to_vec().into(),
                contract_address: p.contract.to_hex(),
                ..Default::default()
            }),
            client_contract_address: client.to_hex(),
            auth: Some(AuthChallenge {
                nonce,
                secret_hash: secret_hash.into(),
                open: false,
            }),
            payment: Some(p.status.lock().unwrap().clone()),
        };
        Ok(Response::new(ClientConnectReply {
            result: Some(cocoon_proto::client_connect_reply::Result::Accepted(
                accepted,
            )),
        }))
    }

    async fn authorize(
        &self,
        request: Request<AuthRequest>,
    ) -> Result<Response<AuthReply>, Status> {
        let p = &self.0;
        let world = p
            .chain
            .world()
            .map_err(|e| Status::internal(e.to_string()))?;
        // One client per test: the only client contract on chain.
        let contract = world.clients.values().next().cloned();
        let ok = match (request.into_inner().method, contract) {
            (Some(Method::RegisteredNonce(n)), Some(c)) => {
                n == *p.nonce.lock().unwrap() && c.registered_nonce == n
            }
            (Some(Method::Secret(s)), Some(c)) => {
                let hash: [u8; 32] = Sha256::digest(&s).into();
                hash == c.secret_hash && !p.refuse_short.load(Ordering::Relaxed)
            }
            _ => false,
        };
        Ok(Response::new(AuthReply {
            ok,
            reason: if ok { String::new() } else { "no".into() },
            payment: Some(p.status.lock().unwrap().clone()),
        }))
    }

    async fn get_payment_status(
        &self,
        _: Request<PaymentStatusRequest>,
    ) -> Result<Response<PaymentStatus>, Status> {
        Ok(Response::new(self.0.status.lock().unwrap().clone()))
    }

    async fn models(&self, _: Request<ModelsRequest>) -> Result<Response<ModelsReply>, Status> {
        Err(Status::unimplemented("models"))
    }

    async fn run(&self, _: Request<ClientRunRequest>) -> Result<Response<Self::RunStream>, Status> {
        Err(Status::unimplemented("run"))
    }
}

struct World {
    chain: Arc<LocalChain>,
    proxy: Arc<FakeProxy>,
}

const OWNER: &str = "alice";

fn world() -> World {
    let chain = LocalChain::new(Registry::default());
    let proxy_owner = Address::wallet("proxy-owner");
    for (to, amount) in [
        (proxy_owner, 10 * TON),
        (Address::parse_owner(OWNER), 100 * TON),
    ] {
        chain.submit(Op::Mint { to, amount }).unwrap();
    }
    let key = keypair_from_seed(&[3; 32]).unwrap();
    let params_version = chain.registry().version;
    chain
        .submit(Op::DeployProxy {
            owner: proxy_owner,
            key: public_key(&key),
            params_version,
            stake: TON,
        })
        .unwrap();
    let contract = Address::proxy_contract(&proxy_owner, &public_key(&key), params_version);
    assert!(chain.world().unwrap().proxies.contains_key(&contract));
    let proxy = Arc::new(FakeProxy {
        chain: chain.clone(),
        key,
        contract,
        nonce: Mutex::new(0),
        status: Mutex::new(PaymentStatus::default()),
        refuse_short: AtomicBool::new(false),
    });
    World { chain, proxy }
}

impl World {
    fn payer(&self, books: &Arc<Books>, payments: ClientPayments) -> Payer {
        Payer {
            chain: self.chain.clone(),
            owner: Address::parse_owner(OWNER),
            payments,
            books: books.clone(),
            step: Duration::from_secs(5),
        }
    }

    async fn connect(&self) -> ClientLinkClient<Channel> {
        let (a, b) = tokio::io::duplex(1 << 16);
        let service = client_link_server::ClientLinkServer::new(Service(self.proxy.clone()));
        tokio::spawn(async move {
            let _ = cocoon_net::serve_over(
                b,
                service,
                &LinkTiming::default(),
                CancellationToken::new(),
            )
            .await;
        });
        let channel = cocoon_net::channel_over(a, &LinkTiming::default())
            .await
            .unwrap();
        ClientLinkClient::new(channel)
    }

    /// Hello, then authorize with `payer`.
    async fn join(
        &self,
        payer: &Payer,
    ) -> Result<(ClientLinkClient<Channel>, PaidProxy), PaymentError> {
        let mut client = self.connect().await;
        let hello = ClientHello {
            owner_address: OWNER.into(),
            protocol: Some(cocoon_proto::local_protocol_range()),
            instance_name: "test".into(),
        };
        let reply = client.hello(hello).await.unwrap().into_inner();
        let Some(cocoon_proto::client_connect_reply::Result::Accepted(accepted)) = reply.result
        else {
            panic!("refused")
        };
        let paid = payer.authorize(&mut client, "fake:1", &accepted).await?;
        Ok((client, paid))
    }

    fn client_contract(&self) -> cocoon_chain::ledger::ClientContract {
        let address = self.proxy.client_contract(OWNER);
        self.chain.world().unwrap().clients[&address].clone()
    }
}

fn fast() -> ClientPayments {
    ClientPayments {
        deposit: 2 * TON,
        poll: Duration::from_millis(20),
        charge_lag: Duration::ZERO,
    }
}

#[tokio::test]
async fn long_auth_then_short_then_long_in_a_fresh_process() {
    let w = world();
    let books = Arc::new(Books::default());
    let payer = w.payer(&books, fast());
    let (_, paid) = w.join(&payer).await.unwrap();
    assert_eq!(paid.client_contract, w.proxy.client_contract(OWNER));
    let c = w.client_contract();
    assert_eq!(c.balance, 2 * TON, "deployed with the deposit");
    assert_eq!(c.registered_nonce, *w.proxy.nonce.lock().unwrap());
    let secret = books.with(&w.proxy.contract, |b| b.secret.clone()).unwrap();
    assert_eq!(c.secret_hash, secret.hash());
    let nonce = c.registered_nonce;

    // Same process: the chain holds our hash, so short auth, no chain ops.
    let seq = w.chain.tip().unwrap().seq;
    w.join(&payer).await.unwrap();
    assert_eq!(w.chain.tip().unwrap().seq, seq);
    assert_eq!(w.client_contract().registered_nonce, nonce);
    let view = &books.views()[0];
    assert_eq!((view.long_auths, view.short_auths), (1, 1));
    assert_eq!(view.client_contract, paid.client_contract.to_hex());

    // A fresh process has no secret: long auth again, overwriting the hash, no redeploy.
    let fresh = Arc::new(Books::default());
    w.join(&w.payer(&fresh, fast())).await.unwrap();
    let c = w.client_contract();
    assert_ne!(c.secret_hash, secret.hash());
    assert_eq!(c.balance, 2 * TON);
    assert_eq!(fresh.views()[0].long_auths, 1);

    // The chain's hash is not the first process's any more: it does long auth.
    w.join(&payer).await.unwrap();
    assert_eq!(books.views()[0].long_auths, 2);

    // A refused short auth forgets the secret, so the next attempt does long auth.
    w.proxy.refuse_short.store(true, Ordering::Relaxed);
    let e = w.join(&payer).await.unwrap_err();
    assert!(matches!(e, PaymentError::AuthRefused(_)), "{e}");
    assert!(books.with(&w.proxy.contract, |b| b.secret.is_none()));
    w.join(&payer).await.unwrap();
    assert_eq!(books.views()[0].long_auths, 3);
}

#[tokio::test]
async fn announced_key_must_be_the_contracts() {
    let w = world();
    let books = Arc::new(Books::default());
    let payer = w.payer(&books, fast());
    let mut client = w.connect().await;
    let reply = client
        .hello(ClientHello {
            owner_address: OWNER.into(),
            protocol: Some(cocoon_proto::local_protocol_range()),
            instance_name: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let Some(cocoon_proto::client_connect_reply::Result::Accepted(mut accepted)) = reply.result
    else {
        panic!()
    };
    if let Some(p) = accepted.proxy.as_mut() {
        p.public_key = public_key(&keypair_from_seed(&[4; 32]).unwrap())
            .0
            .to_vec()
            .into();
    }
    let e = payer
        .authorize(&mut client, "fake:1", &accepted)
        .await
        .unwrap_err();
    assert!(matches!(e, PaymentError::KeyMismatch { .. }), "{e}");
    assert!(
        w.chain.world().unwrap().clients.is_empty(),
        "nothing deployed"
    );
}

#[tokio::test]
async fn money_task_charges_a_lagging_voucher_and_tops_up() {
    let w = world();
    let books = Arc::new(Books::default());
    let payer = w.payer(&books, fast());
    let (mut client, paid) = w.join(&payer).await.unwrap();
    let address = paid.client_contract;
    let price = w.chain.registry().params.price_per_token;

    // The proxy signed 1000 tokens but did not charge them: the client does.
    w.proxy
        .set_status(Some(w.proxy.voucher(address, 1000)), 1000, 1000, 1000);
    payer.tick(&mut client, &paid).await.unwrap();
    let c = w.client_contract();
    assert_eq!(c.tokens_charged, 1000);
    assert_eq!(c.balance, 2 * TON - 1000 * price);
    let view = &books.views()[0];
    assert_eq!(
        (view.self_charges, view.voucher_cumulative),
        (1, Some(1000))
    );
    assert_eq!(
        view.chain.as_ref().map(|c| c.tokens_charged),
        Some(0),
        "read before the charge"
    );

    // The proxy charged first: the client's submission is stale, which is fine.
    let v = w.proxy.voucher(address, 2000);
    w.chain
        .submit(Op::ClientCharge {
            client: address,
            voucher: v,
        })
        .unwrap();
    w.proxy.set_status(Some(v), 2000, 2000, 2000);
    payer.tick(&mut client, &paid).await.unwrap();
    assert_eq!(books.views()[0].self_charges, 1);

    // Uncharged usage eats the unused balance below half the stake: top up.
    let stake = w.client_contract().stake;
    let balance = w.client_contract().balance;
    let used = 2000 + (balance - stake / 2) / price + 1;
    w.proxy.set_status(Some(v), 2000, 2000, used);
    payer.tick(&mut client, &paid).await.unwrap();
    assert_eq!(w.client_contract().balance, balance + 2 * TON);
    assert_eq!(books.views()[0].top_ups, 1);
    payer.tick(&mut client, &paid).await.unwrap();
    assert_eq!(books.views()[0].top_ups, 1, "the top-up covered it");
}

#[tokio::test]
async fn charge_waits_for_the_lag() {
    let w = world();
    let books = Arc::new(Books::default());
    let payer = w.payer(
        &books,
        ClientPayments {
            charge_lag: Duration::from_secs(3600),
            ..fast()
        },
    );
    let (mut client, paid) = w.join(&payer).await.unwrap();
    w.proxy
        .set_status(Some(w.proxy.voucher(paid.client_contract, 10)), 10, 10, 10);
    payer.tick(&mut client, &paid).await.unwrap();
    payer.tick(&mut client, &paid).await.unwrap();
    assert_eq!(w.client_contract().tokens_charged, 0);
    assert_eq!(books.views()[0].self_charges, 0);
}

#[tokio::test]
async fn rollback_is_refused_on_poll_and_on_reconnect_until_caught_up() {
    let w = world();
    let books = Arc::new(Books::default());
    let payer = w.payer(&books, fast());
    let (client, paid) = w.join(&payer).await.unwrap();
    let v = w.proxy.voucher(paid.client_contract, 500);
    w.proxy.set_status(Some(v), 500, 600, 700);
    let mut c = client.clone();
    payer.tick(&mut c, &paid).await.unwrap();

    // The proxy restarts from an older DB: counters go back.
    w.proxy.set_status(Some(v), 500, 550, 560);
    let refusal = tokio::time::timeout(
        Duration::from_secs(5),
        payer.money_loop(client, paid.clone(), "fake:1".into()),
    )
    .await
    .unwrap();
    assert!(matches!(refusal, Refusal::CountersBehind(_)), "{refusal}");
    assert!(refusal.to_string().contains("550") && refusal.to_string().contains("600"));

    // Reconnecting does not help while it is behind (hello's report is checked)…
    let e = w.join(&payer).await.unwrap_err();
    assert!(
        matches!(e, PaymentError::Refused(Refusal::CountersBehind(_))),
        "{e}"
    );
    // …nor does an older voucher.
    let old = w.proxy.voucher(paid.client_contract, 400);
    w.proxy.set_status(Some(old), 500, 600, 700);
    let e = w.join(&payer).await.unwrap_err();
    assert!(
        matches!(
            e,
            PaymentError::Refused(Refusal::VoucherBehind {
                held: 500,
                got: 400
            })
        ),
        "{e}"
    );
    let view = &books.views()[0];
    assert_eq!(view.refusals, 3);
    assert!(view.refused.is_some());

    // Caught up: accepted again.
    w.proxy.set_status(Some(v), 500, 600, 700);
    w.join(&payer).await.unwrap();
    assert_eq!(books.views()[0].refused, None);
}

#[tokio::test]
async fn a_voucher_signed_by_another_key_is_refused() {
    let w = world();
    let books = Arc::new(Books::default());
    let payer = w.payer(&books, fast());
    let (mut client, paid) = w.join(&payer).await.unwrap();
    let forged = Voucher::new(VoucherOp::ClientCharge, paid.client_contract, 10)
        .sign(&keypair_from_seed(&[9; 32]).unwrap());
    w.proxy.set_status(Some(forged), 10, 10, 10);
    let e = payer.tick(&mut client, &paid).await.unwrap_err();
    assert!(
        matches!(e, PaymentError::Refused(Refusal::InvalidVoucher(_))),
        "{e}"
    );
    assert_eq!(w.client_contract().tokens_charged, 0, "never submitted");
}
