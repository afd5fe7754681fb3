//! Waiting for objects to reach a state, with small composable conditions (after kube-runtime's
//! `wait::conditions`) and timeouts whose errors name the object and its last conditions.

use std::time::{Duration, Instant};

use ::kube::Api;
use ::kube::api::DynamicObject;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Error, RequestError, until_cancelled};
use crate::manifest::Origin;
use crate::observe::{Observer, ObserverExt};

/// What a condition concludes from the object's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The awaited state is reached.
    Done,
    /// Not yet; the detail (e.g. the object's conditions) explains why.
    Pending(Option<String>),
    /// It can never be reached without intervention; the reason says why.
    Failed(String),
}

/// A predicate over an object's state; `None` means the object does not exist.
pub trait Condition: Send + Sync {
    /// Evaluates the condition.
    fn check(&self, object: Option<&DynamicObject>) -> Check;
}

impl<F: Fn(Option<&DynamicObject>) -> Check + Send + Sync> Condition for F {
    fn check(&self, object: Option<&DynamicObject>) -> Check {
        self(object)
    }
}

/// Ready-made conditions. Combine them with [`conditions::all`].
pub mod conditions {
    use super::*;

    /// The object exists.
    pub fn exists() -> impl Condition {
        |o: Option<&DynamicObject>| {
            if o.is_some() {
                Check::Done
            } else {
                Check::Pending(Some("not found".into()))
            }
        }
    }

    /// The object is gone, or was replaced by one with another UID.
    pub fn deleted(uid: Option<String>) -> impl Condition {
        move |o: Option<&DynamicObject>| match o {
            None => Check::Done,
            Some(o) if uid.is_some() && o.metadata.uid != uid => Check::Done,
            Some(o) => {
                let finalizers = o.metadata.finalizers.clone().unwrap_or_default();
                let detail = if finalizers.is_empty() {
                    "still present".to_string()
                } else {
                    format!("finalizers {}", finalizers.join(", "))
                };
                Check::Pending(Some(detail))
            }
        }
    }

    /// A CustomResourceDefinition is `Established` and its names accepted.
    pub fn crd_established() -> impl Condition {
        |o: Option<&DynamicObject>| match o {
            None => Check::Pending(Some("not found".into())),
            Some(o) => {
                if condition_status(o, "Established") == Some("True")
                    && condition_status(o, "NamesAccepted") != Some("False")
                {
                    Check::Done
                } else if condition_status(o, "NamesAccepted") == Some("False") {
                    Check::Failed(summary(o))
                } else {
                    Check::Pending(Some(summary(o)))
                }
            }
        }
    }

    /// A condition of this type is `True` and the status reflects the current generation.
    pub fn condition_true(kind: &'static str) -> impl Condition {
        move |o: Option<&DynamicObject>| match o {
            None => Check::Pending(Some("not found".into())),
            Some(o) => {
                if let Some(stale) = stale_generation(o, kind) {
                    return Check::Pending(Some(stale));
                }
                if condition_status(o, kind) == Some("True") {
                    Check::Done
                } else {
                    Check::Pending(Some(summary(o)))
                }
            }
        }
    }

    /// `Ready=True` with `observedGeneration == generation` (Cluster API, Flux and most
    /// controllers follow this convention).
    pub fn ready() -> impl Condition {
        condition_true("Ready")
    }

