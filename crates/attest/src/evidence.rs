//! Evidence generation: our Ed25519 key and the self-signed RA-TLS certificate carrying the
//! evidence kind, quote and claims extensions (layout in the crate docs). An [`Identity`] can be
//! renewed in place ([`Identity::renew`]): TLS configs built from it present the current
//! certificate on every new handshake, established connections are untouched.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rand::RngCore;
use rcgen::{CertificateParams, CustomExtension, DnType, KeyPair, SerialNumber};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use time::{Duration, OffsetDateTime};

use crate::claims::{report_data, Claims};
use crate::td_quote::TdQuote;
use crate::{sim, tsm, AttestError, EvidenceKind, Measurements};
use crate::{OID_CLAIMS, OID_EVIDENCE_KIND, OID_QUOTE};

/// Certificates are short-lived (DESIGN §5): renew before [`Identity::expires_at`].
pub const CERT_VALIDITY: Duration = Duration::days(1);
/// Back-dating tolerates peers whose clocks run a little behind ours.
pub const CERT_BACKDATE: Duration = Duration::minutes(5);

/// Our TLS key and RA-TLS certificate. Cheap to clone; clones share the current certificate, so
/// [`Identity::renew`] on one is seen by all (and by the TLS configs built from any of them).
#[derive(Clone)]
pub struct Identity(pub(crate) Arc<Shared>);

pub(crate) struct Shared {
    kind: EvidenceKind,
    measurements: Measurements,
    binding: Binding,
    current: RwLock<Arc<Inner>>,
}

/// One generation of key and certificate.
pub(crate) struct Inner {
    pub(crate) public_key: [u8; 32],
    pub(crate) image_hash: Option<[u8; 32]>,
    pub(crate) cert: CertificateDer<'static>,
    pub(crate) certified: Arc<CertifiedKey>,
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
}

/// How the evidence relates to the certificate key. Everything but `Own` exists to prove the
/// verifiers refuse it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binding {
    /// Claims carry our key; the quote's report data is SHA-512 of those claims.
    Own,
    /// Claims carry our key, but the quote was made for another key's claims (lifted quote).
    LiftedQuote,
    /// Claims (and the quote over them) carry another key, copied from another certificate.
    ForeignClaims,
}

impl Identity {
    /// Fresh key and certificate with `kind` evidence over `measurements` (ignored for `none`).
    pub fn generate(
        kind: EvidenceKind,
        measurements: &Measurements,
    ) -> Result<Identity, AttestError> {
        Self::generate_bound(kind, measurements, Binding::Own)
    }

    /// TEST AID: a certificate whose evidence binds ANOTHER key, as if lifted from another
    /// certificate (`sim`: a quote over another key's claims; `none`: claims naming another
    /// key). Verifiers must refuse it.
    #[doc(hidden)]
    pub fn generate_with_foreign_binding(
        kind: EvidenceKind,
        measurements: &Measurements,
    ) -> Result<Identity, AttestError> {
        let binding = match kind {
            EvidenceKind::None => Binding::ForeignClaims,
            EvidenceKind::Sim | EvidenceKind::Tdx => Binding::LiftedQuote,
        };
        Self::generate_bound(kind, measurements, binding)
    }

    pub(crate) fn generate_bound(
        kind: EvidenceKind,
        measurements: &Measurements,
        binding: Binding,
    ) -> Result<Identity, AttestError> {
        let inner = issue(kind, measurements, binding)?;
        Ok(Identity(Arc::new(Shared {
            kind,
            measurements: *measurements,
            binding,
            current: RwLock::new(Arc::new(inner)),
        })))
    }

    /// New key and certificate (fresh evidence, new validity window) for the same kind and
    /// measurements, swapped in atomically: handshakes from now on present the new certificate;
    /// connections already established keep theirs.
    pub fn renew(&self) -> Result<(), AttestError> {
        let inner = issue(self.0.kind, &self.0.measurements, self.0.binding)?;
        *self.0.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(inner);
        Ok(())
    }

