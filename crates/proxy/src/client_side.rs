//! Inbound client links: the `ClientLink` service, one instance per connection so the
//! handshake state belongs to that connection. Request metrics are recorded here, around
//! the relay.

use crate::relay::relay;
use crate::Shared;
use cocoon_ledger::Address;
use cocoon_net::metrics;
use cocoon_proto::{
    answer::Part, auth_request::Method, client_connect_reply::Result as Reply, Answer, AnswerError,
    AuthChallenge, AuthReply, AuthRequest, ClientAccepted, ClientConnectReply, ClientHello,
    ClientRunRequest, ErrorCode, ModelsReply, ModelsRequest, PaymentStatus, PaymentStatusRequest,
    Refusal, MAX_TEXT_BYTES,
};
use futures::{Stream, StreamExt};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

#[derive(Default)]
struct SessionState {
    owner: Option<String>,
    /// The nonce this session issued for long auth.
    nonce: u64,
    /// The client contract, once authorised with payments on.
    client: Option<Address>,
    authorized: bool,
}

/// Longest short-auth secret accepted.
const MAX_SECRET_BYTES: usize = 256;

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

fn auth_reply(result: Result<PaymentStatus, String>) -> Response<AuthReply> {
    Response::new(match result {
        Ok(payment) => AuthReply {
            ok: true,
            reason: String::new(),
            payment: Some(payment),
        },
        Err(reason) => AuthReply {
            ok: false,
            reason,
            payment: None,
        },
    })
}

pub(crate) struct ClientSession {
    shared: Arc<Shared>,
    state: Mutex<SessionState>,
}

