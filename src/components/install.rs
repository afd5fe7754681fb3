//! Installing components unit by unit with health gates, after `flux install` and clusterctl:
//! each unit is applied, then every CRD in it must be Established, every Deployment Available
//! and every webhook configuration carry a CA bundle before the next unit starts.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use ::kube::api::DynamicObject;
use tokio_util::sync::CancellationToken;

use super::Error;
use crate::kube::wait::{Check, Condition, WaitOptions, conditions, wait_all};
use crate::kube::{ApplyOptions, Discovery};
use crate::manifest::Object;
use crate::observe::{Observer, ObserverExt};

/// One component installed as a whole: e.g. `flux`, `cert-manager`, `cluster-api`.
#[derive(Debug, Clone)]
pub struct Unit {
    /// The component's name, used in events and errors.
    pub name: String,
    /// Its objects (namespaces and CRDs are applied first by [`crate::kube::apply`]).
    pub objects: Vec<Object>,
}

/// How [`install`] applies and how long it waits.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Server-side apply settings.
    pub apply: ApplyOptions,
    /// How long a unit's objects may take to become healthy after its apply.
    pub timeout: Duration,
}

impl Default for InstallOptions {
    fn default() -> Self {
        InstallOptions {
            apply: ApplyOptions::default(),
            timeout: Duration::from_secs(300),
        }
    }
}

/// What [`install`] did for one unit.
#[derive(Debug, Clone)]
pub struct UnitReport {
    /// The unit's name.
    pub name: String,
    /// Objects applied.
    pub objects: usize,
    /// Objects whose health was awaited (CRDs, Deployments, webhook configurations).
    pub gated: usize,
    /// Apply plus health wait.
    pub elapsed: Duration,
}

/// The outcome of [`install`], one entry per unit in order.
#[derive(Debug, Clone, Default)]
pub struct InstallReport {
    /// The units.
    pub units: Vec<UnitReport>,
}

/// The health gate for an object of this kind, if it has one.
pub fn gate(kind: &str) -> Option<Box<dyn Condition>> {
    match kind {
        "CustomResourceDefinition" => Some(Box::new(conditions::crd_established())),
        "Deployment" => Some(Box::new(conditions::deployment_available())),
        "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration" => {
            Some(Box::new(webhook_ca_injected()))
        }
        _ => None,
    }
}

/// Every webhook that calls a Service has a `caBundle`: without one the API server cannot
/// trust the webhook's certificate, so cert-manager's cainjector (or the component itself)
/// must have filled it in.
pub fn webhook_ca_injected() -> impl Condition {
    |o: Option<&DynamicObject>| match o {
        None => Check::Pending(Some("not found".into())),
        Some(o) => {
            let missing: Vec<&str> = o.data["webhooks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|w| {
                    let cc = &w["clientConfig"];
                    cc.get("service").is_some() && cc["caBundle"].as_str().is_none_or(str::is_empty)
                })
                .map(|w| w["name"].as_str().unwrap_or("?"))
                .collect();
            if missing.is_empty() {
                Check::Done
            } else {
                Check::Pending(Some(format!(
                    "no caBundle yet for webhook {}",
                    missing.join(", ")
                )))
            }
        }
    }
}

