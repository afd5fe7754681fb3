//! capi-manage's HTTP trace (`-v` with `RUST_LOG=kube_client::client::builder=debug`) as a
//! request timeline, for the benches that count and time requests.

use std::collections::BTreeMap;
use std::time::Duration;

/// One request from a trace: method, path, start and duration (ms since the process's first).
pub struct Request {
    pub method: String,
    pub path: String,
    pub start_ms: f64,
    pub took_ms: f64,
}

/// Requests in capi-manage's trace: kube-client's `HTTP` span, closed with its busy and idle
/// time, and the timestamp of its close.
pub fn our_requests(stderr: &str) -> Vec<Request> {
    let mut out = Vec::new();
    let plain = strip_ansi(stderr);
    for line in plain
        .lines()
        .filter(|l| l.contains(" close ") && l.contains("http.method="))
    {
        let field = |name: &str| {
            let i = line.find(name)? + name.len();
            let rest = &line[i..];
            Some(rest[..rest.find([' ', '}']).unwrap_or(rest.len())].to_string())
        };
        let dur = |name: &str| -> f64 {
            let Some(v) = field(name) else { return 0.0 };
            let (num, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
            let n: f64 = num.parse().unwrap_or(0.0);
            match unit {
                "s" => n * 1e3,
                "ms" => n,
                "µs" => n / 1e3,
                "ns" => n / 1e6,
                _ => 0.0,
            }
        };
        let (Some(method), Some(url)) = (field("http.method="), field("http.url=")) else {
            continue;
        };
        // Path and query only: the server's address is the same for every request.
        let url = match url
            .find("://")
            .and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j))
        {
            Some(i) => url[i..].to_string(),
            None => url,
        };
        let took = dur("time.busy=") + dur("time.idle=");
        let end = timestamp_ms(line);
        out.push(Request {
            method,
            path: url,
            start_ms: end - took,
            took_ms: took,
        });
    }
    if let Some(first) = out.iter().map(|r| r.start_ms).reduce(f64::min) {
        for r in &mut out {
            r.start_ms -= first;
        }
    }
    out.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    out
}

/// The text without terminal colour sequences (`ESC [ ... m`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Milliseconds of the day of a tracing-subscriber line (`2026-01-01T10:00:00.123456Z ...`).
fn timestamp_ms(line: &str) -> f64 {
    let t = line.split_whitespace().next().unwrap_or_default();
    let Some(time) = t.split('T').nth(1) else {
        return 0.0;
    };
    let time = time.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let m: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let s: f64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ((h * 60.0 + m) * 60.0 + s) * 1e3
}

/// Prints `requests` summarised by `purpose`: count, first start and last end (ms).
pub fn timeline(
    label: &str,
    requests: &[Request],
    total: Duration,
    purpose: impl Fn(&Request) -> &'static str,
) {
    let mut by: BTreeMap<&str, (usize, f64, f64)> = BTreeMap::new();
    for r in requests {
        let e = by.entry(purpose(r)).or_insert((0, f64::MAX, 0.0));
        e.0 += 1;
        e.1 = e.1.min(r.start_ms);
        e.2 = e.2.max(r.start_ms + r.took_ms);
    }
    println!(
        "  {label}: {} requests, process {:.0} ms",
        requests.len(),
        total.as_secs_f64() * 1e3
    );
    println!(
        "    {:<26} {:>6} {:>10} {:>10}",
        "phase", "count", "first ms", "last ms"
    );
    let mut rows: Vec<_> = by.into_iter().collect();
    rows.sort_by(|a, b| a.1.1.total_cmp(&b.1.1));
    for (what, (n, first, last)) in rows {
        println!("    {what:<26} {n:>6} {first:>10.0} {last:>10.0}");
    }
}
