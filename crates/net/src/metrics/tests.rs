use super::models::{intern_into, lookup_in};
use super::*;
use std::sync::RwLock;
use std::time::Duration;

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance * expected.abs().max(1e-12)
}

#[test]
fn burst_reads_n_over_window_then_decays() {
    let t0 = Instant::now();
    let rates = DecayingRates::starting_at(2, t0);
    let n = 600u64;
    for _ in 0..n {
        rates.add_all_at(&[(0, 1)], t0);
    }
    let now = rates.rates_at(t0);
    for (w, r) in WINDOWS.iter().zip(now[0]) {
        let expected = n as f64 / w.seconds as f64;
        assert!(close(r, expected, 1e-9), "{}: {r} vs {expected}", w.label);
    }
    assert_eq!(now[1], [0.0; WINDOWS.len()], "other series untouched");
    // One window later each window shows 1/e of it; the longer ones have barely moved.
    for (i, w) in WINDOWS.iter().enumerate() {
        let later = rates.rates_at(t0 + Duration::from_secs(w.seconds))[0][i];
        let expected = n as f64 / w.seconds as f64 / std::f64::consts::E;
        assert!(close(later, expected, 1e-6), "{}: {later}", w.label);
    }
    // Ten windows of the 1 s rate later, it is gone; the day window still holds it.
    let r = rates.rates_at(t0 + Duration::from_secs(86_400 + 20))[0];
    let r2 = rates.rates_at(t0 + Duration::from_secs(30))[0];
    assert!(r2[0] < 1e-9 * n as f64, "1s window decayed: {}", r2[0]);
    assert!(r[0] < 1e-12 && r[5] > 0.0);
}

#[test]
fn steady_rate_reads_the_rate_in_short_windows() {
    let t0 = Instant::now();
    let rates = DecayingRates::starting_at(1, t0);
    // 10 events per second for 120 s, one every 100 ms.
    let steps = 1200;
    for i in 0..steps {
        rates.add_all_at(&[(0, 1)], t0 + Duration::from_millis(100 * i));
    }
    let r = rates.rates_at(t0 + Duration::from_millis(100 * (steps - 1)))[0];
    assert!(close(r[0], 10.0, 0.1), "1s: {}", r[0]);
    assert!(close(r[1], 10.0, 0.05), "10s: {}", r[1]);
    // 1 min after 2 min of traffic: 1 − e^(−2) of the rate.
    assert!(
        close(r[2], 10.0 * (1.0 - (-2.0f64).exp()), 0.05),
        "1m: {}",
        r[2]
    );
    // 1 day: the 1200 events over 86 400 s.
    assert!(close(r[5], 1200.0 / 86_400.0, 0.01), "1d: {}", r[5]);
}

#[test]
fn an_event_after_a_long_idle_is_not_decayed_away() {
    let t0 = Instant::now();
    let rates = DecayingRates::starting_at(1, t0);
    rates.add_all_at(&[(0, 5)], t0);
    let later = t0 + Duration::from_secs(3600);
    rates.add_all_at(&[(0, 1)], later);
    let r = rates.rates_at(later)[0];
    assert!(close(r[0], 1.0, 1e-6), "1s: {}", r[0]);
    // The hour window holds both: 5/e + 1 over 3600 s.
    let expected = (5.0 / std::f64::consts::E + 1.0) / 3600.0;
    assert!(close(r[4], expected, 1e-6), "1h: {}", r[4]);
}

#[test]
fn decaying_mean_is_sum_over_count() {
    let t0 = Instant::now();
    let rates = DecayingRates::starting_at(2, t0);
    rates.add_all_at(&[(0, 300_000), (1, 1)], t0);
    rates.add_all_at(&[(0, 100_000), (1, 1)], t0);
    let r = rates.rates_at(t0);
    let mean = decaying_mean(&r[0], &r[1], 1e6);
    assert!(mean.iter().all(|m| close(m.unwrap(), 0.2, 1e-9)));
    let empty = decaying_mean(&[0.0; 6], &[0.0; 6], 1.0);
    assert!(empty.iter().all(Option::is_none));
}

