//! Intel TDX quote v4 byte layout: building and strict parsing. Shared by the `sim` verifier and
//! the later real `tdx` one, so both see exactly the same bytes the same way.
//!
//! ```text
//! header (48)   version u16=4 ‖ att_key_type u16=2 ‖ tee_type u32=0x81 ‖ reserved u16 (qe_svn)
//!               ‖ reserved u16 (pce_svn) ‖ qe_vendor_id [16] ‖ user_data [20]
//! body (584)    TD report 1.0 (see [`TdReport10`])
//! sig_len u32   length of the signature data that follows (must be exactly the rest)
//! sig data      ecdsa_sig [64] (r‖s over header‖body) ‖ attestation_key [64] (x‖y)
//!               ‖ cert_data_type u16 ‖ cert_data_len u32 ‖ cert_data
//! ```
//! All integers little-endian. Every length is checked against what is actually there and the
//! whole quote is bounded by [`MAX_QUOTE_LEN`], so no input can panic or allocate unboundedly.

use crate::{AttestError, Measurements, MAX_QUOTE_LEN};

pub const HEADER_LEN: usize = 48;
pub const TD_REPORT10_LEN: usize = 584;
/// Bytes covered by the attestation key's signature: header ‖ body.
pub const SIGNED_LEN: usize = HEADER_LEN + TD_REPORT10_LEN;
pub const QUOTE_VERSION_4: u16 = 4;
pub const ATT_KEY_TYPE_ECDSA_P256: u16 = 2;
pub const TEE_TYPE_TDX: u32 = 0x0000_0081;
/// Intel's QE vendor id (939A7233-F79C-4CA9-940A-0DB3957F0607), as found in real quotes.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];
/// Fixed part of the signature data: signature, key, cert data type and length.
const SIG_DATA_FIXED_LEN: usize = 64 + 64 + 2 + 4;

/// Quote header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteHeader {
    pub version: u16,
    pub att_key_type: u16,
    pub tee_type: u32,
    pub qe_svn: u16,
    pub pce_svn: u16,
    pub qe_vendor_id: [u8; 16],
    pub user_data: [u8; 20],
}

/// TD report body (TDX 1.0), 584 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdReport10 {
    pub tee_tcb_svn: [u8; 16],
    pub mrseam: [u8; 48],
    pub mrsignerseam: [u8; 48],
    pub seam_attributes: [u8; 8],
    pub td_attributes: [u8; 8],
    pub xfam: [u8; 8],
    pub mrtd: [u8; 48],
    pub mrconfigid: [u8; 48],
    pub mrowner: [u8; 48],
    pub mrownerconfig: [u8; 48],
    pub rtmr: [[u8; 48]; 4],
    pub report_data: [u8; 64],
}

/// A parsed quote v4. Every field is kept verbatim, so [`QuoteV4::signed_message`] re-creates
/// exactly the signed bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuoteV4 {
    pub header: QuoteHeader,
    pub body: TdReport10,
    /// ECDSA P-256 signature r‖s over header‖body.
    pub signature: [u8; 64],
    /// Attestation public key x‖y (uncompressed point without the 0x04 prefix).
    pub attestation_key: [u8; 64],
    pub cert_data_type: u16,
    pub cert_data: Vec<u8>,
}

/// Bounds-checked cursor over peer bytes.
pub(crate) struct Reader<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], AttestError> {
        if self.buf.len() < n {
            return Err(AttestError::quote(format!("truncated {}", self.what)));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    pub(crate) fn arr<const N: usize>(&mut self) -> Result<[u8; N], AttestError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }
    pub(crate) fn u16(&mut self) -> Result<u16, AttestError> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, AttestError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
}

impl QuoteHeader {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.att_key_type.to_le_bytes());
        out.extend_from_slice(&self.tee_type.to_le_bytes());
        out.extend_from_slice(&self.qe_svn.to_le_bytes());
        out.extend_from_slice(&self.pce_svn.to_le_bytes());
        out.extend_from_slice(&self.qe_vendor_id);
        out.extend_from_slice(&self.user_data);
        out
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, AttestError> {
        Ok(QuoteHeader {
            version: r.u16()?,
            att_key_type: r.u16()?,
            tee_type: r.u32()?,
            qe_svn: r.u16()?,
            pce_svn: r.u16()?,
            qe_vendor_id: r.arr()?,
            user_data: r.arr()?,
        })
    }
}

