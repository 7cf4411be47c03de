//! The read-only web dashboard every node serves at `/`: one self-contained page (no CDN,
//! works offline) that renders the node's `/jsonstats` every 2 s — balances, spend and
//! proxies for a client; workers with hardware, load, speed and reputation for a proxy;
//! earnings over time, payouts and engine health for a worker. It only reads what
//! `/jsonstats` already shows, so it adds nothing an operator could not see before.

use axum::response::{Html, IntoResponse, Response};

const PAGE: &str = include_str!("dashboard.html");

/// Which node a dashboard is for.
#[derive(Clone, Copy, Debug)]
pub enum DashboardRole {
    Client,
    Proxy,
    Worker,
}

/// The dashboard page for `role`.
pub fn page(role: DashboardRole) -> Response {
    let name = match role {
        DashboardRole::Client => "client",
        DashboardRole::Proxy => "proxy",
        DashboardRole::Worker => "worker",
    };
    (
        [(axum::http::header::CACHE_CONTROL, "no-cache")],
        Html(PAGE.replace("__ROLE__", name)),
    )
        .into_response()
}
