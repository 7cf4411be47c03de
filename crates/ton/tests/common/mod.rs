//! A local HTTP server answering like a TON HTTP API (toncenter v2): scripted answers per
//! method, recorded bodies from `tests/recorded/`, and a log of what it was asked.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// One canned answer.
#[derive(Clone)]
pub struct Canned {
    pub status: u16,
    pub retry_after: Option<&'static str>,
    pub body: String,
}

pub fn recorded(name: &str) -> Canned {
    let path = format!("{}/tests/recorded/{name}.json", env!("CARGO_MANIFEST_DIR"));
    Canned {
        status: 200,
        retry_after: None,
        body: std::fs::read_to_string(path).unwrap(),
    }
}

pub fn failure(status: u16, retry_after: Option<&'static str>, body: &str) -> Canned {
    Canned {
        status,
        retry_after,
        body: body.into(),
    }
}

/// What the server saw of one request.
#[derive(Clone, Debug)]
pub struct Hit {
    pub method: String,
    pub query: String,
    pub api_key: Option<String>,
    pub body: String,
}

#[derive(Clone, Default)]
pub struct Server {
    script: Arc<Mutex<HashMap<String, VecDeque<Canned>>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Server {
    pub fn then(&self, method: &str, answers: Vec<Canned>) {
        self.script
            .lock()
            .unwrap()
            .entry(method.into())
            .or_default()
            .extend(answers);
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

async fn answer(
    State(server): State<Server>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    server.hits.lock().unwrap().push(Hit {
        method: method.clone(),
        query: query.unwrap_or_default(),
        api_key: headers
            .get("x-api-key")
            .map(|v| v.to_str().unwrap().to_string()),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let canned = server
        .script
        .lock()
        .unwrap()
        .get_mut(&method)
        .and_then(VecDeque::pop_front);
    match canned {
        Some(c) => {
            let mut r = (StatusCode::from_u16(c.status).unwrap(), c.body).into_response();
            if let Some(s) = c.retry_after {
                r.headers_mut().insert("retry-after", s.parse().unwrap());
            }
            r
        }
        None => (StatusCode::NOT_FOUND, "no canned answer").into_response(),
    }
}

pub async fn serve() -> (Server, String) {
    let server = Server::default();
    let app = Router::new()
        .route("/api/v2/{method}", any(answer))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v2", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (server, url)
}