impl TdReport10 {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(TD_REPORT10_LEN);
        out.extend_from_slice(&self.tee_tcb_svn);
        out.extend_from_slice(&self.mrseam);
        out.extend_from_slice(&self.mrsignerseam);
        out.extend_from_slice(&self.seam_attributes);
        out.extend_from_slice(&self.td_attributes);
        out.extend_from_slice(&self.xfam);
        for m in [
            &self.mrtd,
            &self.mrconfigid,
            &self.mrowner,
            &self.mrownerconfig,
        ] {
            out.extend_from_slice(m);
        }
        for r in &self.rtmr {
            out.extend_from_slice(r);
        }
        out.extend_from_slice(&self.report_data);
        out
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, AttestError> {
        Ok(TdReport10 {
            tee_tcb_svn: r.arr()?,
            mrseam: r.arr()?,
            mrsignerseam: r.arr()?,
            seam_attributes: r.arr()?,
            td_attributes: r.arr()?,
            xfam: r.arr()?,
            mrtd: r.arr()?,
            mrconfigid: r.arr()?,
            mrowner: r.arr()?,
            mrownerconfig: r.arr()?,
            rtmr: [r.arr()?, r.arr()?, r.arr()?, r.arr()?],
            report_data: r.arr()?,
        })
    }

    /// The measurement registers (everything the image hash covers).
    pub fn measurements(&self) -> Measurements {
        Measurements {
            mrtd: self.mrtd,
            mrconfigid: self.mrconfigid,
            mrowner: self.mrowner,
            mrownerconfig: self.mrownerconfig,
            rtmr: self.rtmr,
        }
    }
}

