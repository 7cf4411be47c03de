//! Parsing of every TDX quote shape we accept, real or simulated: quote v4 (TD report 1.0 body)
//! and quote v5 (a typed body: TD report 1.0, 1.5, or 1.5 "ex"). All TD bodies start with the
//! TD report 1.0 fields, which carry everything the image hash and report data checks need; the
//! 1.5 extensions are kept verbatim.
//!
//! ```text
//! v4: header (48) ‖ TD report 1.0 (584)                     ‖ sig_len u32 ‖ sig data
//! v5: header (48) ‖ body_type u16 ‖ body_size u32 ‖ body    ‖ sig_len u32 ‖ sig data
//!     body_type 2 = TD 1.0 (584), 3 = TD 1.5 (648: + tee_tcb_svn2 [16] + mr_servicetd [48]),
//!     4 = TD 1.5 ex (885)
//! ```
//! This parser does not verify anything cryptographic: `sim` quotes are checked by
//! [`crate::sim`], real ones by dcap-qvl ([`crate::tdx`]). It exists so both paths report the
//! same measurements from the same bytes, and it never panics on any input.

use crate::quote::{QuoteHeader, Reader, TdReport10};
use crate::AttestError;

pub const QUOTE_VERSION_5: u16 = 5;
pub const BODY_TD10: u16 = 2;
pub const BODY_TD15: u16 = 3;
pub const BODY_TD15_EX: u16 = 4;
const TD15_LEN: usize = 648;
const TD15_EX_LEN: usize = 885;

/// Which TD report a quote carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TdBodyKind {
    /// TDX 1.0 report (quote v4, or v5 body type 2).
    Td10,
    /// TDX 1.5 report (v5 body type 3).
    Td15,
    /// TDX 1.5 report with the "ex" fields (v5 body type 4).
    Td15Ex,
}

impl std::fmt::Display for TdBodyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TdBodyKind::Td10 => "TD10",
            TdBodyKind::Td15 => "TD15",
            TdBodyKind::Td15Ex => "TD15ex",
        })
    }
}

/// A structurally valid TDX quote (v4 or v5), not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdQuote {
    pub header: QuoteHeader,
    pub body_kind: TdBodyKind,
    /// The TD report 1.0 fields (common prefix of every TD body).
    pub body: TdReport10,
    /// Body bytes after the TD 1.0 prefix (TD 1.5: tee_tcb_svn2 ‖ mr_servicetd ‖ …), verbatim.
    pub body_ext: Vec<u8>,
    /// The signature data (ECDSA signature, attestation key, certification data), verbatim.
    pub sig_data: Vec<u8>,
    /// DER certificates of the PCK chain carried in the quote (leaf first); empty for sim.
    pub pck_chain: Vec<Vec<u8>>,
}

impl TdQuote {
    /// Strictly parse a TDX quote v4 or v5 with an ECDSA-P256 attestation key.
    pub fn parse(raw: &[u8]) -> Result<Self, AttestError> {
        let (header, mut r) = crate::quote::read_tdx_ecdsa_header(raw)?;
        let (body_kind, body_len) = match header.version {
            crate::quote::QUOTE_VERSION_4 => (TdBodyKind::Td10, crate::quote::TD_REPORT10_LEN),
            QUOTE_VERSION_5 => {
                r.what = "body descriptor";
                let body_type = r.u16()?;
                let size = r.u32()?;
                let (kind, len) = match body_type {
                    BODY_TD10 => (TdBodyKind::Td10, crate::quote::TD_REPORT10_LEN),
                    BODY_TD15 => (TdBodyKind::Td15, TD15_LEN),
                    BODY_TD15_EX => (TdBodyKind::Td15Ex, TD15_EX_LEN),
                    other => {
                        return Err(AttestError::quote(format!(
                            "unsupported v5 body type {other}"
                        )))
                    }
                };
                if u64::from(size) != len as u64 {
                    return Err(AttestError::quote(format!(
                        "{kind} body size {size}, expected {len}"
                    )));
                }
                (kind, len)
            }
            v => return Err(AttestError::quote(format!("unsupported version {v}"))),
        };
        r.what = "TD report body";
        let body = TdReport10::read(&mut r)?;
        let body_ext = r.bytes(body_len - crate::quote::TD_REPORT10_LEN)?.to_vec();
        r.what = "signature data length";
        let sig_len = r.u32()?;
        r.what = "signature data";
        let sig_data = r.bytes(sig_len as usize)?.to_vec();
        let pck_chain = check_sig_data(&sig_data)?;
        // Quote generators may pad the quote with zeros. Padding is covered by no signature, so
        // only zeros are tolerated: any other trailing byte is unsigned input and refused.
        if r.buf.iter().any(|&b| b != 0) {
            return Err(AttestError::quote(format!(
                "{} trailing bytes after the signature data are not zero padding",
                r.buf.len()
            )));
        }
        Ok(TdQuote {
            header,
            body_kind,
            body,
            body_ext,
            sig_data,
            pck_chain,
        })
    }
}

/// Certification data types (Intel DCAP): 5 = PCK certificate chain (PEM), 6 = QE report
/// certification data (QE report, its signature, QE auth data, nested certification data).
const CERT_PCK_CHAIN: u16 = 5;
const CERT_QE_REPORT: u16 = 6;
const QE_REPORT_LEN: usize = 384;

