//! Chat templates: the Jinja template a GGUF file carries (`tokenizer.chat_template`) rendered
//! with minijinja exactly as Hugging Face tooling renders it, so prompts (and so prompt token
//! counts) match what other engines build from the same file.

use crate::request::ChatMessage;

/// ChatML, for models whose GGUF has no template.
pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Longest template accepted (real ones are a few KB; a GGUF is untrusted input).
const MAX_TEMPLATE_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the model's chat template is invalid: {0}")]
    Invalid(String),
    #[error("the model's chat template refused the messages: {0}")]
    Render(String),
}

/// A compiled chat template with the special-token strings it may refer to.
pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source` (or ChatML when None).
    pub fn new(
        source: Option<&str>,
        bos_token: String,
        eos_token: String,
    ) -> Result<Self, TemplateError> {
        let source = source.unwrap_or(CHATML);
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError::Invalid(format!(
                "longer than {MAX_TEMPLATE_BYTES} bytes"
            )));
        }
        let mut env = minijinja::Environment::new();
        // Templates written for Python's Jinja call str methods (.strip(), .startswith()…).
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, _> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        });
        // Bounds template work on hostile input (a GGUF from anywhere).
        env.set_fuel(Some(10_000_000));
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| TemplateError::Invalid(e.to_string()))?;
        Ok(Self {
            env,
            bos_token,
            eos_token,
        })
    }

    /// The prompt text for `messages`, ending where the assistant's answer begins.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| TemplateError::Invalid(e.to_string()))?;
        template
            .render(minijinja::context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
            })
            .map_err(|e| TemplateError::Render(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn chatml_fallback() {
        let t = ChatTemplate::new(None, String::new(), String::new()).unwrap();
        assert_eq!(
            t.render(&[msg("user", "hi")]).unwrap(),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn hugging_face_style_templates_work() {
        // Python-isms and raise_exception, as real templates use them.
        let src = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'tool' %}{{ raise_exception('no tools') }}{% endif %}[{{ m['role'] }}]{{ m['content'].strip() }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}";
        let t = ChatTemplate::new(Some(src), "<s>".into(), "</s>".into()).unwrap();
        assert_eq!(
            t.render(&[msg("user", "  hi  ")]).unwrap(),
            "<s>[user]hi[assistant]"
        );
        let err = t.render(&[msg("tool", "x")]).unwrap_err().to_string();
        assert!(err.contains("no tools"), "{err}");
        assert!(ChatTemplate::new(Some("{% for %}"), String::new(), String::new()).is_err());
    }

    #[test]
    fn runaway_templates_are_stopped() {
        let src =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        let t = ChatTemplate::new(Some(src), String::new(), String::new()).unwrap();
        assert!(t.render(&[msg("user", "x")]).is_err());
    }
}
