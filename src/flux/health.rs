//! Whether Flux has synced a pushed commit, judged like `flux bootstrap`: the GitRepository and
//! every Kustomization are Ready for their current generation, not suspended, and report the
//! pushed revision (`status.artifact.revision` of the source, `status.lastAttemptedRevision`
//! and `status.lastAppliedRevision` of the Kustomizations).

use std::time::{Duration, Instant};

use ::kube::api::DynamicObject;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Error;
use super::generate::{KUSTOMIZE_API_VERSION, SOURCE_API_VERSION, SyncNames};
use crate::kube::Discovery;
use crate::kube::wait::{Check, Condition, WaitOptions, condition, summary, wait_all};
use crate::manifest::Object;
use crate::observe::{Observer, ObserverExt};

/// The outcome of [`wait_synced`].
#[derive(Debug, Clone)]
pub struct SyncReport {
    /// The revision every object reported.
    pub revision: String,
    /// How long the wait took.
    pub elapsed: Duration,
}

/// What is common to both checks: present, not suspended, status of the current generation.
/// `Err` carries the verdict when one of those fails.
fn current(o: Option<&DynamicObject>) -> Result<&DynamicObject, Check> {
    let o = o.ok_or_else(|| Check::Pending(Some("not found".into())))?;
    if o.data["spec"]["suspend"].as_bool() == Some(true) {
        return Err(Check::Failed("suspended (spec.suspend is true)".into()));
    }
    let generation = o.metadata.generation.unwrap_or(0);
    // kustomize-controller leaves status.observedGeneration at -1 until a revision applies;
    // its Ready condition's own observedGeneration still says which generation it judged.
    let ready_generation = condition(o, "Ready").and_then(|c| c["observedGeneration"].as_i64());
    match o.data["status"]["observedGeneration"].as_i64() {
        Some(g) if g == generation => Ok(o),
        _ if ready_generation == Some(generation) => Ok(o),
        Some(g) => Err(Check::Pending(Some(format!(
            "status.observedGeneration {g} != generation {generation}"
        )))),
        None => Err(Check::Pending(Some("not reconciled yet".into()))),
    }
}

fn ready_status(o: &DynamicObject) -> Option<&str> {
    condition(o, "Ready")?["status"].as_str()
}

fn with_conditions(head: String, o: &DynamicObject) -> String {
    let conds = summary(o);
    if conds.is_empty() {
        head
    } else {
        format!("{head}; {conds}")
    }
}

/// A GitRepository is Ready with its artifact at `expected` (`<branch>@sha1:<hex>`). Ready=False
/// for the current generation is a failure, as in `flux bootstrap`.
pub fn source_synced(expected: String) -> impl Condition {
    move |o: Option<&DynamicObject>| {
        let o = match current(o) {
            Ok(o) => o,
            Err(verdict) => return verdict,
        };
        let revision = o.data["status"]["artifact"]["revision"]
            .as_str()
            .unwrap_or("");
        match ready_status(o) {
            Some("True") if revision == expected => Check::Done,
            Some("False") => Check::Failed(summary(o)),
            _ => Check::Pending(Some(with_conditions(
                format!("artifact revision `{revision}`"),
                o,
            ))),
        }
    }
}

/// A Kustomization attempted and applied `expected` and is Ready. Ready=False after attempting
/// `expected` is a failure (the revision does not apply); before, it may be an older revision's.
pub fn kustomization_synced(expected: String) -> impl Condition {
    move |o: Option<&DynamicObject>| {
        let o = match current(o) {
            Ok(o) => o,
            Err(verdict) => return verdict,
        };
        let status = &o.data["status"];
        let attempted = status["lastAttemptedRevision"].as_str().unwrap_or("");
        let applied = status["lastAppliedRevision"].as_str().unwrap_or("");
        match ready_status(o) {
            Some("True") if attempted == expected && applied == expected => Check::Done,
            Some("False") if attempted == expected => Check::Failed(summary(o)),
            _ => Check::Pending(Some(with_conditions(
                format!("last attempted `{attempted}`, last applied `{applied}`"),
                o,
            ))),
        }
    }
}

fn named(api_version: &str, kind: &str, namespace: &str, name: &str) -> Object {
    Object::new(json!({"apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": namespace}}))
}

