//! The test engine called in process (no sockets), for the scale section: thousands of streams
//! would otherwise need thousands of worker→engine connections (two descriptors each) in this
//! process, and that hop is not what the scale section measures.

use axum::body::Body;
use bytes::Bytes;
use cocoon_engine::test_engine::{TestEngine, TestEngineConfig};
use cocoon_engine::{Engine, EngineError, EngineResponse};
use futures::{StreamExt, TryStreamExt};
use tower::ServiceExt;

/// [`Engine`] that hands each request straight to a [`TestEngine`]'s router.
#[derive(Clone)]
pub struct InProcessEngine {
    router: axum::Router,
}

impl InProcessEngine {
    pub fn new(config: TestEngineConfig) -> Self {
        InProcessEngine {
            router: TestEngine::new(config).router(),
        }
    }
}

#[async_trait::async_trait]
impl Engine for InProcessEngine {
    async fn health(&self) -> Result<(), EngineError> {
        Ok(())
    }

    async fn call(&self, path: &str, body: Bytes) -> Result<EngineResponse, EngineError> {
        let request = http::Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .map_err(|e| EngineError::InvalidUrl(e.to_string()))?;
        let response = match self.router.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(EngineResponse {
            status: response.status().as_u16(),
            content_type,
            body: response
                .into_body()
                .into_data_stream()
                .map_err(|e| EngineError::Http(e.to_string()))
                .boxed(),
        })
    }
}

/// The body chunks the test engine produces for one chat request (as the worker sends it:
/// streaming with `include_usage`), for hot-path benches that want real bytes.
pub async fn engine_sample(chunks: u32, chunk_size: usize, streaming: bool) -> Vec<Bytes> {
    let engine = InProcessEngine::new(TestEngineConfig {
        models: vec![crate::MODEL.into()],
        chunks,
        chunk_size,
        chunk_delay: std::time::Duration::ZERO,
    });
    let body = crate::load::chat_body(streaming, "hello there cocoon");
    let response = engine
        .call("/v1/chat/completions", body)
        .await
        .expect("in-process engine answers");
    response
        .body
        .map(|c| c.expect("in-process body"))
        .collect()
        .await
}