#[test]
fn model_labels_are_validated_and_capped() {
    assert!(valid_model_label("meta-llama/Llama-3.1-8B-Instruct"));
    assert!(valid_model_label("qwen2.5:7b@q4"));
    for bad in [
        "",
        "other",
        "a b",
        "a\"b",
        "a,b",
        "a=b",
        "a\nb",
        "é",
        &"x".repeat(129),
    ] {
        assert!(!valid_model_label(bad), "{bad:?}");
    }
    let table = RwLock::new(Vec::new());
    assert_eq!(lookup_in(&table, "m0"), ModelId::OTHER, "lookup never adds");
    for i in 0..MAX_MODELS {
        let id = intern_into(&table, &format!("cap-test-{i}"));
        assert_eq!(id.index(), i);
        assert_eq!(intern_into(&table, &format!("cap-test-{i}")), id);
    }
    assert_eq!(intern_into(&table, "one-too-many"), ModelId::OTHER);
    assert_eq!(intern_into(&table, "bad name"), ModelId::OTHER);
    assert_eq!(ModelId::OTHER.label(), OTHER);
}

#[test]
fn encoder_escapes_and_writes_histograms() {
    let mut enc = Encoder::new();
    enc.family("x_total", Kind::Counter, "Help with \\ and\nnewline.")
        .int(&[("role", "a\"b\\c")], 7);
    enc.family("h_seconds", Kind::Histogram, "H.").histogram(
        &[("role", "proxy")],
        &[0.5, 1.0],
        &[1, 2, 3],
        4.25,
    );
    enc.family("g", Kind::Gauge, "G.")
        .float(&[], f64::NAN)
        .float(&[("window", "1s")], f64::INFINITY);
    let text = enc.finish();
    let expected = "# HELP x_total Help with \\\\ and\\nnewline.\n\
        # TYPE x_total counter\n\
        x_total{role=\"a\\\"b\\\\c\"} 7\n\
        # HELP h_seconds H.\n\
        # TYPE h_seconds histogram\n\
        h_seconds_bucket{role=\"proxy\",le=\"0.5\"} 1\n\
        h_seconds_bucket{role=\"proxy\",le=\"1\"} 3\n\
        h_seconds_bucket{role=\"proxy\",le=\"+Inf\"} 6\n\
        h_seconds_sum{role=\"proxy\"} 4.25\n\
        h_seconds_count{role=\"proxy\"} 6\n\
        # HELP g G.\n\
        # TYPE g gauge\n\
        g NaN\n\
        g{window=\"1s\"} +Inf\n";
    assert_eq!(text, expected);
}

#[test]
fn histogram_buckets_are_inclusive_upper_bounds() {
    let h = Histogram::new(&[1.0, 2.0]);
    for v in [0.5, 1.0, 1.5, 2.0, 9.0, -1.0, f64::NAN] {
        h.observe(v);
    }
    let s = h.snapshot();
    assert_eq!(s.counts, vec![4, 2, 1]);
    assert!(close(s.sum, 14.0, 1e-9));
    assert_eq!(s.count(), 7);
}

/// Checks one exposition strictly (every line is a comment or a well-formed sample, every
/// label is in the closed sets) and parses it with `prometheus-parse`. Returns the samples.
fn parse_strict(text: &str) -> Vec<prometheus_parse::Sample> {
    let mut sample_lines = 0;
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "{line:?}");
        sample_lines += 1;
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        assert!(
            value.parse::<f64>().is_ok() || ["NaN", "+Inf", "-Inf"].contains(&value),
            "{line}"
        );
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        assert!(name.starts_with("cocoon_"), "{line}");
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').expect("label=value");
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
            let v = v.expect("quoted value");
            assert!(
                is_closed_label(k, v),
                "label {k}={v:?} outside the closed sets"
            );
        }
    }
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
    // Histograms fold their bucket lines into one sample; everything else is one line each.
    let folded: usize = scrape
        .samples
        .iter()
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(b) => b.len(),
            _ => 1,
        })
        .sum();
    assert_eq!(folded, sample_lines, "every sample line parsed");
    scrape.samples
}

fn value(samples: &[prometheus_parse::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{name} is not a scalar: {other:?}"),
        })
        .sum()
}

