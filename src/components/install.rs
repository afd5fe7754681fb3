//! Installing components unit by unit with health gates, after `flux install` and clusterctl:
//! each unit is applied, then every CRD in it must be Established, every Deployment Available
//! and every webhook configuration carry a CA bundle before the next unit starts.

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
        let start = Instant::now();
        observer.action(format!(
            "installing {} ({} objects)",
            unit.name,
            unit.objects.len()
        ));
        let objects: Vec<Object> = unit.objects.iter().map(owned_namespace).collect();
        crate::kube::apply(discovery, &objects, &options.apply, observer, cancel)
            .await
            .map_err(|e| match e {
                crate::kube::Error::Cancelled => Error::Cancelled,
                e => Error::Install {
                    unit: unit.name.clone(),
                    source: Box::new(e),
                },
            })?;
        let gated: Vec<(Object, String, Box<dyn Condition>)> = unit
            .objects
            .iter()
            .filter_map(|o| Some((o.clone(), gate_name(o), gate(o.kind())?)))
            .collect();
        let wait = WaitOptions::timeout(options.timeout);
        let failures = wait_all(discovery, &gated, wait, observer, cancel)
            .await
            .map_err(|e| match e {
                crate::kube::Error::Cancelled => Error::Cancelled,
                e => Error::InstallDiscovery {
                    unit: unit.name.clone(),
                    source: Box::new(e),
                },
            })?;
        if !failures.is_empty() {
            return Err(Error::Unhealthy {
                unit: unit.name.clone(),
                timeout: options.timeout,
                failures,
            });
        }
        observer.success(
            format!("{} installed and healthy", unit.name),
            Some(start.elapsed()),
        );
        report.units.push(UnitReport {
            name: unit.name.clone(),
            objects: unit.objects.len(),
            gated: gated.len(),
            elapsed: start.elapsed(),
        });
    }
    Ok(report)
}

/// The label the API server sets on every Namespace to its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A Namespace with its [`NAMESPACE_NAME_LABEL`] set (to the value the server enforces anyway),
/// other objects unchanged. A Namespace applied with nothing but its name gives the applier no
/// field to own, so it is stored without managedFields; kustomize-controller then finds a
/// `before-first-apply` manager on it and rewrites the Namespace on every reconciliation.
/// Owning the label keeps the Namespace still when Flux applies the same manifest.
fn owned_namespace(o: &Object) -> Object {
    let mut o = o.clone();
    if o.kind() == "Namespace" && o.api_version() == "v1" {
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
    o
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
        let ns = owned_namespace(&Object::new(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"x": "y"}}}),
        ));
        assert_eq!(
            ns.value["metadata"]["labels"],
            json!({"x": "y", "kubernetes.io/metadata.name": "a"})
        );
        let cm = Object::new(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
        );
        assert_eq!(owned_namespace(&cm), cm);
    }

    #[test]
    fn gates_cover_crds_deployments_and_webhooks() {
        assert!(gate("CustomResourceDefinition").is_some());
        assert!(gate("Deployment").is_some());
        assert!(gate("MutatingWebhookConfiguration").is_some());
        assert!(gate("ConfigMap").is_none());
    }
}
