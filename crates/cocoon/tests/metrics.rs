//! `/metrics` on every node after real traffic: the Prometheus text parses (strictly, and
//! with the `prometheus-parse` crate), every label is from the closed sets, no request
//! content or identity leaks, and the counters add up to the traffic sent.

mod common;

use cocoon_engine::test_engine::TestEngineConfig;
use cocoon_net::metrics::is_closed_label;
use common::*;
use prometheus_parse::{Sample, Scrape, Value as PValue};
use serde_json::{json, Value};
use std::time::Duration;

/// Checks an exposition line by line (every line is `# HELP`, `# TYPE` or a well-formed
/// sample whose labels are all in the closed sets), then parses it with `prometheus-parse`
/// and checks that no sample line was skipped. Returns the parsed samples.
fn parse_strict(node: &str, text: &str) -> Vec<Sample> {
    let mut sample_lines = 0;
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        assert!(
            !line.is_empty() && !line.starts_with('#'),
            "{node}: {line:?}"
        );
        sample_lines += 1;
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        assert!(
            value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
            "{node}: bad value in {line}"
        );
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        assert!(
            name.starts_with("cocoon_")
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{node}: bad metric name in {line}"
        );
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').expect("label=value");
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .expect("quoted label value");
            assert!(
                is_closed_label(k, v),
                "{node}: label {k}={v:?} is outside the closed sets"
            );
        }
    }
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
    let parsed: usize = scrape
        .samples
        .iter()
        .map(|s| match &s.value {
            PValue::Histogram(buckets) => buckets.len(),
            _ => 1,
        })
        .sum();
    assert_eq!(
        parsed, sample_lines,
        "{node}: prometheus-parse read every sample"
    );
    scrape.samples
}

/// Σ of the scalar samples of `name` matching `labels`.
fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            PValue::Counter(v) | PValue::Gauge(v) | PValue::Untyped(v) => *v,
            other => panic!("{name} is not a scalar: {other:?}"),
        })
        .sum()
}

/// Observations in the histogram `name` (its +Inf bucket), over every label set.
fn observations(samples: &[Sample], name: &str) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == name)
        .map(|s| match &s.value {
            PValue::Histogram(b) => b
                .iter()
                .find(|c| c.less_than.is_infinite())
                .map_or(0.0, |c| c.count),
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .sum()
}

async fn scrape(net: &Net, addr: std::net::SocketAddr, node: &str) -> (String, Vec<Sample>) {
    let res = net
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics answered");
    assert_eq!(res.status(), 200, "{node}");
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{node}: {content_type}"
    );
    let text = res.text().await.unwrap();
    for secret in [
        "hello there cocoon",
        "no-such-model",
        cocoon_devnet::CLIENT_OWNER,
        "127.0.0.1",
    ] {
        assert!(
            !text.contains(secret),
            "{node}: /metrics contains {secret:?}"
        );
    }
    let samples = parse_strict(node, &text);
    (text, samples)
}

