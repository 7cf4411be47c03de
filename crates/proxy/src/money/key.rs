//! The proxy's voucher key. In a TDX deployment the seed is sealed to the image (derived
//! from the TD's sealing key); here it lives in `proxy.key` in the state directory, created
//! with mode 0600 on first start. The proxy contract address derives from this key, so the
//! same state directory always serves the same contract.

use super::MoneyError;
use ring::signature::Ed25519KeyPair;
use std::io::Write;
use std::path::Path;

pub(crate) fn load_or_create(path: &Path) -> Result<(Ed25519KeyPair, [u8; 32]), MoneyError> {
    let io = |e: std::io::Error| MoneyError::Key(format!("{}: {e}", path.display()));
    let seed: [u8; 32] = match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim())
                .map_err(|_| MoneyError::Key(format!("{} is not hex", path.display())))?;
            bytes.try_into().map_err(|_| {
                MoneyError::Key(format!("{} must hold 32 bytes of hex", path.display()))
            })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let seed: [u8; 32] = rand::random();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(path).map_err(io)?;
            file.write_all(hex::encode(seed).as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            seed
        }
        Err(e) => return Err(io(e)),
    };
    let key = cocoon_ledger::keypair_from_seed(&seed)
        .map_err(|e| MoneyError::Key(format!("{}: {e}", path.display())))?;
    Ok((key, seed))
}