    /// A Deployment is available as kstatus defines it: the controller has observed the
    /// current generation, all replicas are updated, ready and available, and no old replicas
    /// remain. A progress deadline exceeded is a failure.
    pub fn deployment_available() -> impl Condition {
        |o: Option<&DynamicObject>| match o {
            None => Check::Pending(Some("not found".into())),
            Some(o) => {
                let status = &o.data["status"];
                let progressing = condition(o, "Progressing");
                if progressing.is_some_and(|c| {
                    c["status"] == "False" && c["reason"] == "ProgressDeadlineExceeded"
                }) {
                    return Check::Failed(summary(o));
                }
                if let Some(stale) = stale_generation(o, "") {
                    return Check::Pending(Some(stale));
                }
                let want = o.data["spec"]["replicas"].as_i64().unwrap_or(1);
                let n = |f: &str| status[f].as_i64().unwrap_or(0);
                let counts = format!(
                    "replicas {want} wanted, {} updated, {} ready, {} available, {} total",
                    n("updatedReplicas"),
                    n("readyReplicas"),
                    n("availableReplicas"),
                    n("replicas")
                );
                let done = n("updatedReplicas") >= want
                    && n("readyReplicas") >= want
                    && n("availableReplicas") >= want
                    && n("replicas") <= n("updatedReplicas")
                    && condition_status(o, "Available") != Some("False");
                if done {
                    Check::Done
                } else {
                    let conds = summary(o);
                    Check::Pending(Some(if conds.is_empty() {
                        counts
                    } else {
                        format!("{counts}; {conds}")
                    }))
                }
            }
        }
    }

    /// Every condition holds. Reports the first that does not.
    pub fn all(conditions: Vec<Box<dyn Condition>>) -> impl Condition {
        move |o: Option<&DynamicObject>| {
            for c in &conditions {
                match c.check(o) {
                    Check::Done => continue,
                    other => return other,
                }
            }
            Check::Done
        }
    }
}

/// The condition of this type in `status.conditions`, if any.
pub fn condition<'a>(o: &'a DynamicObject, kind: &str) -> Option<&'a Value> {
    o.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
}

fn condition_status<'a>(o: &'a DynamicObject, kind: &str) -> Option<&'a str> {
    condition(o, kind)?["status"].as_str()
}

/// Why the status may describe an older generation, if it does. Checks
/// `status.observedGeneration` and, when `condition` is given, that condition's own.
fn stale_generation(o: &DynamicObject, condition_type: &str) -> Option<String> {
    let generation = o.metadata.generation?;
    let observed = o.data["status"]["observedGeneration"].as_i64();
    let cond_observed = if condition_type.is_empty() {
        None
    } else {
        condition(o, condition_type).and_then(|c| c["observedGeneration"].as_i64())
    };
    match (observed, cond_observed) {
        (Some(g), _) if g < generation => Some(format!(
            "status.observedGeneration {g} < generation {generation}"
        )),
        (_, Some(g)) if g < generation => Some(format!(
            "{condition_type} observedGeneration {g} < generation {generation}"
        )),
        _ => None,
    }
}

