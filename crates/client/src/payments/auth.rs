//! Authorising with a proxy that requires payment (DESIGN §4, "Client joins a proxy").
//!
//! - *short*: the proxy's challenge carries the secret hash stored on the client contract;
//!   when it is the hash of the secret this process holds for that proxy, reveal the secret.
//! - *long*: deploy the client contract if it is missing, store the hash of a fresh secret
//!   on it, register the proxy's nonce on chain, and tell the proxy which nonce to look for.

use super::book::{Books, Secret};
use super::{on_chain, ClientPayments, PaymentError};
use cocoon_chain::ledger::{Address, ContractState, Op, PublicKey, SignatureFormat};
use cocoon_chain::Chain;
use cocoon_proto::{
    auth_request::Method, client_link_client::ClientLinkClient, AuthReply, AuthRequest,
    ClientAccepted,
};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// Who a paid proxy is, as its hello reply announced and the client checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaidProxy {
    pub proxy_contract: Address,
    pub client_contract: Address,
    /// The proxy's voucher key (checked against its contract on chain).
    pub key: PublicKey,
    /// What the proxy signs vouchers over on this chain.
    pub format: SignatureFormat,
}

impl PaidProxy {
    /// Reads the payment identity from a hello reply; the client contract the proxy names
    /// must be the one `owner` has at that proxy contract. Blocking (the chain derives the
    /// address; on TON it may read the proxy contract).
    pub fn from_hello(
        accepted: &ClientAccepted,
        owner: &Address,
        chain: &dyn Chain,
    ) -> Result<Self, PaymentError> {
        let bad = |m: String| PaymentError::BadHello(m);
        let params = accepted
            .proxy
            .as_ref()
            .ok_or_else(|| bad("no proxy params".into()))?;
        let key: [u8; 32] = params.public_key[..].try_into().map_err(|_| {
            bad(format!(
                "voucher key is {} bytes, not 32",
                params.public_key.len()
            ))
        })?;
        let proxy_contract = Address::from_hex(&params.contract_address)
            .map_err(|e| bad(format!("proxy contract address: {e}")))?;
        let client_contract = chain.client_contract(&proxy_contract, owner)?;
        let named = Address::from_hex(&accepted.client_contract_address)
            .map_err(|e| bad(format!("client contract address: {e}")))?;
        if named != client_contract {
            return Err(bad(format!(
                "proxy names client contract {named}, but owner {owner}'s contract at proxy {proxy_contract} is {client_contract}"
            )));
        }
        Ok(PaidProxy {
            proxy_contract,
            client_contract,
            key: PublicKey(key),
            format: chain.signature_format(),
        })
    }
}

/// Which auth to use: short (with this secret) when the proxy's challenge carries the hash
/// of the secret held for it, otherwise long (`None`).
pub fn short_auth_secret(challenge_hash: &[u8], held: Option<&Secret>) -> Option<Secret> {
    held.filter(|s| !challenge_hash.is_empty() && s.hash()[..] == *challenge_hash)
        .cloned()
}

/// What authorising needs from the client's configuration.
#[derive(Clone, Debug)]
pub struct Payer {
    pub chain: Arc<dyn Chain>,
    pub owner: Address,
    pub payments: ClientPayments,
    pub books: Arc<Books>,
    /// Per-RPC time limit.
    pub step: Duration,
}

impl Payer {
    /// Authorises with the proxy of `accepted`, short when possible, long otherwise; checks
    /// every payment report on the way against what was seen before.
    pub async fn authorize(
        &self,
        client: &mut ClientLinkClient<Channel>,
        endpoint: &str,
        accepted: &ClientAccepted,
    ) -> Result<PaidProxy, PaymentError> {
        let paid = {
            let (accepted, owner, chain) = (accepted.clone(), self.owner, self.chain.clone());
            tokio::task::spawn_blocking(move || {
                PaidProxy::from_hello(&accepted, &owner, chain.as_ref())
            })
            .await
            .map_err(|e| PaymentError::Join(e.to_string()))??
        };
        self.books.with(&paid.proxy_contract, |b| {
            b.endpoint = endpoint.to_string();
            b.client_contract = paid.client_contract;
            b.format = paid.format;
            match &accepted.payment {
                Some(status) => b.accept_report(&paid.key, status),
                None => Ok(()),
            }
        })?;
        let client_exists = self.check_chain(&paid).await?;
        let challenge = accepted.auth.clone().unwrap_or_default();
        let held = self.books.with(&paid.proxy_contract, |b| b.secret.clone());
        let short = short_auth_secret(&challenge.secret_hash, held.as_ref());
        let (method, long) = match short {
            Some(secret) => (Method::Secret(secret.0.to_vec().into()), false),
            None => {
                self.register(&paid, client_exists, challenge.nonce).await?;
                (Method::RegisteredNonce(challenge.nonce), true)
            }
        };
        let reply = self.call(client, method).await?;
        if !reply.ok {
            let reason = cocoon_proto::bounded_text(&reply.reason).to_string();
            if !long {
                // The chain's hash changed under us: the next attempt does long auth.
                self.books.with(&paid.proxy_contract, |b| b.secret = None);
            }
            let kind = if long { "long" } else { "short" };
            return Err(PaymentError::AuthRefused(format!("{kind} auth: {reason}")));
        }
        self.books.with(&paid.proxy_contract, |b| {
            if long {
                b.long_auths += 1;
            } else {
                b.short_auths += 1;
            }
            match &reply.payment {
                Some(status) => b.accept_report(&paid.key, status),
                None => Ok(()),
            }
        })?;
        Ok(paid)
    }