async fn jsonstats(net: &Net, addr: std::net::SocketAddr) -> Value {
    net.http
        .get(format!("http://{addr}/jsonstats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_node_serves_parseable_metrics_that_add_up() {
    let engine = TestEngineConfig {
        chunks: 8,
        chunk_size: 8,
        chunk_delay: Duration::from_millis(2),
        ..Default::default()
    };
    let net = start_simple(2, engine).await;
    let model = net.devnet.model.clone();
    // Traffic: 3 streamed and 2 plain successes, a model nobody serves (refused at the
    // proxy), and a body the client refuses itself.
    let mut spent = 0;
    for stream in [true, false, true, false, true] {
        let res = net
            .post("/v1/chat/completions", &net.chat_body(stream))
            .await;
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        let usage = if stream {
            let events = sse_events(&text);
            let last: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
            last["usage"].clone()
        } else {
            serde_json::from_str::<Value>(&text).unwrap()["usage"].clone()
        };
        spent += usage["total_cost"].as_u64().expect("paid devnet");
    }
    let unknown = json!({"model": "no-such-model", "messages": [{"role": "user", "content": "hello there cocoon"}]});
    let res = net.post("/v1/chat/completions", &unknown).await;
    assert_eq!(res.status(), 404);
    let res = net
        .post("/v1/chat/completions", &json!({"messages": []}))
        .await;
    assert_eq!(res.status(), 400);

    // Usage of `hello there cocoon` with 8 chunks: 7 prompt (1 cached), 8 completion (2
    // reasoning).
    let per_request = [
        ("prompt", 7.0),
        ("cached", 1.0),
        ("completion", 8.0),
        ("reasoning", 2.0),
    ];
    let client = ("role", "client");
    let (_, c) = scrape(&net, net.devnet.client.http_addr, "client").await;
    assert_eq!(
        sum(&c, "cocoon_requests_total", &[client]),
        7.0,
        "all traffic counted"
    );
    let outcome = |s: &[Sample], o| sum(s, "cocoon_requests_total", &[("outcome", o)]);
    assert_eq!(
        (
            outcome(&c, "success"),
            outcome(&c, "refused"),
            outcome(&c, "error")
        ),
        (5.0, 2.0, 0.0)
    );
    let served = [("model", model.as_str()), ("outcome", "success")];
    assert_eq!(sum(&c, "cocoon_requests_total", &served), 5.0);
    let other = [("model", "other"), ("outcome", "refused")];
    assert_eq!(
        sum(&c, "cocoon_requests_total", &other),
        2.0,
        "app-typed names fold into other"
    );
    let code = |s: &[Sample], c| sum(s, "cocoon_errors_total", &[("code", c)]);
    assert_eq!(
        (code(&c, "unknown_model"), code(&c, "bad_request")),
        (1.0, 1.0)
    );
    for (class, n) in per_request {
        assert_eq!(
            sum(&c, "cocoon_tokens_total", &[("class", class)]),
            5.0 * n,
            "client {class}"
        );
    }
    assert_eq!(sum(&c, "cocoon_spent_nanoton_total", &[]), spent as f64);
    assert_eq!(
        observations(&c, "cocoon_time_to_first_token_seconds"),
        3.0,
        "streamed only"
    );
    assert_eq!(observations(&c, "cocoon_decode_tokens_per_second"), 3.0);
    assert_eq!(observations(&c, "cocoon_request_duration_seconds"), 5.0);
    assert_eq!(sum(&c, "cocoon_connected_peers", &[("peer", "proxy")]), 1.0);
    assert_eq!(sum(&c, "cocoon_active_requests", &[]), 0.0);
    let rate = sum(&c, "cocoon_requests_rate", &[("window", "1h")]);
    assert!(
        rate > 6.9 / 3600.0 && rate <= 7.0 / 3600.0,
        "1h rate {rate}"
    );
    assert!(
        sum(
            &c,
            "cocoon_time_to_first_token_seconds_avg",
            &[("window", "1m")]
        ) > 0.0
    );

    let proxy_addr = net.devnet.proxy.http_addr.expect("proxy http");
    let (_, p) = scrape(&net, proxy_addr, "proxy").await;
    assert_eq!(
        sum(&p, "cocoon_requests_total", &[("role", "proxy")]),
        6.0,
        "the bad body never left the client"
    );
    assert_eq!((outcome(&p, "success"), outcome(&p, "refused")), (5.0, 1.0));
    assert_eq!(code(&p, "unknown_model"), 1.0);
    for (class, n) in per_request {
        assert_eq!(
            sum(&p, "cocoon_tokens_total", &[("class", class)]),
            5.0 * n,
            "proxy {class}"
        );
    }
    assert_eq!(
        sum(&p, "cocoon_billed_nanoton_total", &[]),
        spent as f64,
        "billed = spent"
    );
    let params = cocoon_chain::Chain::registry(net.devnet.chain.as_ref())
        .params
        .clone();
    let commission = spent as f64 * (params.price_per_token - params.worker_fee_per_token) as f64
        / params.price_per_token as f64;
    assert_eq!(sum(&p, "cocoon_earned_nanoton_total", &[]), commission);
    assert_eq!(observations(&p, "cocoon_time_to_first_token_seconds"), 3.0);
    assert_eq!(
        sum(&p, "cocoon_connected_peers", &[("peer", "worker")]),
        2.0
    );
    assert_eq!(
        sum(&p, "cocoon_connected_peers", &[("peer", "client")]),
        1.0
    );

    // Workers: together they served the 5; their earnings show once vouchers are anchored
    // and polled (about a second on the devnet).
    let worker_fees =
        spent as f64 * params.worker_fee_per_token as f64 / params.price_per_token as f64;
    let mut earned = 0.0;
    for _ in 0..100 {
        let mut requests = 0.0;
        let mut completion = 0.0;
        earned = 0.0;
        for (i, w) in net.devnet.workers.iter().enumerate() {
            let node = format!("worker-{i}");
            let (_, s) = scrape(&net, w.http_addr.expect("worker http"), &node).await;
            requests += sum(
                &s,
                "cocoon_requests_total",
                &[("role", "worker"), ("outcome", "success")],
            );
            completion += sum(&s, "cocoon_tokens_total", &[("class", "completion")]);
            earned += sum(&s, "cocoon_earned_nanoton_total", &[]);
            assert_eq!(sum(&s, "cocoon_connected_peers", &[("peer", "proxy")]), 1.0);
            assert_eq!(sum(&s, "cocoon_worker_engine_up", &[]), 1.0);
        }
        assert_eq!((requests, completion), (5.0, 40.0));
        if earned == worker_fees {
            break;
        }
        assert!(
            earned < worker_fees,
            "workers earned {earned} > {worker_fees}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        earned, worker_fees,
        "every billed token reached a worker voucher"
    );

    // `/jsonstats` carries the same rates.
    for addr in [net.devnet.client.http_addr, proxy_addr] {
        let v = jsonstats(&net, addr).await;
        let r = v["rates"]["requests_per_second"]["1d"].as_f64().unwrap();
        assert!(r > 0.0, "{v}");
        assert!(
            v["rates"]["tokens_per_second"]["completion"]["1m"]
                .as_f64()
                .unwrap()
                > 0.0
        );
    }
    let v = jsonstats(&net, net.devnet.workers[0].http_addr.unwrap()).await;
    assert!(
        v["rates"]["earned_nanoton_per_second"]["1d"].is_number(),
        "{v}"
    );
}

#[tokio::test]
async fn an_app_leaving_mid_stream_is_cancelled_at_every_node() {
    use futures::StreamExt;
    let engine = TestEngineConfig {
        chunks: 50,
        chunk_size: 8,
        chunk_delay: Duration::from_millis(100),
        ..Default::default()
    };
    let net = start_simple(1, engine).await;
    let res = net.post("/v1/chat/completions", &net.chat_body(true)).await;
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(3), body.next())
        .await
        .expect("first chunk in time");
    assert!(first.is_some());
    let nodes = [
        ("client", net.devnet.client.http_addr),
        ("proxy", net.devnet.proxy.http_addr.unwrap()),
        ("worker", net.devnet.workers[0].http_addr.unwrap()),
    ];
    for (node, addr) in nodes {
        let (_, s) = scrape(&net, addr, node).await;
        assert_eq!(
            sum(&s, "cocoon_active_requests", &[]),
            1.0,
            "{node} in flight"
        );
    }
    drop(body);
    for (node, addr) in nodes {
        let mut done = false;
        for _ in 0..150 {
            let (_, s) = scrape(&net, addr, node).await;
            let cancelled = sum(&s, "cocoon_errors_total", &[("code", "cancelled")]);
            let errors = sum(&s, "cocoon_requests_total", &[("outcome", "error")]);
            if cancelled == 1.0 && errors == 1.0 && sum(&s, "cocoon_active_requests", &[]) == 0.0 {
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(done, "{node}: the abandoned request ends as cancelled");
    }
}
