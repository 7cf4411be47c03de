//! A GGUF model loaded through llama.cpp: weights (or only the vocabulary, for counting),
//! the chat template from its metadata, and tokenization.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::prompt::{ChatTemplate, TemplateError};
use crate::request::PromptInput;

/// Longest prompt text tokenized, in bytes (the worker caps bodies lower; this guards
/// direct callers).
pub const MAX_PROMPT_BYTES: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {0} does not exist (run `cocoon model fetch` for the default model, or pass --model PATH)")]
    Missing(PathBuf),
    #[error("llama.cpp could not start: {0}")]
    Backend(String),
    #[error("cannot load model {path}: {reason} (is it a GGUF file?)")]
    Load { path: PathBuf, reason: String },
    #[error("{0}")]
    Template(#[from] TemplateError),
}

/// llama.cpp's process-wide state: initialised once, never torn down.
pub(crate) fn backend() -> Result<&'static LlamaBackend, ModelError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs every tensor it loads to stderr; keep only warnings and errors,
            // through tracing like the rest of the process.
            // SAFETY: `forward_log` is a plain function that lives for the whole process.
            unsafe { llama_cpp_sys_2::llama_log_set(Some(forward_log), std::ptr::null_mut()) };
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ModelError::Backend(e.clone()))
}

/// llama.cpp's log callback: warnings and errors go to tracing, the rest is dropped.
unsafe extern "C" fn forward_log(
    level: llama_cpp_sys_2::ggml_log_level,
    text: *const std::os::raw::c_char,
    _user_data: *mut std::os::raw::c_void,
) {
    if text.is_null()
        || (level != llama_cpp_sys_2::GGML_LOG_LEVEL_WARN
            && level != llama_cpp_sys_2::GGML_LOG_LEVEL_ERROR)
    {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string valid for the call.
    let text = unsafe { std::ffi::CStr::from_ptr(text) }.to_string_lossy();
    let text = text.trim_end();
    if level == llama_cpp_sys_2::GGML_LOG_LEVEL_ERROR {
        tracing::error!(target: "llama.cpp", "{text}");
    } else {
        tracing::warn!(target: "llama.cpp", "{text}");
    }
}

/// A loaded GGUF model.
pub struct Model {
    pub(crate) llama: LlamaModel,
    template: ChatTemplate,
    bos_text: String,
    adds_bos: bool,
    /// Context length the model was trained for.
    pub train_context: u32,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("train_context", &self.train_context)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Loads the model's weights (memory-mapped) for inference.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::open(path, false)
    }

    /// Loads only the vocabulary and metadata (milliseconds, a few MB): enough to build
    /// prompts and count tokens.
    pub fn load_vocab(path: &Path) -> Result<Self, ModelError> {
        Self::open(path, true)
    }

    fn open(path: &Path, vocab_only: bool) -> Result<Self, ModelError> {
        if !path.is_file() {
            return Err(ModelError::Missing(path.to_path_buf()));
        }
        let backend = backend()?;
        let params = LlamaModelParams::default().with_vocab_only(vocab_only);
        let llama =
            LlamaModel::load_from_file(backend, path, &params).map_err(|e| ModelError::Load {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let vocab = llama.vocab();
        let special_text = |t: LlamaToken| {
            String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned()
        };
        let bos_text = special_text(vocab.bos());
        let eos_text = special_text(vocab.eos());
        let adds_bos = vocab.should_add_bos();
        let source = llama.meta_val_str("tokenizer.chat_template").ok();
        if source.is_none() {
            tracing::warn!("model has no chat template in its metadata; using ChatML");
        }
        let template = ChatTemplate::new(source.as_deref(), bos_text.clone(), eos_text)?;
        let train_context = llama.n_ctx_train();
        Ok(Self {
            llama,
            template,
            bos_text,
            adds_bos,
            train_context,
        })
    }

    /// The prompt text for a request (the chat template applied to chat messages).
    pub fn prompt_text(&self, input: &PromptInput) -> Result<String, TemplateError> {
        match input {
            PromptInput::Chat(messages) => self.template.render(messages),
            PromptInput::ChatContinued { messages, partial } => self
                .template
                .render(messages)
                .map(|prompt| prompt + partial),
            PromptInput::Text(text) => Ok(text.clone()),
        }
    }

    /// Tokens of a prompt, with the model's BOS when it wants one (once: templates that
    /// write the BOS text themselves do not get a second).
    pub fn tokenize_prompt(&self, text: &str) -> Vec<LlamaToken> {
        let text = &text[..floor_char_boundary(text, MAX_PROMPT_BYTES)];
        let template_wrote_bos = !self.bos_text.is_empty() && text.starts_with(&self.bos_text);
        let add_special = self.adds_bos && !template_wrote_bos;
        self.llama
            .vocab()
            .tokenize(text.as_bytes(), add_special, true)
    }

    /// Number of tokens `text` is when generated (no BOS).
    pub fn count_text(&self, text: &str) -> u64 {
        let text = &text[..floor_char_boundary(text, MAX_PROMPT_BYTES)];
        self.llama
            .vocab()
            .tokenize(text.as_bytes(), false, true)
            .len() as u64
    }
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}
