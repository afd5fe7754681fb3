//! Where the end-to-end bootstrap's time goes: for each step, the seconds it took in the run
//! that finished it, split into capi-manage's own work and the time it waited on something
//! outside it (the stand-in node, the apiservers' controllers, CAPO and OpenStack, Flux).
//!
//! Read from the JSON events of `bootstrap -o json`, each stamped by the test with the second
//! it arrived ([`AT`]). A wait is open from its first `waiting` event to the `success` event
//! with the same `what` (or the step's end); several waits open at once count once.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The field the test adds to every event: seconds since the run started.
pub const AT: &str = "_at";

/// The runs of one bootstrap (each killed run, then the final one).
#[derive(Default)]
pub struct Runs {
    runs: Vec<Vec<Value>>,
    /// The highest peak RSS of any run, in KiB.
    pub peak_rss_kib: i64,
}

/// One step, from the run that finished it.
#[derive(Debug, PartialEq)]
pub struct StepTime {
    pub step: String,
    /// From its `started` to its `done` event.
    pub total: f64,
    /// Of that, with at least one wait open.
    pub waited: f64,
    /// What it waited on.
    pub on: BTreeSet<String>,
}

impl StepTime {
    /// capi-manage's own work: the step's time outside its waits.
    pub fn own(&self) -> f64 {
        (self.total - self.waited).max(0.0)
    }
}

impl Runs {
    pub fn add(&mut self, events: Vec<Value>, rss_kib: i64) {
        self.runs.push(events);
        self.peak_rss_kib = self.peak_rss_kib.max(rss_kib);
    }

    /// Every step some run finished (not skipped), in order of the runs.
    pub fn steps(&self) -> Vec<StepTime> {
        self.runs.iter().flat_map(|r| steps_of(r)).collect()
    }

    /// A table: each step's seconds, own work, waits and what it waited on.
    pub fn report(&self) -> String {
        let steps = self.steps();
        let mut out = format!(
            "{:<20} {:>8} {:>8} {:>8}  waited on\n",
            "step", "total s", "own s", "waited s"
        );
        let (mut total, mut own) = (0.0, 0.0);
        for s in &steps {
            total += s.total;
            own += s.own();
            let on: Vec<&str> = s.on.iter().map(String::as_str).take(4).collect();
            let more = s.on.len().saturating_sub(on.len());
            out.push_str(&format!(
                "{:<20} {:>8.2} {:>8.2} {:>8.2}  {}{}\n",
                s.step,
                s.total,
                s.own(),
                s.waited,
                on.join("; "),
                if more > 0 {
                    format!("; and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        out.push_str(&format!(
            "{:<20} {:>8.2} {:>8.2} {:>8.2}\n",
            "all",
            total,
            own,
            total - own
        ));
        out
    }
}

fn at(e: &Value) -> f64 {
    e[AT].as_f64().unwrap_or(0.0)
}

/// The steps one run finished, each with its waits.
fn steps_of(events: &[Value]) -> Vec<StepTime> {
    let mut out = Vec::new();
    let mut current: Option<(String, f64)> = None;
    // Open waits: what -> since when; and the union's running total.
    let mut open: BTreeMap<String, f64> = BTreeMap::new();
    let mut waited = 0.0;
    let mut busy_since = 0.0;
    let mut on = BTreeSet::new();
    for e in events {
        let t = at(e);
        match e["event"].as_str() {
            Some("step") if e["phase"] == "started" => {
                current = Some((e["step"].as_str().unwrap_or_default().to_string(), t));
                open.clear();
                waited = 0.0;
                on.clear();
            }
            Some("step") if e["phase"] == "done" => {
                let Some((step, start)) = current.take() else {
                    continue;
                };
                if !open.is_empty() {
                    waited += t - busy_since;
                    open.clear();
                }
                out.push(StepTime {
                    step,
                    total: t - start,
                    waited,
                    on: std::mem::take(&mut on),
                });
            }
            Some("waiting") if current.is_some() => {
                let what = e["what"].as_str().unwrap_or_default().to_string();
                if open.is_empty() {
                    busy_since = t;
                }
                on.insert(what.clone());
                open.entry(what).or_insert(t);
            }
            Some("success") if current.is_some() => {
                let what = e["what"].as_str().unwrap_or_default();
                if open.remove(what).is_some() && open.is_empty() {
                    waited += t - busy_since;
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn overlapping_waits_count_once_and_own_work_is_the_rest() {
    use serde_json::json;
    let ev = |t: f64, v: Value| {
        let mut v = v;
        v[AT] = json!(t);
        v
    };
    let events = vec![
        ev(
            0.0,
            json!({"event": "step", "phase": "started", "step": "a"}),
        ),
        ev(1.0, json!({"event": "waiting", "what": "x"})),
        ev(2.0, json!({"event": "waiting", "what": "y"})),
        ev(
            2.5,
            json!({"event": "waiting", "what": "x", "detail": "still"}),
        ),
        ev(3.0, json!({"event": "success", "what": "x"})),
        ev(4.0, json!({"event": "success", "what": "y"})),
        ev(5.0, json!({"event": "waiting", "what": "z"})),
        ev(6.0, json!({"event": "step", "phase": "done", "step": "a"})),
        ev(
            6.0,
            json!({"event": "step", "phase": "skipped", "step": "b"}),
        ),
    ];
    let steps = steps_of(&events);
    assert_eq!(steps.len(), 1);
    let a = &steps[0];
    assert_eq!((a.total, a.waited), (6.0, 4.0));
    assert_eq!(a.own(), 2.0);
    assert_eq!(a.on.len(), 3);
}