#[test]
fn node_metrics_render_parse_and_add_up() {
    let t0 = Instant::now();
    let metrics = NodeMetrics::starting_at(Role::Proxy, t0);
    let model = intern("unit-test-model");
    let usage = Usage {
        prompt_tokens: 40,
        cached_tokens: 10,
        completion_tokens: 21,
        reasoning_tokens: 5,
    };
    for i in 0..5u64 {
        let start = t0 + Duration::from_millis(i);
        let mut r = metrics.start_at(model, true, start);
        r.first_token_at(start + Duration::from_millis(100));
        r.succeed_at(Some(&usage), start + Duration::from_millis(1100));
    }
    metrics
        .start_at(lookup("app-typed-name"), false, t0)
        .fail_at(ErrorCode::UnknownModel as i32, t0);
    metrics
        .start_at(model, false, t0)
        .fail_at(ErrorCode::Deadline as i32, t0);
    drop(metrics.start_at(model, true, t0)); // the caller went away
    metrics.add_money_at(1234, t0);
    assert_eq!(metrics.active(), 0);

    let mut enc = Encoder::new();
    metrics.render_at(&mut enc, t0 + Duration::from_millis(1200));
    let text = enc.finish();
    assert!(
        !text.contains("app-typed-name"),
        "app text never becomes a label"
    );
    let samples = parse_strict(&text);
    let proxy = ("role", "proxy");
    let m = ("model", "unit-test-model");
    assert_eq!(value(&samples, "cocoon_requests_total", &[proxy]), 8.0);
    let outcome = |o| value(&samples, "cocoon_requests_total", &[m, ("outcome", o)]);
    assert_eq!(
        (outcome("success"), outcome("error"), outcome("refused")),
        (5.0, 2.0, 0.0)
    );
    let other = [("model", OTHER), ("outcome", "refused")];
    assert_eq!(value(&samples, "cocoon_requests_total", &other), 1.0);
    let code = |c| value(&samples, "cocoon_errors_total", &[("code", c)]);
    assert_eq!(
        (code("unknown_model"), code("deadline"), code("cancelled")),
        (1.0, 1.0, 1.0)
    );
    let tokens = |c| value(&samples, "cocoon_tokens_total", &[m, ("class", c)]);
    assert_eq!(
        [
            tokens("prompt"),
            tokens("cached"),
            tokens("completion"),
            tokens("reasoning")
        ],
        [200.0, 50.0, 105.0, 25.0]
    );
    assert_eq!(value(&samples, "cocoon_earned_nanoton_total", &[]), 1234.0);
    let ttft = samples
        .iter()
        .find(|s| {
            s.metric == "cocoon_time_to_first_token_seconds"
                && s.labels.get("model") == Some("unit-test-model")
        })
        .expect("ttft histogram");
    let prometheus_parse::Value::Histogram(buckets) = &ttft.value else {
        panic!("not a histogram")
    };
    // 5 successes + 0 for the cancelled one (no first token): all at 0.1 s.
    let at = |le: f64| buckets.iter().find(|b| b.less_than == le).unwrap().count;
    assert_eq!((at(0.05), at(0.1), at(f64::INFINITY)), (0.0, 5.0, 5.0));
    let tps_avg = value(
        &samples,
        "cocoon_decode_tokens_per_second_avg",
        &[("window", "1m")],
    );
    assert!(
        close(tps_avg, 20.0, 1e-6),
        "20 tokens after the first in 1 s: {tps_avg}"
    );
    let ttft_avg = value(
        &samples,
        "cocoon_time_to_first_token_seconds_avg",
        &[("window", "1h")],
    );
    assert!(close(ttft_avg, 0.1, 1e-6), "{ttft_avg}");
    // 8 requests ~1.2 s ago: the 10 s window reads about 8/10 per second.
    let r10 = value(&samples, "cocoon_requests_rate", &[("window", "10s")]);
    assert!(r10 > 0.6 && r10 <= 0.8, "{r10}");
    let json = metrics.rates_json_at(t0 + Duration::from_millis(1200));
    assert!(close(
        json["requests_per_second"]["10s"].as_f64().unwrap(),
        r10,
        1e-9
    ));
    assert!(
        json["tokens_per_second"]["completion"]["1d"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(metrics.totals_json()["requests"]["success"], 5);
}
