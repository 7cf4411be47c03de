//! [`Engine`] over an OpenAI-compatible HTTP server (vLLM, SGLang, llama.cpp server, ...).

use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::header::{AUTHORIZATION, CONTENT_TYPE};

use crate::{Engine, EngineError, EngineResponse};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Client of an OpenAI-compatible upstream at `base_url` (which includes the `/v1` part).
#[derive(Clone, Debug)]
pub struct HttpEngine {
    client: reqwest::Client,
    /// Without the trailing slash, e.g. `http://127.0.0.1:8000/v1`.
    base: String,
    auth: Option<String>,
}

impl HttpEngine {
    /// `base_url` is e.g. `http://127.0.0.1:8000/v1`. Only plain http is supported: the engine runs
    /// next to the worker inside the same trust boundary, and no TLS backend is compiled in.
    pub fn new(base_url: &str, api_key: Option<String>) -> Result<Self, EngineError> {
        let url = reqwest::Url::parse(base_url)
            .map_err(|e| EngineError::InvalidUrl(format!("{base_url}: {e}")))?;
        if url.scheme() != "http" {
            return Err(EngineError::InvalidUrl(format!(
                "{base_url}: only http:// is supported"
            )));
        }
        if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
            return Err(EngineError::InvalidUrl(format!(
                "{base_url}: expected http://host[:port][/path]"
            )));
        }
        // No total timeout: generations can legitimately run for minutes and the caller enforces
        // its own deadline. No proxy: a system HTTP_PROXY must never see local engine traffic.
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| EngineError::Http(e.to_string()))?;
        Ok(Self {
            client,
            base: url.as_str().trim_end_matches('/').to_owned(),
            auth: api_key.map(|k| format!("Bearer {k}")),
        })
    }

    fn url(&self, path: &str) -> Result<String, EngineError> {
        let rest = path
            .strip_prefix("/v1")
            .filter(|r| r.starts_with('/'))
            .ok_or_else(|| EngineError::InvalidUrl(format!("path must start with /v1/: {path}")))?;
        Ok(format!("{}{rest}", self.base))
    }

    fn with_auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Some(auth) => req.header(AUTHORIZATION, auth),
            None => req,
        }
    }
}

fn map_err(e: reqwest::Error) -> EngineError {
    if e.is_timeout() {
        EngineError::Timeout
    } else if e.is_connect() {
        EngineError::Unreachable(e.to_string())
    } else {
        EngineError::Http(e.to_string())
    }
}

#[async_trait::async_trait]
impl Engine for HttpEngine {
    async fn health(&self) -> Result<(), EngineError> {
        let req = self
            .client
            .get(format!("{}/models", self.base))
            .timeout(HEALTH_TIMEOUT);
        let resp = self.with_auth(req).send().await.map_err(map_err)?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(EngineError::BadResponse(format!("GET /models: {status}")))
        }
    }

    async fn call(&self, path: &str, body: Bytes) -> Result<EngineResponse, EngineError> {
        let req = self
            .client
            .post(self.url(path)?)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let resp = self.with_auth(req).send().await.map_err(map_err)?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(EngineResponse {
            status: resp.status().as_u16(),
            content_type,
            // Owning the response inside the stream ties the connection's life to the stream:
            // dropping it closes the connection, which is how the engine learns to stop.
            body: resp.bytes_stream().map_err(map_err).boxed(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_building() {
        let e = HttpEngine::new("http://127.0.0.1:8000/v1/", None).unwrap();
        assert_eq!(
            e.url("/v1/chat/completions").unwrap(),
            "http://127.0.0.1:8000/v1/chat/completions"
        );
        let e = HttpEngine::new("http://h:1", None).unwrap();
        assert_eq!(e.url("/v1/completions").unwrap(), "http://h:1/completions");
        assert!(e.url("/v2/completions").is_err());
        assert!(e.url("/v1x").is_err());
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "",
            "not a url",
            "https://h/v1",
            "ftp://h/v1",
            "http://h/v1?x=1",
        ] {
            assert!(
                matches!(HttpEngine::new(bad, None), Err(EngineError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }
}