    /// The current generation (key, certificate).
    pub(crate) fn current(&self) -> Arc<Inner> {
        self.0
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Generate a key and a certificate carrying `kind` evidence.
fn issue(
    kind: EvidenceKind,
    measurements: &Measurements,
    binding: Binding,
) -> Result<Inner, AttestError> {
    let key = new_key()?;
    let public_key = ed25519_public(&key)?;
    let other_claims =
        || -> Result<Vec<u8>, AttestError> { Claims::new(ed25519_public(&new_key()?)?).encode() };
    let own_claims = Claims::new(public_key).encode()?;
    let (claims, quoted_claims) = match binding {
        Binding::Own => (own_claims.clone(), own_claims),
        Binding::LiftedQuote => (own_claims, other_claims()?),
        Binding::ForeignClaims => {
            let c = other_claims()?;
            (c.clone(), c)
        }
    };
    let (quote, image_hash) = match kind {
        EvidenceKind::None => (None, None),
        EvidenceKind::Sim => (
            Some(sim::build_quote(
                measurements,
                &report_data(&quoted_claims),
            )?),
            Some(measurements.image_hash()),
        ),
        // Real hardware measures the TD; the configured measurements play no part.
        EvidenceKind::Tdx => {
            let quote = tsm::tdx_quote(&report_data(&quoted_claims))?;
            let body = TdQuote::parse(&quote)?.body;
            (Some(quote), Some(body.measurements().image_hash()))
        }
    };
    let now = OffsetDateTime::now_utc();
    let mut params = cert_params(kind, quote, claims);
    params.not_before = now - CERT_BACKDATE;
    params.not_after = now + CERT_VALIDITY;
    let cert = params
        .self_signed(&key)
        .map_err(|e| AttestError::KeyGen(e.to_string()))?;
    let cert = cert.der().clone();
    let certified = certified_key(&key, cert.clone())?;
    Ok(Inner {
        public_key,
        image_hash,
        cert,
        certified,
        not_before: SystemTime::from(params.not_before),
        not_after: SystemTime::from(params.not_after),
    })
}

impl Identity {
    /// Our current Ed25519 TLS public key (raw 32 bytes); changes on [`Identity::renew`].
    pub fn public_key(&self) -> [u8; 32] {
        self.current().public_key
    }

    pub fn kind(&self) -> EvidenceKind {
        self.0.kind
    }

    /// Image hash of the measurements in our quote; `None` for `none` evidence.
    pub fn image_hash(&self) -> Option<[u8; 32]> {
        self.current().image_hash
    }

    /// DER of our current certificate.
    pub fn cert_der(&self) -> Vec<u8> {
        self.current().cert.to_vec()
    }

    /// Start of the current certificate's validity (back-dated by [`CERT_BACKDATE`]).
    pub fn issued_at(&self) -> SystemTime {
        self.current().not_before
    }

    /// End of the current certificate's validity; [`Identity::renew`] before then.
    pub fn expires_at(&self) -> SystemTime {
        self.current().not_after
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        let cur = self.current();
        f.debug_struct("Identity")
            .field("kind", &self.0.kind)
            .field("public_key", &hex::encode(cur.public_key))
            .field("image_hash", &cur.image_hash.map(hex::encode))
            .finish()
    }
}

pub(crate) fn new_key() -> Result<KeyPair, AttestError> {
    KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(|e| AttestError::KeyGen(e.to_string()))
}

pub(crate) fn ed25519_public(key: &KeyPair) -> Result<[u8; 32], AttestError> {
    key.public_key_raw()
        .try_into()
        .map_err(|_| AttestError::KeyGen("Ed25519 public key is not 32 bytes".into()))
}

/// Certificate parameters with the RA-TLS extensions; validity is left to the caller.
pub(crate) fn cert_params(
    kind: EvidenceKind,
    quote: Option<Vec<u8>>,
    claims: Vec<u8>,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(DnType::CommonName, "cocoon");
    params.distinguished_name = dn;
    let mut serial = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut serial);
    // Positive, and no leading zero byte so the DER INTEGER keeps all 16 bytes.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params
        .custom_extensions
        .push(critical_ext(OID_EVIDENCE_KIND, vec![kind.to_byte()]));
    if let Some(q) = quote {
        params.custom_extensions.push(critical_ext(OID_QUOTE, q));
    }
    params
        .custom_extensions
        .push(critical_ext(OID_CLAIMS, claims));
    params
}

/// A critical extension whose extnValue OCTET STRING holds `content` as-is.
pub(crate) fn critical_ext(oid: &[u64], content: Vec<u8>) -> CustomExtension {
    let mut ext = CustomExtension::from_oid_content(oid, content);
    ext.set_criticality(true);
    ext
}

/// Our cert and key for rustls. `CertifiedKey::new` does not parse the certificate with webpki,
/// which would refuse our critical extensions (see dependencies.md §2).
pub(crate) fn certified_key(
    key: &KeyPair,
    cert: CertificateDer<'static>,
) -> Result<Arc<CertifiedKey>, AttestError> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signer = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| AttestError::KeyGen(format!("load TLS key: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(vec![cert], signer)))
}
