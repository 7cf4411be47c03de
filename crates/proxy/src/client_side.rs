//! Inbound client links: the `ClientLink` service, one instance per connection so the
//! handshake state belongs to that connection.

use crate::relay::relay;
use crate::Shared;
use cocoon_proto::{
    answer::Part, auth_request::Method, client_connect_reply::Result as Reply, Answer, AnswerError,
    AuthChallenge, AuthReply, AuthRequest, ClientAccepted, ClientConnectReply, ClientHello,
    ClientRunRequest, ErrorCode, ModelsReply, ModelsRequest, PaymentStatus, PaymentStatusRequest,
    Refusal, MAX_TEXT_BYTES,
};
use futures::Stream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

#[derive(Default)]
struct SessionState {
    owner: Option<String>,
    authorized: bool,
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
        self.state().owner = Some(hello.owner_address.clone());
        let accepted = ClientAccepted {
            proxy: Some(self.shared.proxy_params(version)),
            client_contract_address: format!(
                "client:{}:{}",
                self.shared.config.name, hello.owner_address
            ),
            // Payments are not enabled yet: the proxy offers free credit ("open" auth).
            auth: Some(AuthChallenge {
                nonce: rand::random(),
                secret_hash: Vec::new().into(),
                open: true,
            }),
            payment: Some(PaymentStatus::default()),
        };
        Ok(Response::new(ClientConnectReply {
            result: Some(Reply::Accepted(accepted)),
        }))
    }

    async fn authorize(
        &self,
        request: Request<AuthRequest>,
    ) -> Result<Response<AuthReply>, Status> {
        let mut state = self.state();
        if state.owner.is_none() {
            return Ok(Response::new(AuthReply {
                ok: false,
                reason: "call Hello first".into(),
                payment: None,
            }));
        }
        let reply = match request.into_inner().method {
            Some(Method::Open(true)) => {
                state.authorized = true;
                AuthReply {
                    ok: true,
                    reason: String::new(),
                    payment: Some(PaymentStatus::default()),
                }
            }
            Some(Method::Secret(_) | Method::RegisteredNonce(_)) => AuthReply {
                ok: false,
                reason: "this proxy runs without payments; use open auth".into(),
                payment: None,
            },
            _ => AuthReply {
                ok: false,
                reason: "no auth method given".into(),
                payment: None,
            },
        };
        Ok(Response::new(reply))
    }

    async fn get_payment_status(
        &self,
        _: Request<PaymentStatusRequest>,
    ) -> Result<Response<PaymentStatus>, Status> {
        if !self.state().authorized {
            return Err(Status::unauthenticated("not authorized"));
        }
        Ok(Response::new(PaymentStatus::default()))
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
        if !self.state().authorized {
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
        Ok(Response::new(Box::pin(relay(
            self.shared.clone(),
            request.into_inner(),
        ))))
    }
}
