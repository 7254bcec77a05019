//! The `load` example's contract (DESIGN.md): each mode on the in-memory
//! network prints exactly one JSON object on stdout with the keys that apply
//! to it, and exits 0.

use serde_json::Value as Json;
use std::process::Command;
use std::time::Duration;
use utcp_integration_tests::{example_bin, output_within};

/// Catches a hung run, nothing slower: each run takes a few seconds at most,
/// but two cores may be shared with other builds.
const HANG_BOUND: Duration = Duration::from_secs(300);

/// Runs `load ARGS --json` (built first, so never a stale binary) and returns
/// its one JSON object.
fn run_load(args: &[&str]) -> Json {
    let out = output_within(
        Command::new(example_bin("load")).args(args).arg("--json"),
        HANG_BOUND,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "load {args:?} failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    // Exactly one JSON value on stdout, nothing else (serde_json rejects
    // trailing text such as a progress line).
    let json: Json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("load {args:?}: stdout is not one JSON object ({e}):\n{stdout}")
    });
    assert!(json.is_object(), "load {args:?}: not an object: {stdout}");
    assert_eq!(
        json.get("errors").and_then(Json::as_f64),
        Some(0.0),
        "load {args:?}: errors:\n{stdout}\n{stderr}"
    );
    json
}

fn positive(json: &Json, key: &str) -> f64 {
    let v = json
        .get(key)
        .and_then(Json::as_f64)
        .unwrap_or_else(|| panic!("{key} missing or not a number in {json:?}"));
    assert!(v > 0.0 && v.is_finite(), "{key} = {v} in {json:?}");
    v
}

fn null(json: &Json, key: &str) {
    assert_eq!(
        json.get(key),
        Some(&Json::Null),
        "{key} should be null in {json:?}"
    );
}

fn latency_ordered(json: &Json) {
    let lat = json
        .get("latency_us")
        .unwrap_or_else(|| panic!("latency_us missing in {json:?}"));
    let p: Vec<f64> = ["p50", "p90", "p99", "p999"]
        .iter()
        .map(|k| positive(lat, k))
        .collect();
    assert!(
        p[0] <= p[1] && p[1] <= p[2] && p[2] <= p[3],
        "percentiles out of order: {p:?}"
    );
}

#[test]
fn load_churn_reports_connections_per_second_and_latency() {
    let j = run_load(&["churn", "--connections", "4", "--count", "200"]);
    assert_eq!(j.get("mode"), Some(&Json::from("churn")));
    positive(&j, "conn_per_s");
    latency_ordered(&j);
    assert_eq!(j.get("completed").and_then(Json::as_f64), Some(200.0));
    null(&j, "goodput_gbps");
    null(&j, "rss_bytes_per_conn");
}

#[test]
fn load_bulk_reports_goodput() {
    let j = run_load(&["bulk", "--connections", "2", "--duration", "1"]);
    assert_eq!(j.get("mode"), Some(&Json::from("bulk")));
    positive(&j, "goodput_gbps");
    positive(&j, "completed");
    null(&j, "conn_per_s");
    null(&j, "latency_us");
    null(&j, "rss_bytes_per_conn");
}

#[test]
fn load_bulk_with_a_byte_count_delivers_exactly_that() {
    let j = run_load(&[
        "bulk",
        "--connections",
        "3",
        "--count",
        "1000000",
        "--size",
        "7000",
    ]);
    positive(&j, "goodput_gbps");
    assert_eq!(j.get("completed").and_then(Json::as_f64), Some(1_000_000.0));
}

#[test]
fn load_echo_reports_latency_percentiles() {
    let j = run_load(&["echo", "--connections", "4", "--count", "500"]);
    assert_eq!(j.get("mode"), Some(&Json::from("echo")));
    latency_ordered(&j);
    positive(&j, "requests_per_s");
    assert_eq!(j.get("completed").and_then(Json::as_f64), Some(500.0));
    null(&j, "conn_per_s");
    null(&j, "goodput_gbps");
    null(&j, "rss_bytes_per_conn");
}

#[test]
fn load_hold_reports_memory_per_connection() {
    let j = run_load(&["hold", "--connections", "200", "--duration", "0.2"]);
    assert_eq!(j.get("mode"), Some(&Json::from("hold")));
    assert_eq!(j.get("completed").and_then(Json::as_f64), Some(200.0));
    let per = positive(&j, "rss_bytes_per_conn");
    // Both ends live in this process; anything past 1 MiB is a leak, not a measurement.
    assert!(per < 1024.0 * 1024.0, "rss_bytes_per_conn = {per}");
    null(&j, "conn_per_s");
    null(&j, "goodput_gbps");
    null(&j, "latency_us");
}

#[test]
fn load_with_connect_but_no_device_fails_in_one_line() {
    let out = output_within(
        Command::new(example_bin("load")).args(["churn", "--connect", "10.0.0.2:7", "--json"]),
        HANG_BOUND,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