impl QuoteV4 {
    /// header ‖ body: what the attestation key signs.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut out = self.header.to_bytes();
        out.extend_from_slice(&self.body.to_bytes());
        out
    }

    /// Serialize to the wire layout.
    pub fn encode(&self) -> Result<Vec<u8>, AttestError> {
        let cert_len = u32::try_from(self.cert_data.len())
            .map_err(|_| AttestError::quote("certification data too long"))?;
        let sig_len = u32::try_from(SIG_DATA_FIXED_LEN + self.cert_data.len())
            .map_err(|_| AttestError::quote("signature data too long"))?;
        let mut out = self.signed_message();
        out.extend_from_slice(&sig_len.to_le_bytes());
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.attestation_key);
        out.extend_from_slice(&self.cert_data_type.to_le_bytes());
        out.extend_from_slice(&cert_len.to_le_bytes());
        out.extend_from_slice(&self.cert_data);
        if out.len() > MAX_QUOTE_LEN {
            return Err(AttestError::quote(format!(
                "{} bytes > {MAX_QUOTE_LEN}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Strictly parse a TDX v4 ECDSA-P256 quote. Checks layout and the header's version,
    /// attestation key type and TEE type; does NOT check the signature (see [`crate::sim`]).
    pub fn parse(raw: &[u8]) -> Result<Self, AttestError> {
        let (header, mut r) = read_tdx_ecdsa_header(raw)?;
        if header.version != QUOTE_VERSION_4 {
            return Err(AttestError::quote(format!(
                "unsupported version {}",
                header.version
            )));
        }
        r.what = "TD report body";
        let body = TdReport10::read(&mut r)?;
        r.what = "signature data length";
        let sig_len = r.u32()?;
        // Exact length: trailing bytes after the signature data would be unsigned, unparsed input.
        if u64::from(sig_len) != r.buf.len() as u64 {
            return Err(AttestError::quote(format!(
                "signature data length {sig_len} but {} bytes follow",
                r.buf.len()
            )));
        }
        r.what = "signature data";
        let signature = r.arr()?;
        let attestation_key = r.arr()?;
        let cert_data_type = r.u16()?;
        let cert_len = r.u32()?;
        if u64::from(cert_len) != r.buf.len() as u64 {
            return Err(AttestError::quote(format!(
                "certification data length {cert_len} but {} bytes follow",
                r.buf.len()
            )));
        }
        let cert_data = r.buf.to_vec();
        Ok(QuoteV4 {
            header,
            body,
            signature,
            attestation_key,
            cert_data_type,
            cert_data,
        })
    }
}

/// Bounds the quote's size, reads its header and checks what every quote we accept shares:
/// an ECDSA-P256 attestation key and the TDX TEE type. Callers check the version they parse.
pub(crate) fn read_tdx_ecdsa_header(raw: &[u8]) -> Result<(QuoteHeader, Reader<'_>), AttestError> {
    if raw.len() > MAX_QUOTE_LEN {
        return Err(AttestError::quote(format!(
            "{} bytes > {MAX_QUOTE_LEN}",
            raw.len()
        )));
    }
    let mut r = Reader {
        buf: raw,
        what: "header",
    };
    let header = QuoteHeader::read(&mut r)?;
    if header.att_key_type != ATT_KEY_TYPE_ECDSA_P256 {
        return Err(AttestError::quote(format!(
            "unsupported attestation key type {}",
            header.att_key_type
        )));
    }
    if header.tee_type != TEE_TYPE_TDX {
        return Err(AttestError::quote(format!(
            "tee type {:#x} is not TDX",
            header.tee_type
        )));
    }
    Ok((header, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> QuoteV4 {
        let m = Measurements::for_label("q");
        QuoteV4 {
            header: QuoteHeader {
                version: 4,
                att_key_type: 2,
                tee_type: TEE_TYPE_TDX,
                qe_svn: 0,
                pce_svn: 0,
                qe_vendor_id: INTEL_QE_VENDOR_ID,
                user_data: [0; 20],
            },
            body: TdReport10 {
                tee_tcb_svn: [1; 16],
                mrseam: [2; 48],
                mrsignerseam: [3; 48],
                seam_attributes: [4; 8],
                td_attributes: [5; 8],
                xfam: [6; 8],
                mrtd: m.mrtd,
                mrconfigid: m.mrconfigid,
                mrowner: m.mrowner,
                mrownerconfig: m.mrownerconfig,
                rtmr: m.rtmr,
                report_data: [7; 64],
            },
            signature: [8; 64],
            attestation_key: [9; 64],
            cert_data_type: 0xffff,
            cert_data: vec![],
        }
    }

    #[test]
    fn layout_offsets_match_intel_spec() {
        let q = sample();
        let raw = q.encode().unwrap();
        assert_eq!(raw.len(), 48 + 584 + 4 + 134);
        assert_eq!(&raw[0..2], &[4, 0]);
        assert_eq!(&raw[2..4], &[2, 0]);
        assert_eq!(&raw[4..8], &[0x81, 0, 0, 0]);
        assert_eq!(&raw[12..28], &INTEL_QE_VENDOR_ID);
        // body offsets inside the quote: mrtd at 48+136, report_data at 48+520
        assert_eq!(&raw[184..232], &q.body.mrtd);
        assert_eq!(&raw[568..632], &[7; 64]);
        assert_eq!(&raw[632..636], &134u32.to_le_bytes());
        assert_eq!(&raw[636..700], &[8; 64]);
        assert_eq!(&raw[764..766], &[0xff, 0xff]);
        assert_eq!(QuoteV4::parse(&raw).unwrap(), q);
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let raw = sample().encode().unwrap();
        for cut in 0..raw.len() {
            assert!(QuoteV4::parse(&raw[..cut]).is_err(), "prefix {cut} parsed");
        }
        let mut longer = raw.clone();
        longer.push(0);
        assert!(QuoteV4::parse(&longer).is_err());
        assert!(QuoteV4::parse(&vec![0u8; MAX_QUOTE_LEN + 1]).is_err());
    }

    #[test]
    fn header_fields_checked() {
        let raw = sample().encode().unwrap();
        for (off, what) in [(0, "version"), (2, "key type"), (4, "tee type")] {
            let mut bad = raw.clone();
            bad[off] ^= 1;
            let err = QuoteV4::parse(&bad).unwrap_err().to_string();
            assert!(err.contains("bad quote"), "{what}: {err}");
        }
        // Huge lengths must not allocate or panic.
        let mut bad = raw.clone();
        bad[632..636].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(QuoteV4::parse(&bad).is_err());
        let mut bad = raw;
        bad[766..770].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(QuoteV4::parse(&bad).is_err());
    }
}