    /// The proxy contract must exist with the key the proxy announced (vouchers signed by
    /// any other key are worthless), and the client contract, if it exists, must be open.
    /// Returns whether the client contract exists.
    async fn check_chain(&self, paid: &PaidProxy) -> Result<bool, PaymentError> {
        let world = on_chain(&self.chain, |c| c.world()).await?;
        let proxy = world
            .proxies
            .get(&paid.proxy_contract)
            .ok_or(PaymentError::NoProxyContract(paid.proxy_contract))?;
        if proxy.key != paid.key {
            return Err(PaymentError::KeyMismatch {
                contract: paid.proxy_contract,
                announced: paid.key,
                on_chain: proxy.key,
            });
        }
        match world.clients.get(&paid.client_contract) {
            None => Ok(false),
            Some(c) if c.state == ContractState::Open => Ok(true),
            Some(c) => Err(PaymentError::ContractNotOpen {
                contract: paid.client_contract,
                state: format!("{:?}", c.state).to_lowercase(),
            }),
        }
    }

    /// Long auth's chain part: deploy if missing, store a fresh secret's hash, register.
    async fn register(
        &self,
        paid: &PaidProxy,
        client_exists: bool,
        nonce: u64,
    ) -> Result<(), PaymentError> {
        let owner = self.owner;
        let client = paid.client_contract;
        if !client_exists {
            let op = Op::DeployClient {
                owner,
                proxy: paid.proxy_contract,
                deposit: self.payments.deposit,
            };
            match on_chain(&self.chain, move |c| c.submit(op)).await {
                Err(PaymentError::Chain(e)) if e.is_already_deployed() => {}
                Err(e) => return Err(e),
                Ok(_) => tracing::info!(
                    %client, deposit = self.payments.deposit,
                    "deployed client contract"
                ),
            }
        }
        let secret = Secret::random();
        let hash = secret.hash();
        on_chain(&self.chain, move |c| {
            c.submit(Op::ClientSetSecretHash {
                sender: owner,
                client,
                hash,
            })
        })
        .await?;
        // The chain holds its hash now: keep it, so the next connect can use short auth.
        self.books
            .with(&paid.proxy_contract, |b| b.secret = Some(secret));
        on_chain(&self.chain, move |c| {
            c.submit(Op::ClientRegister {
                sender: owner,
                client,
                nonce,
            })
        })
        .await?;
        Ok(())
    }

    async fn call(
        &self,
        client: &mut ClientLinkClient<Channel>,
        method: Method,
    ) -> Result<AuthReply, PaymentError> {
        let request = AuthRequest {
            method: Some(method),
        };
        tokio::time::timeout(self.step, client.authorize(request))
            .await
            .map_err(|_| PaymentError::Timeout("authorize"))?
            .map(tonic::Response::into_inner)
            .map_err(|s| PaymentError::Rpc {
                call: "authorize",
                message: cocoon_proto::bounded_text(s.message()).to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cocoon_proto::ProxyParams;

    fn accepted(proxy: &Address, client: &Address) -> ClientAccepted {
        ClientAccepted {
            proxy: Some(ProxyParams {
                public_key: vec![9u8; 32].into(),
                contract_address: proxy.to_hex(),
                ..Default::default()
            }),
            client_contract_address: client.to_hex(),
            ..Default::default()
        }
    }

    #[test]
    fn hello_identity_is_checked() {
        let chain = cocoon_chain::LocalChain::new(Default::default());
        let owner = Address::parse_owner("alice");
        let proxy = Address::wallet("proxy");
        let client = Address::client_contract(&proxy, &owner);
        let paid =
            PaidProxy::from_hello(&accepted(&proxy, &client), &owner, chain.as_ref()).unwrap();
        assert_eq!(paid.client_contract, client);
        assert_eq!(paid.key, PublicKey([9; 32]));
        let other = Address::client_contract(&proxy, &Address::wallet("bob"));
        let e =
            PaidProxy::from_hello(&accepted(&proxy, &other), &owner, chain.as_ref()).unwrap_err();
        assert!(e.to_string().contains("names client contract"), "{e}");
        let mut a = accepted(&proxy, &client);
        a.proxy.as_mut().unwrap().public_key = vec![1u8; 31].into();
        assert!(PaidProxy::from_hello(&a, &owner, chain.as_ref()).is_err());
        a.proxy = None;
        assert!(PaidProxy::from_hello(&a, &owner, chain.as_ref()).is_err());
        let mut a = accepted(&proxy, &client);
        a.proxy.as_mut().unwrap().contract_address = "nope".into();
        assert!(PaidProxy::from_hello(&a, &owner, chain.as_ref()).is_err());
    }

    #[test]
    fn short_auth_only_with_the_matching_secret() {
        let s = Secret::random();
        assert_eq!(short_auth_secret(&s.hash(), Some(&s)), Some(s.clone()));
        assert_eq!(short_auth_secret(&s.hash(), None), None);
        assert_eq!(short_auth_secret(&[], Some(&s)), None);
        assert_eq!(short_auth_secret(&Secret::random().hash(), Some(&s)), None);
        assert_eq!(short_auth_secret(&s.hash()[..31], Some(&s)), None);
    }
}