/// Every length inside the signature data must account for exactly the bytes present, and the
/// PEM certificate chain must be in canonical form, so that no byte of a quote is left that no
/// check depends on (the PEM text is not signed; only the certificates inside it are).
fn check_sig_data(sig_data: &[u8]) -> Result<Vec<Vec<u8>>, AttestError> {
    let mut r = Reader {
        buf: sig_data,
        what: "signature data",
    };
    r.bytes(64 + 64)?; // ECDSA signature, attestation key
    let (cert_type, data) = cert_data(&mut r)?;
    if cert_type == crate::sim::CERT_DATA_TYPE_SIM {
        return Ok(Vec::new()); // its chain is checked by crate::sim
    }
    if cert_type != CERT_QE_REPORT {
        return Err(AttestError::quote(format!(
            "certification data type {cert_type}, expected {CERT_QE_REPORT} (QE report)"
        )));
    }
    let mut r = Reader {
        buf: data,
        what: "QE report certification data",
    };
    r.bytes(QE_REPORT_LEN + 64)?; // QE report, its signature
    let auth_len = r.u16()?;
    r.bytes(usize::from(auth_len))?;
    let (nested_type, nested) = cert_data(&mut r)?;
    if nested_type != CERT_PCK_CHAIN {
        return Err(AttestError::quote(format!(
            "QE certification data type {nested_type}, expected {CERT_PCK_CHAIN} (PCK chain)"
        )));
    }
    check_canonical_pem(nested)
}

/// type u16 ‖ len u32 ‖ data, where data must be exactly the rest of `r`.
fn cert_data<'a>(r: &mut Reader<'a>) -> Result<(u16, &'a [u8]), AttestError> {
    let cert_type = r.u16()?;
    let len = r.u32()?;
    if u64::from(len) != r.buf.len() as u64 {
        return Err(AttestError::quote(format!(
            "{}: certification data length {len} but {} bytes follow",
            r.what,
            r.buf.len()
        )));
    }
    Ok((cert_type, r.buf))
}

/// PEM CERTIFICATE blocks, 64-column base64, LF line ends, no blank lines; zero padding after.
fn check_canonical_pem(text: &[u8]) -> Result<Vec<Vec<u8>>, AttestError> {
    let end = text.len() - text.iter().rev().take_while(|&&b| b == 0).count();
    let text = &text[..end];
    let blocks =
        pem::parse_many(text).map_err(|e| AttestError::quote(format!("PCK chain PEM: {e}")))?;
    let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    let mut canonical = String::new();
    for block in &blocks {
        if block.tag() != "CERTIFICATE" {
            return Err(AttestError::quote(format!(
                "PCK chain has a {:?} block",
                block.tag()
            )));
        }
        canonical.push_str(&pem::encode_config(block, lf));
    }
    if blocks.is_empty() || canonical.as_bytes() != text {
        return Err(AttestError::quote("PCK chain PEM is not in canonical form"));
    }
    Ok(blocks.into_iter().map(|b| b.into_contents()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &[u8] = include_bytes!("../testdata/tdx/tdx_quote");
    const V5_TD15EX: &[u8] = include_bytes!("../testdata/tdx/tdx_quote_td15ex");
    const V5_TD15: &[u8] = include_bytes!("../testdata/tdx/tdx_quote_outdated");

    #[test]
    fn parses_real_v4_and_v5_quotes() {
        let q = TdQuote::parse(V4).unwrap();
        assert_eq!((q.header.version, q.body_kind), (4, TdBodyKind::Td10));
        assert!(q.body_ext.is_empty());
        let q = TdQuote::parse(V5_TD15).unwrap();
        assert_eq!((q.header.version, q.body_kind), (5, TdBodyKind::Td15));
        assert_eq!(q.body_ext.len(), 64);
        let q = TdQuote::parse(V5_TD15EX).unwrap();
        assert_eq!((q.header.version, q.body_kind), (5, TdBodyKind::Td15Ex));
        assert_eq!(q.body_ext.len(), TD15_EX_LEN - 584);
    }

    #[test]
    fn measurements_agree_with_dcap_qvl() {
        for raw in [V4, V5_TD15, V5_TD15EX] {
            let ours = TdQuote::parse(raw).unwrap().body;
            let theirs = dcap_qvl::quote::Quote::parse(raw).unwrap();
            let td10 = theirs.report.as_td10().unwrap();
            assert_eq!(ours.mrtd, td10.mr_td);
            assert_eq!(
                ours.rtmr,
                [td10.rt_mr0, td10.rt_mr1, td10.rt_mr2, td10.rt_mr3]
            );
            assert_eq!(ours.mrconfigid, td10.mr_config_id);
            assert_eq!(ours.mrowner, td10.mr_owner);
            assert_eq!(ours.mrownerconfig, td10.mr_owner_config);
            assert_eq!(ours.report_data, td10.report_data);
        }
    }

    #[test]
    fn every_truncation_is_refused_and_nothing_panics() {
        for raw in [V4, V5_TD15EX] {
            let signed_end = raw.len() - raw.iter().rev().take_while(|&&b| b == 0).count();
            for cut in 0..signed_end.min(raw.len() - 1) {
                assert!(TdQuote::parse(&raw[..cut]).is_err(), "prefix {cut} parsed");
            }
            // Zero padding is tolerated, anything else after the signature data is not.
            let mut longer = raw.to_vec();
            longer.push(0);
            TdQuote::parse(&longer).unwrap();
            longer.push(1);
            assert!(TdQuote::parse(&longer).is_err());
            // Every single-byte corruption of the structural prefix parses or errors, never panics.
            for i in 0..64 {
                let mut bad = raw.to_vec();
                bad[i] = 0xff;
                let _ = TdQuote::parse(&bad);
            }
        }
    }
}