/// The object's conditions in one line: `Ready=False (Reason: message); Available=True`.
pub fn summary(o: &DynamicObject) -> String {
    let Some(conds) = o.data["status"]["conditions"].as_array() else {
        return String::new();
    };
    conds
        .iter()
        .map(|c| {
            let head = format!(
                "{}={}",
                c["type"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?")
            );
            let reason = c["reason"].as_str().unwrap_or("");
            let message = c["message"].as_str().unwrap_or("");
            match (reason.is_empty(), message.is_empty()) {
                (true, true) => head,
                (false, true) => format!("{head} ({reason})"),
                (true, false) => format!("{head} ({message})"),
                (false, false) => format!("{head} ({reason}: {message})"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One object that did not become healthy (or synced), with its last state: waits on several
/// objects collect these to report every failing one at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFailure {
    /// `Kind namespace/name`.
    pub identity: String,
    /// Why: its last conditions, a failure reason or an error.
    pub detail: String,
}

impl std::fmt::Display for ObjectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.identity, self.detail)
    }
}

impl ObjectFailure {
    /// A failed wait on one object as a failure to collect; `None` when the wait was cancelled.
    pub fn from_wait(identity: String, e: Error) -> Option<ObjectFailure> {
        let detail = match e {
            Error::Cancelled => return None,
            Error::Timeout { last, timeout, .. } => format!(
                "not ready after {}s, last seen: {}",
                timeout.as_secs(),
                last.unwrap_or_else(|| "never observed".into())
            ),
            Error::Failed { reason, .. } => format!("failed: {reason}"),
            other => {
                let mut s = other.to_string();
                let mut src = std::error::Error::source(&other);
                while let Some(c) = src {
                    s.push_str(": ");
                    s.push_str(&c.to_string());
                    src = c.source();
                }
                s
            }
        };
        Some(ObjectFailure { identity, detail })
    }

    /// Failures as one line, `a: why; b: why`.
    pub fn list(failures: &[ObjectFailure]) -> String {
        failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Waits for every `(object, what, condition)` together (`what` names the wait in events) and
/// returns the objects that did not get there, each with its last state: kinds the server does
/// not serve, timeouts, failures. A cancelled wait or a failed discovery is returned as the
/// error once every wait has ended.
pub async fn wait_all(
    discovery: &super::Discovery,
    checks: &[(crate::manifest::Object, String, Box<dyn Condition>)],
    options: WaitOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Vec<ObjectFailure>, Error> {
    let results = futures::future::join_all(checks.iter().map(|(o, what, c)| async move {
        let Some(api) = discovery.api_for(o).await? else {
            return Ok(Some(ObjectFailure {
                identity: o.identity(),
                detail: format!("the server does not serve {}", o.gvk()),
            }));
        };
        match wait_for(&api, o.name(), what, c.as_ref(), options, observer, cancel).await {
            Ok(_) => Ok(None),
            Err(e) => match ObjectFailure::from_wait(o.identity(), e) {
                Some(f) => Ok(Some(f)),
                None => Err(Error::Cancelled),
            },
        }
    }))
    .await;
    let mut failures = Vec::new();
    for r in results {
        if let Some(f) = r? {
            failures.push(f);
        }
    }
    Ok(failures)
}

/// How long and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct WaitOptions {
    /// Give up after this long.
    pub timeout: Duration,
    /// First delay between looks; it doubles up to `max_interval`.
    pub interval: Duration,
    /// Longest delay between looks.
    pub max_interval: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            timeout: Duration::from_secs(300),
            interval: Duration::from_millis(100),
            max_interval: Duration::from_secs(2),
        }
    }
}

impl WaitOptions {
    /// Default pacing with this timeout.
    pub fn timeout(timeout: Duration) -> Self {
        WaitOptions {
            timeout,
            ..Default::default()
        }
    }
}

/// Waits until `condition` holds for the object `name` behind `api`.
///
/// `what` names the wait in events and errors (e.g. `Deployment ns/name available`). Returns the
/// object as last seen (`None` if it is gone). The object is read once, then watched (one
/// request that the server answers with every change), so the wait ends as soon as the object
/// gets there; where the server refuses the watch, it is read again at `options`' intervals.
/// Transient API errors are retried until the timeout; others end the wait at once.
pub async fn wait_for(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    condition: &dyn Condition,
    options: WaitOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Option<DynamicObject>, Error> {
    let mut state = WaitState::new(what, condition, observer);
    wait_from(api, name, &mut state, None, options, cancel).await
}

/// [`wait_for`], starting from `seen`, the object as a write just returned it: the condition is
/// checked on it, and the watch starts from its resourceVersion, so no read comes first. Every
/// change after that write reaches the wait; if the watch cannot start or ends without news, the
/// object is read and watched again as in [`wait_for`].
#[allow(clippy::too_many_arguments)]
pub async fn wait_after(
    api: &Api<DynamicObject>,
    name: &str,
    seen: DynamicObject,
    what: &str,
    condition: &dyn Condition,
    options: WaitOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Option<DynamicObject>, Error> {
    let mut state = WaitState::new(what, condition, observer);
    wait_from(api, name, &mut state, Some(seen), options, cancel).await
}

async fn wait_from(
    api: &Api<DynamicObject>,
    name: &str,
    state: &mut WaitState<'_>,
    mut seen: Option<DynamicObject>,
    options: WaitOptions,
    cancel: &CancellationToken,
) -> Result<Option<DynamicObject>, Error> {
    let mut delay = options.interval;
    let mut watch = true;
    loop {
        let mut from = None;
        let read = match seen.take() {
            // Only a copy with a resourceVersion can start a watch.
            Some(o) if o.metadata.resource_version.is_some() => Ok(Some(o)),
            _ => until_cancelled(cancel, api.get_opt(name)).await,
        };
        match read {
            Err(RequestError::Cancelled) => return Err(Error::Cancelled),
            Ok(obj) => {
                from = Some(
                    obj.as_ref()
                        .and_then(|o| o.metadata.resource_version.clone())
                        .unwrap_or_default(),
                );
                if let Some(done) = state.look(obj)? {
                    return Ok(done);
                }
            }
            Err(e) if e.is_transient() => state.last = Some(format!("API error: {e}")),
            Err(source) => {
                return Err(Error::Object {
                    action: "reading",
                    identity: state.what.to_string(),
                    origin: Origin::default(),
                    source,
                });
            }
        }
        let elapsed = state.start.elapsed();
        if elapsed >= options.timeout {
            return Err(state.timeout(options.timeout));
        }
        if let (true, Some(from)) = (watch, from) {
            match watch_until(api, name, &from, state, options.timeout, cancel).await? {
                Watched::Done(obj) => return Ok(*obj),
                // Read again at once: the watch ran and ended (its timeout, a compaction).
                Watched::Ended { events: true } => continue,
                Watched::Ended { events: false } => {}
                Watched::Refused => watch = false,
            }
            if state.start.elapsed() >= options.timeout {
                return Err(state.timeout(options.timeout));
            }
        }
        let elapsed = state.start.elapsed();
        let sleep = delay.min(options.timeout.saturating_sub(elapsed));
        tokio::select! {
            _ = cancel.cancelled() => return Err(Error::Cancelled),
            _ = tokio::time::sleep(sleep) => {}
        }
        delay = (delay * 2).min(options.max_interval);
    }
}

/// A wait's progress: what it reported last, for events and its timeout error.
struct WaitState<'a> {
    what: &'a str,
    condition: &'a dyn Condition,
    observer: &'a dyn Observer,
    start: Instant,
    last: Option<String>,
    announced: bool,
}

impl<'a> WaitState<'a> {
    /// A wait that starts now and has reported nothing yet.
    fn new(what: &'a str, condition: &'a dyn Condition, observer: &'a dyn Observer) -> Self {
        WaitState {
            what,
            condition,
            observer,
            start: Instant::now(),
            last: None,
            announced: false,
        }
    }

    /// Checks the object: `Some` when the wait is over, an error when it can never be.
    // Synchronous, unlike the module's other functions: the lint sees the module's error here.
    #[allow(clippy::option_option, clippy::result_large_err)]
    fn look(&mut self, obj: Option<DynamicObject>) -> Result<Option<Option<DynamicObject>>, Error> {
        match self.condition.check(obj.as_ref()) {
            Check::Done => {
                if self.announced {
                    self.observer
                        .success(self.what.to_string(), Some(self.start.elapsed()));
                }
                Ok(Some(obj))
            }
            Check::Failed(reason) => Err(Error::Failed {
                what: self.what.to_string(),
                reason,
            }),
            Check::Pending(detail) => {
                if !self.announced || detail != self.last {
                    self.observer.waiting(self.what.to_string(), detail.clone());
                    self.announced = true;
                }
                self.last = detail;
                Ok(None)
            }
        }
    }

    fn timeout(&mut self, timeout: Duration) -> Error {
        Error::Timeout {
            what: self.what.to_string(),
            timeout,
            last: self.last.take(),
        }
    }
}

/// How a watch of one object ended.
enum Watched {
    /// The condition holds; the object as last seen.
    Done(Box<Option<DynamicObject>>),
    /// The watch closed or failed; `events`: whether it delivered any.
    Ended { events: bool },
    /// The server does not allow the watch (e.g. RBAC): poll instead.
    Refused,
}

/// Watches object `name` from resourceVersion `from` (empty: from now, with the object's current
/// state first) and checks every change, until the condition holds, the watch ends or the
/// wait's `timeout` passes (then [`Watched::Ended`], and the caller reports the timeout).
async fn watch_until(
    api: &Api<DynamicObject>,
    name: &str,
    from: &str,
    state: &mut WaitState<'_>,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Watched, Error> {
    use ::kube::api::{WatchEvent, WatchParams};
    use futures::StreamExt;
    let left = timeout.saturating_sub(state.start.elapsed());
    // The server ends the watch after its own timeout (below the client's read timeout).
    let secs = left.as_secs().clamp(1, 290) as u32;
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(secs);
    let stream = match until_cancelled(cancel, api.watch(&params, from)).await {
        Err(RequestError::Cancelled) => return Err(Error::Cancelled),
        Ok(s) => s,
        Err(RequestError::Server { code, .. }) if code == 403 || code == 405 => {
            return Ok(Watched::Refused);
        }
        Err(_) => return Ok(Watched::Ended { events: false }),
    };
    let mut stream = std::pin::pin!(stream);
    let mut events = false;
    let deadline = tokio::time::Instant::now() + left;
    loop {
        let event = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Error::Cancelled),
            _ = tokio::time::sleep_until(deadline) => return Ok(Watched::Ended { events }),
            e = stream.next() => e,
        };
        let obj = match event {
            None | Some(Err(_)) | Some(Ok(WatchEvent::Error(_))) => {
                return Ok(Watched::Ended { events });
            }
            Some(Ok(WatchEvent::Bookmark(_))) => continue,
            Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o))) => Some(o),
            Some(Ok(WatchEvent::Deleted(_))) => None,
        };
        events = true;
        if let Some(done) = state.look(obj)? {
            return Ok(Watched::Done(Box::new(done)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::conditions::*;
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    fn deployment(generation: i64, status: Value) -> DynamicObject {
        obj(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "generation": generation}, "spec": {"replicas": 2}, "status": status}),
        )
    }

    #[test]
    fn deployment_available_follows_kstatus() {
        let c = deployment_available();
        let full = json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2,
            "conditions": [{"type": "Available", "status": "True"}]});
        assert_eq!(c.check(Some(&deployment(2, full.clone()))), Check::Done);
        assert!(
            matches!(c.check(Some(&deployment(3, full))), Check::Pending(Some(d)) if d.contains("observedGeneration 2 < generation 3"))
        );
        let rolling = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2});
        assert!(matches!(
            c.check(Some(&deployment(2, rolling))),
            Check::Pending(_)
        ));
        let stuck = json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"}]});
        assert_eq!(
            c.check(Some(&deployment(2, stuck))),
            Check::Failed("Progressing=False (ProgressDeadlineExceeded: too slow)".into())
        );
        assert!(matches!(c.check(None), Check::Pending(_)));
    }

    #[test]
    fn ready_requires_current_generation() {
        let c = ready();
        let o = |g: i64, og: i64, s: &str| {
            obj(
                json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "generation": g},
            "status": {"conditions": [{"type": "Ready", "status": s, "observedGeneration": og}]}}),
            )
        };
        assert_eq!(c.check(Some(&o(1, 1, "True"))), Check::Done);
        assert!(matches!(c.check(Some(&o(2, 1, "True"))), Check::Pending(_)));
        assert!(
            matches!(c.check(Some(&o(1, 1, "False"))), Check::Pending(Some(d)) if d == "Ready=False")
        );
    }

    #[test]
    fn deleted_and_all_compose() {
        let o = obj(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n", "uid": "a", "finalizers": ["f"]}}),
        );
        assert_eq!(deleted(Some("a".into())).check(None), Check::Done);
        assert_eq!(deleted(Some("b".into())).check(Some(&o)), Check::Done);
        assert_eq!(
            deleted(Some("a".into())).check(Some(&o)),
            Check::Pending(Some("finalizers f".into()))
        );
        let both = all(vec![Box::new(exists()), Box::new(ready())]);
        assert_eq!(both.check(None), Check::Pending(Some("not found".into())));
    }

    #[test]
    fn crd_established_needs_both_conditions() {
        let crd = |est: &str, names: &str| {
            obj(
                json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "a.b"},
            "status": {"conditions": [{"type": "NamesAccepted", "status": names}, {"type": "Established", "status": est}]}}),
            )
        };
        assert_eq!(
            crd_established().check(Some(&crd("True", "True"))),
            Check::Done
        );
        assert!(matches!(
            crd_established().check(Some(&crd("False", "True"))),
            Check::Pending(_)
        ));
        assert!(matches!(
            crd_established().check(Some(&crd("False", "False"))),
            Check::Failed(_)
        ));
    }
}
