//! Real TDX quotes through the Linux configfs-tsm interface (Linux >= 6.7,
//! `Documentation/ABI/testing/configfs-tsm`), std only:
//!
//! 1. `mkdir /sys/kernel/config/tsm/report/<name>` (a private report entry);
//! 2. check `provider` is `tdx_guest`; read `generation`;
//! 3. write the 64-byte report data to `inblob`; read the quote from `outblob`;
//! 4. check `generation` advanced by exactly one write (no other writer raced us);
//! 5. `rmdir` the entry.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{AttestError, MAX_QUOTE_LEN};

/// Where the kernel exposes configfs-tsm reports.
pub const TSM_REPORT_DIR: &str = "/sys/kernel/config/tsm/report";
/// The provider name of the TDX guest driver.
pub const TDX_PROVIDER: &str = "tdx_guest";

/// A real TDX quote over `report_data` from this machine's TDX module.
pub fn tdx_quote(report_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
    tdx_quote_at(Path::new(TSM_REPORT_DIR), report_data)
}

/// [`tdx_quote`] with another configfs-tsm report directory (tests).
pub fn tdx_quote_at(root: &Path, report_data: &[u8; 64]) -> Result<Vec<u8>, AttestError> {
    if !root.is_dir() {
        return Err(AttestError::NotInTd(format!(
            "{} does not exist: not running inside a TDX guest (or the kernel lacks \
             configfs-tsm, Linux >= 6.7, or configfs is not mounted)",
            root.display()
        )));
    }
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "cocoon-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let entry = Entry(root.join(name));
    fs::create_dir(&entry.0)
        .map_err(|e| AttestError::NotInTd(format!("cannot create {}: {e}", entry.0.display())))?;
    let provider = read_text(&entry.0, "provider")?;
    if provider != TDX_PROVIDER {
        return Err(AttestError::NotInTd(format!(
            "configfs-tsm provider is {provider:?}, not {TDX_PROVIDER:?}"
        )));
    }
    let before = generation(&entry.0)?;
    fs::write(entry.0.join("inblob"), report_data).map_err(|e| io("write inblob", e))?;
    let quote = fs::read(entry.0.join("outblob")).map_err(|e| io("read outblob", e))?;
    let after = generation(&entry.0)?;
    if after != before.wrapping_add(1) {
        return Err(AttestError::QuoteGeneration(format!(
            "report entry changed concurrently (generation {before} -> {after})"
        )));
    }
    if quote.is_empty() || quote.len() > MAX_QUOTE_LEN {
        return Err(AttestError::QuoteGeneration(format!(
            "outblob has {} bytes",
            quote.len()
        )));
    }
    Ok(quote)
}

/// The report entry, removed when dropped (whatever happened).
struct Entry(PathBuf);

impl Drop for Entry {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

fn io(what: &str, e: std::io::Error) -> AttestError {
    AttestError::QuoteGeneration(format!("{what}: {e}"))
}

fn read_text(dir: &Path, file: &str) -> Result<String, AttestError> {
    fs::read_to_string(dir.join(file))
        .map(|s| s.trim().to_string())
        .map_err(|e| io(&format!("read {file}"), e))
}

fn generation(dir: &Path) -> Result<u64, AttestError> {
    let text = read_text(dir, "generation")?;
    text.parse()
        .map_err(|_| AttestError::QuoteGeneration(format!("generation {text:?} is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_error_outside_a_td() {
        let missing = std::env::temp_dir().join("cocoon-no-such-tsm-dir");
        let err = tdx_quote_at(&missing, &[0; 64]).unwrap_err();
        assert!(
            matches!(err, AttestError::NotInTd(ref m) if m.contains("not running inside a TDX guest")),
            "{err}"
        );
        // This machine: either a real TD (then a quote comes back) or the same clear error.
        match tdx_quote(&[1; 64]) {
            Ok(q) => {
                crate::td_quote::TdQuote::parse(&q).unwrap();
            }
            Err(e) => assert!(matches!(e, AttestError::NotInTd(_)), "{e}"),
        }
    }

    #[test]
    fn wrong_provider_is_not_a_td() {
        // A directory where the kernel would create the entry files; here nothing appears, so
        // reading `provider` fails with a generation error and the entry is cleaned up.
        let root = std::env::temp_dir().join(format!("cocoon-tsm-test-{}", std::process::id()));
        fs::create_dir_all(&root).unwrap();
        let err = tdx_quote_at(&root, &[0; 64]).unwrap_err();
        assert!(
            matches!(err, AttestError::QuoteGeneration(ref m) if m.contains("provider")),
            "{err}"
        );
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0, "entry not removed");
        fs::remove_dir(&root).unwrap();
    }

    #[test]
    fn generating_tdx_identity_outside_a_td_fails_clearly() {
        if std::path::Path::new(TSM_REPORT_DIR).exists() {
            return;
        }
        let err = crate::Identity::generate(
            crate::EvidenceKind::Tdx,
            &crate::Measurements::for_label("x"),
        )
        .unwrap_err();
        assert!(matches!(err, AttestError::NotInTd(_)), "{err}");
    }
}
