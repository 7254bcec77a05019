//! The `load` example's contract (DESIGN.md): each mode on the in-memory
//! network prints exactly one JSON object on stdout with the keys that apply
//! to it, and exits 0.

use std::process::Command;
use std::time::{Duration, Instant};
use utcp_integration_tests::example_bin;

/// Runs `load ARGS --json`; `None` when the example was not built.
fn run_load(args: &[&str]) -> Option<Json> {
    let bin = example_bin("load")?;
    let started = Instant::now();
    let out = Command::new(bin).args(args).arg("--json").output().unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "load {args:?} failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        took < Duration::from_secs(10),
        "load {args:?} took {took:?}"
    );
    let json = Json::parse(&stdout).unwrap_or_else(|e| {
        panic!("load {args:?}: stdout is not one JSON object ({e}):\n{stdout}")
    });
    assert!(
        matches!(json, Json::Obj(_)),
        "load {args:?}: not an object: {stdout}"
    );
    assert_eq!(
        json.get("errors").and_then(Json::num),
        Some(0.0),
        "load {args:?}: errors:\n{stdout}\n{stderr}"
    );
    Some(json)
}

fn positive(json: &Json, key: &str) -> f64 {
    let v = json
        .get(key)
        .and_then(Json::num)
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
    let Some(j) = run_load(&["churn", "--connections", "4", "--count", "200"]) else {
        return;
    };
    assert_eq!(j.get("mode"), Some(&Json::Str("churn".into())));
    positive(&j, "conn_per_s");
    latency_ordered(&j);
    assert_eq!(j.get("completed").and_then(Json::num), Some(200.0));
    null(&j, "goodput_gbps");
    null(&j, "rss_bytes_per_conn");
}

#[test]
fn load_bulk_reports_goodput() {
    let Some(j) = run_load(&["bulk", "--connections", "2", "--duration", "1"]) else {
        return;
    };
    assert_eq!(j.get("mode"), Some(&Json::Str("bulk".into())));
    positive(&j, "goodput_gbps");
    positive(&j, "completed");
    null(&j, "conn_per_s");
    null(&j, "latency_us");
    null(&j, "rss_bytes_per_conn");
}

#[test]
fn load_bulk_with_a_byte_count_delivers_exactly_that() {
    let Some(j) = run_load(&[
        "bulk",
        "--connections",
        "3",
        "--count",
        "1000000",
        "--size",
        "7000",
    ]) else {
        return;
    };
    positive(&j, "goodput_gbps");
    assert_eq!(j.get("completed").and_then(Json::num), Some(1_000_000.0));
}

#[test]
fn load_echo_reports_latency_percentiles() {
    let Some(j) = run_load(&["echo", "--connections", "4", "--count", "500"]) else {
        return;
    };
    assert_eq!(j.get("mode"), Some(&Json::Str("echo".into())));
    latency_ordered(&j);
    positive(&j, "requests_per_s");
    assert_eq!(j.get("completed").and_then(Json::num), Some(500.0));
    null(&j, "conn_per_s");
    null(&j, "goodput_gbps");
    null(&j, "rss_bytes_per_conn");
}

#[test]
fn load_hold_reports_memory_per_connection() {
    let Some(j) = run_load(&["hold", "--connections", "200", "--duration", "0.2"]) else {
        return;
    };
    assert_eq!(j.get("mode"), Some(&Json::Str("hold".into())));
    assert_eq!(j.get("completed").and_then(Json::num), Some(200.0));
    let per = positive(&j, "rss_bytes_per_conn");
    // Both ends live in this process; anything past 1 MiB is a leak, not a measurement.
    assert!(per < 1024.0 * 1024.0, "rss_bytes_per_conn = {per}");
    null(&j, "conn_per_s");
    null(&j, "goodput_gbps");
    null(&j, "latency_us");
}

#[test]
fn load_with_connect_but_no_device_fails_in_one_line() {
    let Some(bin) = example_bin("load") else {
        return;
    };
    let out = Command::new(bin)
        .args(["churn", "--connect", "10.0.0.2:7", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// Just enough JSON to check the output (no dependency for a test).
#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses exactly one value, surrounded by nothing but whitespace.
    fn parse(s: &str) -> Result<Json, String> {
        let mut p = Parser {
            b: s.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.b.len() {
            return Err(format!("trailing text at byte {}", p.i));
        }
        Ok(v)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", c as char, self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut kv = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(kv));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.eat(b':')?;
                    kv.push((k, self.value()?));
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(kv));
                        }
                        _ => return Err(format!("bad object at byte {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("bad array at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Str),
            Some(_) => {
                for (word, v) in [
                    ("null", Json::Null),
                    ("true", Json::Bool(true)),
                    ("false", Json::Bool(false)),
                ] {
                    if self.b[self.i..].starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return Ok(v);
                    }
                }
                let start = self.i;
                while self.i < self.b.len()
                    && matches!(
                        self.b[self.i],
                        b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                    )
                {
                    self.i += 1;
                }
                std::str::from_utf8(&self.b[start..self.i])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .map(Json::Num)
                    .ok_or_else(|| format!("bad value at byte {start}"))
            }
            None => Err("unexpected end".into()),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        while let Some(&c) = self.b.get(self.i) {
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = *self.b.get(self.i).ok_or("unexpected end")?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'u' => {
                            // Not needed here: keep the escape as text.
                            out.extend_from_slice(b"\\u");
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        Err("unterminated string".into())
    }
}

#[test]
fn the_test_json_parser_reads_what_serde_json_writes() {
    let j = Json::parse(
        " {\"a\":1.5e3,\"b\":null,\"c\":{\"p50\":2},\"d\":[true,false],\"e\":\"x\\\"y\"}\n",
    )
    .unwrap();
    assert_eq!(j.get("a"), Some(&Json::Num(1500.0)));
    assert_eq!(j.get("b"), Some(&Json::Null));
    assert_eq!(j.get("c").and_then(|c| c.get("p50")), Some(&Json::Num(2.0)));
    assert_eq!(
        j.get("d"),
        Some(&Json::Arr(vec![Json::Bool(true), Json::Bool(false)]))
    );
    assert_eq!(j.get("e"), Some(&Json::Str("x\"y".into())));
    assert!(Json::parse("{} {}").is_err());
    assert!(Json::parse("progress\n{}").is_err());
}