impl ClientSession {
    pub fn new(shared: Arc<Shared>) -> Self {
        ClientSession {
            shared,
            state: Mutex::new(SessionState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

type AnswerStream = Pin<Box<dyn Stream<Item = Result<Answer, Status>> + Send + 'static>>;

fn refuse(reason: String) -> Response<ClientConnectReply> {
    Response::new(ClientConnectReply {
        result: Some(Reply::Refused(Refusal {
            code: ErrorCode::Protocol as i32,
            reason,
        })),
    })
}

#[tonic::async_trait]
impl cocoon_proto::client_link_server::ClientLink for ClientSession {
    type RunStream = AnswerStream;

    async fn hello(
        &self,
        request: Request<ClientHello>,
    ) -> Result<Response<ClientConnectReply>, Status> {
        let hello = request.into_inner();
        let version = match cocoon_proto::negotiate(hello.protocol.as_ref()) {
            Ok(v) => v,
            Err(reason) => return Ok(refuse(reason)),
        };
        if hello.owner_address.is_empty() || hello.owner_address.len() > MAX_TEXT_BYTES {
            return Ok(refuse("owner_address must be 1..4096 bytes".into()));
        }
        let nonce: u64 = rand::random();
        {
            let mut state = self.state();
            state.owner = Some(hello.owner_address.clone());
            state.nonce = nonce;
        }
        let (contract, auth) = match &self.shared.payments {
            Some(p) => {
                let owner = Address::parse_owner(&hello.owner_address);
                let contract = p
                    .client_contract(&owner)
                    .await
                    .map_err(Status::unavailable)?;
                let hash = p.client_secret_hash(contract).await;
                let challenge = AuthChallenge {
                    nonce,
                    secret_hash: hash.map(|h| h.to_vec()).unwrap_or_default().into(),
                    open: false,
                };
                (contract.to_hex(), challenge)
            }
            // Payments off: the proxy offers free credit ("open" auth).
            None => (
                String::new(),
                AuthChallenge {
                    nonce,
                    secret_hash: Vec::new().into(),
                    open: true,
                },
            ),
        };
        let accepted = ClientAccepted {
            proxy: Some(self.shared.proxy_params(version)),
            client_contract_address: contract,
            auth: Some(auth),
            payment: None,
        };
        Ok(Response::new(ClientConnectReply {
            result: Some(Reply::Accepted(accepted)),
        }))
    }

    async fn authorize(
        &self,
        request: Request<AuthRequest>,
    ) -> Result<Response<AuthReply>, Status> {
        let (owner, nonce) = {
            let state = self.state();
            match &state.owner {
                Some(o) => (o.clone(), state.nonce),
                None => return Ok(auth_reply(Err("call Hello first".into()))),
            }
        };
        let method = request.into_inner().method;
        let Some(payments) = self.shared.payments.clone() else {
            return Ok(auth_reply(match method {
                Some(Method::Open(true)) => {
                    self.state().authorized = true;
                    Ok(PaymentStatus::default())
                }
                Some(_) => Err("this proxy runs without payments; use open auth".into()),
                None => Err("no auth method given".into()),
            }));
        };
        let owner = Address::parse_owner(&owner);
        let contract = match payments.client_contract(&owner).await {
            Ok(c) => c,
            Err(e) => return Ok(auth_reply(Err(e))),
        };
        let result = match method {
            Some(Method::Secret(secret)) if secret.len() <= MAX_SECRET_BYTES => {
                let hash = sha256(&secret);
                payments
                    .join_client(contract, owner, |c| {
                        if c.secret_hash != [0; 32] && c.secret_hash == hash {
                            Ok(())
                        } else {
                            Err("secret does not match the client contract".into())
                        }
                    })
                    .await
            }
            Some(Method::Secret(_)) => Err(format!("secret longer than {MAX_SECRET_BYTES} bytes")),
            Some(Method::RegisteredNonce(n)) => {
                payments
                    .join_client(contract, owner, |c| {
                        if n == nonce && c.registered_nonce == nonce {
                            Ok(())
                        } else {
                            Err(format!(
                            "the client contract has not registered this session's nonce {nonce}"
                        ))
                        }
                    })
                    .await
            }
            Some(Method::Open(_)) => {
                Err("this proxy requires payments: use short or long auth".into())
            }
            None => Err("no auth method given".into()),
        };
        let result = result.map(|()| {
            let mut state = self.state();
            state.authorized = true;
            state.client = Some(contract);
            payments.client_status(&contract)
        });
        Ok(auth_reply(result))
    }

    async fn get_payment_status(
        &self,
        _: Request<PaymentStatusRequest>,
    ) -> Result<Response<PaymentStatus>, Status> {
        let client = {
            let state = self.state();
            if !state.authorized {
                return Err(Status::unauthenticated("not authorized"));
            }
            state.client
        };
        Ok(Response::new(match (&self.shared.payments, client) {
            (Some(p), Some(c)) => p.client_status(&c),
            _ => PaymentStatus::default(),
        }))
    }

    async fn models(&self, _: Request<ModelsRequest>) -> Result<Response<ModelsReply>, Status> {
        if !self.state().authorized {
            return Err(Status::unauthenticated("not authorized"));
        }
        Ok(Response::new(ModelsReply {
            models: self.shared.workers.models(),
        }))
    }

    async fn run(
        &self,
        request: Request<ClientRunRequest>,
    ) -> Result<Response<Self::RunStream>, Status> {
        let (authorized, client) = {
            let state = self.state();
            (state.authorized, state.client)
        };
        let request = request.into_inner();
        let metered = self.shared.metrics.start(
            // The app's text is only looked up: names no worker served are "other".
            metrics::lookup(&request.model),
            request.stream,
        );
        if !authorized {
            metered.fail(ErrorCode::Unauthorized as i32);
            let answer = Answer {
                part: Some(Part::Error(AnswerError {
                    code: ErrorCode::Unauthorized as i32,
                    message: "client link is not authorized".into(),
                    usage: None,
                    stream_started: false,
                })),
            };
            return Ok(Response::new(Box::pin(futures::stream::once(async {
                Ok(answer)
            }))));
        }
        let model = request.model.clone();
        let answers = relay(self.shared.clone(), request, client);
        Ok(Response::new(Box::pin(metered_answers(
            self.shared.clone(),
            metered,
            model,
            answers,
        ))))
    }
}

/// Passes `answers` through untouched while recording the request's metrics: first chunk,
/// then success (tokens, the proxy's commission) or the error's code. A stream dropped
/// before its end (the client went away) counts as cancelled.
fn metered_answers(
    shared: Arc<Shared>,
    metered: metrics::Request,
    model: String,
    answers: impl Stream<Item = Result<Answer, Status>> + Send + 'static,
) -> impl Stream<Item = Result<Answer, Status>> + Send + 'static {
    let mut metered = Some(metered);
    answers.inspect(move |item| match item {
        Ok(Answer {
            part: Some(Part::Chunk(_)),
        }) => {
            if let Some(m) = metered.as_mut() {
                m.first_token();
            }
        }
        Ok(Answer {
            part: Some(Part::End(end)),
        }) => {
            if let Some(mut m) = metered.take() {
                // A worker served it: the name is one the network has.
                m.set_model(metrics::intern(&model));
                m.succeed(end.usage.as_ref());
            }
            if let (Some(_), Some(cost)) = (&shared.payments, &end.cost) {
                let fee = shared.config.chain.registry().params.worker_fee_per_token;
                let commission = cost
                    .total_cost
                    .saturating_sub(cost.adjusted_tokens.saturating_mul(fee));
                shared.metrics.add_money(commission);
                shared
                    .stats
                    .billed_nanoton
                    .fetch_add(cost.total_cost, Ordering::Relaxed);
            }
        }
        Ok(Answer {
            part: Some(Part::Error(e)),
        }) => {
            if let Some(m) = metered.take() {
                m.fail(e.code);
            }
        }
        Ok(Answer {
            part: Some(Part::Head(_)),
        }) => {}
        Ok(Answer { part: None }) | Err(_) => {
            if let Some(m) = metered.take() {
                m.fail(ErrorCode::Internal as i32);
            }
        }
    })
}
