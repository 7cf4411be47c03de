//! A node's TON wallet (v4r2 or v5r1, the standard wallet contracts): the external message
//! that makes it send internal messages to the Cocoon contracts. Keys are Ed25519 seeds; the
//! wallet signs the cell hash of its external body, as the wallet contracts check.

use crate::TonError;
use num_bigint::BigUint;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use std::sync::Arc;
use tonlib_core::cell::Cell;
use tonlib_core::message::{CommonMsgInfo, InternalMessage, TonMessage, TransferMessage};
use tonlib_core::wallet::mnemonic::KeyPair;
use tonlib_core::wallet::ton_wallet::TonWallet;
pub use tonlib_core::wallet::wallet_version::WalletVersion;
use tonlib_core::TonAddress;

/// One internal message the wallet sends.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub to: TonAddress,
    /// nanoTON attached (what the contract operation needs plus gas; unused gas comes back
    /// as `excesses`).
    pub value: u64,
    /// Contracts get bounceable messages (a failure returns the value); fresh addresses
    /// (deploys) non-bounceable ones.
    pub bounce: bool,
    pub body: Cell,
    pub state_init: Option<Cell>,
}

pub struct NodeWallet {
    wallet: TonWallet,
}

impl std::fmt::Debug for NodeWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeWallet")
            .field("address", &self.wallet.address.to_hex())
            .field("version", &self.wallet.version)
            .finish_non_exhaustive()
    }
}

impl NodeWallet {
    /// The wallet of the Ed25519 key with this seed (workchain 0, the version's default id).
    pub fn from_seed(seed: &[u8; 32], version: WalletVersion) -> Result<Self, TonError> {
        let public = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|e| TonError::Invalid(format!("wallet key: {e}")))?
            .public_key()
            .as_ref()
            .to_vec();
        // NaCl's secret key layout: seed ‖ public key.
        let key_pair = KeyPair {
            secret_key: [seed.as_slice(), public.as_slice()].concat(),
            public_key: public,
        };
        let wallet =
            TonWallet::new(version, key_pair).map_err(|e| TonError::Cell(e.to_string()))?;
        Ok(NodeWallet { wallet })
    }

    pub fn address(&self) -> &TonAddress {
        &self.wallet.address
    }

    /// A signed external message (BOC) sending `messages`; `seqno` is the wallet's current
    /// one (0 and `deploy` for a wallet not yet on chain), `expire_at` a unix time after which
    /// the network refuses it (so a lost message can safely be re-signed).
    pub fn transfer(
        &self,
        seqno: u32,
        expire_at: u32,
        messages: &[Outgoing],
        deploy: bool,
    ) -> Result<Vec<u8>, TonError> {
        if messages.is_empty() || messages.len() > 4 {
            return Err(TonError::Invalid(format!(
                "a wallet message carries 1 to 4 internal messages, not {}",
                messages.len()
            )));
        }
        let internal = messages
            .iter()
            .map(|m| {
                let info = CommonMsgInfo::InternalMessage(InternalMessage {
                    ihr_disabled: true,
                    bounce: m.bounce,
                    bounced: false,
                    src: TonAddress::NULL,
                    dest: m.to.clone(),
                    value: BigUint::from(m.value),
                    ihr_fee: BigUint::from(0u32),
                    fwd_fee: BigUint::from(0u32),
                    created_lt: 0,
                    created_at: 0,
                });
                let mut t = TransferMessage::new(info, Arc::new(m.body.clone()));
                if let Some(init) = &m.state_init {
                    t.with_state_init(init.clone());
                }
                t.build()
                    .map(Arc::new)
                    .map_err(|e| TonError::Cell(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let external = self
            .wallet
            .create_external_msg(expire_at, seqno, deploy, internal)
            .map_err(|e| TonError::Cell(e.to_string()))?;
        crate::messages::to_boc(external)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages;

    fn outgoing(value: u64) -> Outgoing {
        Outgoing {
            to: crate::parse_address(
                "0:1111111111111111111111111111111111111111111111111111111111111111",
            )
            .unwrap(),
            value,
            bounce: true,
            body: messages::proxy_withdraw(1).unwrap(),
            state_init: None,
        }
    }

    #[test]
    fn external_messages_are_deterministic_and_depend_on_every_input() {
        let w = NodeWallet::from_seed(&[3; 32], WalletVersion::V4R2).unwrap();
        let a = w
            .transfer(5, 1_800_000_000, &[outgoing(10)], false)
            .unwrap();
        assert_eq!(
            a,
            w.transfer(5, 1_800_000_000, &[outgoing(10)], false)
                .unwrap()
        );
        for other in [
            w.transfer(6, 1_800_000_000, &[outgoing(10)], false)
                .unwrap(),
            w.transfer(5, 1_800_000_001, &[outgoing(10)], false)
                .unwrap(),
            w.transfer(5, 1_800_000_000, &[outgoing(11)], false)
                .unwrap(),
        ] {
            assert_ne!(a, other);
        }
        // Deploying carries the wallet's state init.
        let deploy = w.transfer(0, 1_800_000_000, &[outgoing(10)], true).unwrap();
        assert!(
            deploy.len() > a.len() + 500,
            "{} vs {}",
            deploy.len(),
            a.len()
        );
        // A v5 wallet of the same key lives elsewhere.
        let v5 = NodeWallet::from_seed(&[3; 32], WalletVersion::V5R1).unwrap();
        assert_ne!(v5.address(), w.address());
        assert!(messages::from_boc(&a).is_ok());
    }

    #[test]
    fn a_wallet_message_carries_one_to_four_messages() {
        let w = NodeWallet::from_seed(&[3; 32], WalletVersion::V4R2).unwrap();
        assert!(w.transfer(1, 1, &[], false).is_err());
        assert!(w.transfer(1, 1, &vec![outgoing(1); 5], false).is_err());
        assert!(w.transfer(1, 1, &vec![outgoing(1); 4], false).is_ok());
    }
}