/// Installs `units` in order. Each is server-side applied, then its health gates (see [`gate`])
/// are awaited together; a unit that is not healthy within `options.timeout` stops the install
/// with [`Error::Unhealthy`], which names every failing object with its last conditions. Later
/// units are not touched. Re-running with the same units writes nothing.
pub async fn install(
    discovery: &Discovery,
    units: &[Unit],
    options: &InstallOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<InstallReport, Error> {
    let mut report = InstallReport::default();
    for unit in units {
        let objects: Cow<'_, [Object]> = Cow::Borrowed(&unit.objects);
        let done = install_objects(&unit.name, objects, discovery, options, observer, cancel);
        report.units.push(done.await?);
    }
    Ok(report)
}

/// [`install`] of one unit, taken by value: its objects are applied as they are (Namespaces
/// labelled in place) instead of copied, so installing the units one at a time as they are
/// read holds one unit's objects.
pub async fn install_unit(
    discovery: &Discovery,
    unit: Unit,
    options: &InstallOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<UnitReport, Error> {
    let Unit { name, objects } = unit;
    let objects: Cow<'_, [Object]> = Cow::Owned(objects);
    install_objects(&name, objects, discovery, options, observer, cancel).await
}

/// A unit's error from a Kubernetes one: cancellation stays cancellation, anything else is
/// `wrap`ped with the unit's name.
fn unit_error(
    name: &str,
    wrap: fn(String, Box<crate::kube::Error>) -> Error,
) -> impl FnOnce(crate::kube::Error) -> Error + '_ {
    move |e| match e {
        crate::kube::Error::Cancelled => Error::Cancelled,
        e => wrap(name.to_string(), Box::new(e)),
    }
}

async fn install_objects(
    name: &str,
    mut objects: Cow<'_, [Object]>,
    discovery: &Discovery,
    options: &InstallOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<UnitReport, Error> {
    let start = Instant::now();
    observer.action(format!("installing {name} ({} objects)", objects.len()));
    if objects.iter().any(lacks_name_label) {
        objects.to_mut().iter_mut().for_each(own_namespace);
    }
    crate::kube::apply(discovery, &objects, &options.apply, observer, cancel)
        .await
        .map_err(unit_error(name, |unit, source| Error::Install {
            unit,
            source,
        }))?;
    // The waits need only what names each object: its copy keeps no more than that.
    let gated: Vec<(Object, String, Box<dyn Condition>)> = objects
        .iter()
        .filter_map(|o| Some((reference(o), gate_name(o), gate(o.kind())?)))
        .collect();
    let count = objects.len();
    drop(objects);
    let wait = WaitOptions::timeout(options.timeout);
    let failures = wait_all(discovery, &gated, wait, observer, cancel)
        .await
        .map_err(unit_error(name, |unit, source| Error::InstallDiscovery {
            unit,
            source,
        }))?;
    if !failures.is_empty() {
        return Err(Error::Unhealthy {
            unit: name.to_string(),
            timeout: options.timeout,
            failures,
        });
    }
    observer.success(
        format!("{name} installed and healthy"),
        Some(start.elapsed()),
    );
    Ok(UnitReport {
        name: name.to_string(),
        objects: count,
        gated: gated.len(),
        elapsed: start.elapsed(),
    })
}

/// An object reduced to what names it (`apiVersion`, `kind`, `metadata.name` and
/// `metadata.namespace`), with its origin.
fn reference(o: &Object) -> Object {
    let mut metadata = serde_json::Map::new();
    metadata.insert("name".into(), o.name().into());
    if let Some(ns) = o.namespace() {
        metadata.insert("namespace".into(), ns.into());
    }
    Object {
        value: serde_json::json!({
            "apiVersion": o.api_version(),
            "kind": o.kind(),
            "metadata": metadata,
        }),
        origin: o.origin.clone(),
    }
}

/// The label the API server sets on every Namespace to its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

fn is_namespace(o: &Object) -> bool {
    o.kind() == "Namespace" && o.api_version() == "v1"
}

/// A Namespace without its [`NAMESPACE_NAME_LABEL`].
fn lacks_name_label(o: &Object) -> bool {
    is_namespace(o) && o.label(NAMESPACE_NAME_LABEL).is_none()
}

/// Sets a Namespace's [`NAMESPACE_NAME_LABEL`] (to the value the server enforces anyway) unless
/// it has one, other objects unchanged. A Namespace applied with nothing but its name gives
/// the applier no field to own, so it is stored without managedFields; kustomize-controller
/// then finds a `before-first-apply` manager on it and rewrites the Namespace on every
/// reconciliation. Owning the label keeps the Namespace still when Flux applies the same
/// manifest.
fn own_namespace(o: &mut Object) {
    if is_namespace(o) {
        let name = o.name().to_string();
        let labels = o
            .metadata_mut()
            .entry("labels")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels
                .entry(NAMESPACE_NAME_LABEL)
                .or_insert(serde_json::Value::String(name));
        }
    }
}

/// What the wait for an object's gate is called in events.
fn gate_name(object: &Object) -> String {
    match object.kind() {
        "CustomResourceDefinition" => format!("{} established", object.identity()),
        "Deployment" => format!("{} available", object.identity()),
        _ => format!("{} CA bundle", object.identity()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn webhooks_need_a_ca_bundle_when_they_call_a_service() {
        let c = webhook_ca_injected();
        let vwc = |cc: serde_json::Value| -> DynamicObject {
            serde_json::from_value(json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": "w"}, "webhooks": [{"name": "a.example.com", "clientConfig": cc}]}))
            .unwrap()
        };
        assert_eq!(
            c.check(Some(&vwc(
                json!({"service": {"name": "s", "namespace": "n"}})
            ))),
            Check::Pending(Some("no caBundle yet for webhook a.example.com".into()))
        );
        assert_eq!(
            c.check(Some(&vwc(
                json!({"service": {"name": "s", "namespace": "n"}, "caBundle": "Zm9v"})
            ))),
            Check::Done
        );
        assert_eq!(
            c.check(Some(&vwc(json!({"url": "https://x"})))),
            Check::Done
        );
    }

    #[test]
    fn namespaces_get_their_name_label_and_keep_others() {
        let mut ns = Object::new(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"x": "y"}}}),
        );
        assert!(lacks_name_label(&ns));
        own_namespace(&mut ns);
        assert_eq!(
            ns.value["metadata"]["labels"],
            json!({"x": "y", "kubernetes.io/metadata.name": "a"})
        );
        assert!(!lacks_name_label(&ns));
        let mut set = Object::new(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"kubernetes.io/metadata.name": "b"}}}),
        );
        let before = set.clone();
        own_namespace(&mut set);
        assert_eq!(set, before);
        let cm = Object::new(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
        );
        assert!(!lacks_name_label(&cm));
        let mut changed = cm.clone();
        own_namespace(&mut changed);
        assert_eq!(changed, cm);
    }

    #[test]
    fn references_keep_what_names_an_object() {
        let mut o = Object::new(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "n", "labels": {"a": "b"}}, "spec": {"replicas": 1}}));
        o.origin.document = 3;
        let r = reference(&o);
        assert_eq!(
            r.value,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"}})
        );
        assert_eq!(
            (r.identity(), r.gvk(), &r.origin),
            (o.identity(), o.gvk(), &o.origin)
        );
        let crd = Object::new(json!({"apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition", "metadata": {"name": "xs.example.com"}}));
        assert_eq!(reference(&crd), crd);
    }

    #[test]
    fn gates_cover_crds_deployments_and_webhooks() {
        assert!(gate("CustomResourceDefinition").is_some());
        assert!(gate("Deployment").is_some());
        assert!(gate("MutatingWebhookConfiguration").is_some());
        assert!(gate("ConfigMap").is_none());
    }
}