/// Waits until Flux has synced `expected_revision` (see [`super::generate::revision`]): the
/// GitRepository and every Kustomization in `names`, together. Failures (suspended, Ready=False,
/// timeout) are collected into one [`Error::NotSynced`] naming each object with its last state.
pub async fn wait_synced(
    discovery: &Discovery,
    names: &SyncNames,
    expected_revision: &str,
    wait: WaitOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<SyncReport, Error> {
    let start = Instant::now();
    observer.action(format!(
        "waiting for Flux to apply {expected_revision} in {}",
        names.namespace
    ));
    let source = named(
        SOURCE_API_VERSION,
        "GitRepository",
        &names.namespace,
        &names.source,
    );
    let mut checks: Vec<(Object, String, Box<dyn Condition>)> = vec![(
        source.clone(),
        format!("{} at {expected_revision}", source.identity()),
        Box::new(source_synced(expected_revision.to_string())),
    )];
    for k in &names.kustomizations {
        let o = named(KUSTOMIZE_API_VERSION, "Kustomization", &names.namespace, k);
        checks.push((
            o.clone(),
            format!("{} at {expected_revision}", o.identity()),
            Box::new(kustomization_synced(expected_revision.to_string())),
        ));
    }
    let failures = wait_all(discovery, &checks, wait, observer, cancel)
        .await
        .map_err(|e| match e {
            crate::kube::Error::Cancelled => Error::Cancelled,
            e => Error::Discovery {
                what: format!("the Flux objects in {}", names.namespace),
                source: Box::new(e),
            },
        })?;
    if !failures.is_empty() {
        return Err(Error::NotSynced {
            revision: expected_revision.to_string(),
            failures,
        });
    }
    observer.success(
        format!("Flux applied {expected_revision}"),
        Some(start.elapsed()),
    );
    Ok(SyncReport {
        revision: expected_revision.to_string(),
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn obj(spec: Value, generation: i64, status: Value) -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "x/v1", "kind": "K",
            "metadata": {"name": "n", "generation": generation}, "spec": spec, "status": status}))
        .unwrap()
    }

    const REV: &str = "main@sha1:0123";

    #[test]
    fn source_needs_ready_current_generation_and_the_revision() {
        let c = source_synced(REV.into());
        let ready = |rev: &str| {
            json!({"observedGeneration": 2, "artifact": {"revision": rev},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded"}]})
        };
        assert_eq!(c.check(Some(&obj(json!({}), 2, ready(REV)))), Check::Done);
        assert!(matches!(
            c.check(Some(&obj(json!({}), 2, ready("main@sha1:old")))),
            Check::Pending(Some(d)) if d.contains("main@sha1:old")
        ));
        assert!(matches!(
            c.check(Some(&obj(json!({}), 3, ready(REV)))),
            Check::Pending(Some(d)) if d.contains("observedGeneration 2 != generation 3")
        ));
        assert!(matches!(
            c.check(Some(&obj(json!({"suspend": true}), 2, ready(REV)))),
            Check::Failed(d) if d.contains("suspended")
        ));
        let failed = json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "False",
            "reason": "AuthenticationFailed", "message": "ssh: handshake failed"}]});
        assert_eq!(
            c.check(Some(&obj(json!({}), 2, failed))),
            Check::Failed("Ready=False (AuthenticationFailed: ssh: handshake failed)".into())
        );
        assert_eq!(c.check(None), Check::Pending(Some("not found".into())));
    }

    #[test]
    fn kustomization_needs_the_revision_attempted_and_applied() {
        let c = kustomization_synced(REV.into());
        let st = |attempted: &str, applied: &str, ready: &str| {
            json!({"observedGeneration": 1, "lastAttemptedRevision": attempted, "lastAppliedRevision": applied,
            "conditions": [{"type": "Ready", "status": ready, "reason": "R", "message": "m"}]})
        };
        assert_eq!(
            c.check(Some(&obj(json!({}), 1, st(REV, REV, "True")))),
            Check::Done
        );
        assert!(matches!(
            c.check(Some(&obj(json!({}), 1, st(REV, "main@sha1:old", "True")))),
            Check::Pending(_)
        ));
        // Failing on an older revision is not a verdict on this one.
        assert!(matches!(
            c.check(Some(&obj(json!({}), 1, st("main@sha1:old", "", "False")))),
            Check::Pending(_)
        ));
        assert_eq!(
            c.check(Some(&obj(json!({}), 1, st(REV, "", "False")))),
            Check::Failed("Ready=False (R: m)".into())
        );
        // A first apply that failed: observedGeneration -1, but Ready judged generation 1.
        let first_failed = json!({"observedGeneration": -1, "lastAttemptedRevision": REV,
            "conditions": [{"type": "Ready", "status": "False", "observedGeneration": 1, "reason": "ReconciliationFailed", "message": "dry-run failed"}]});
        assert_eq!(
            c.check(Some(&obj(json!({}), 1, first_failed))),
            Check::Failed("Ready=False (ReconciliationFailed: dry-run failed)".into())
        );
    }
}
