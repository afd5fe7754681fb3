use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use ::kube::api::{DynamicObject, Patch, PatchParams, ValidationDirective};
use ::kube::{Api, ResourceExt};
use futures::stream::{self, StreamExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::wait::{WaitOptions, conditions, wait_after};
use super::{Discovery, Error, FIELD_MANAGER, RequestError, Resource};
use crate::manifest::{ApplyPhase, Gvk, Object, apply_phase};
use crate::observe::{Observer, ObserverExt};

type Batch<'a> = Vec<(usize, &'a Object)>;

/// Which objects of a batch exist on the server, by kind: `None` for a kind whose objects
/// could not be listed (each is then read before it is applied).
type Existing = HashMap<Gvk, Option<HashSet<(String, String)>>>;

/// How [`apply`] behaves.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Server-side apply field manager.
    pub field_manager: String,
    /// Take ownership of fields other managers set (`--force-conflicts`).
    pub force: bool,
    /// Objects applied at once within a phase.
    pub concurrency: usize,
    /// How long CRDs may take to become established and discoverable.
    pub definitions_timeout: Duration,
    /// Attempts per object for throttling, server and connection errors.
    pub attempts: u32,
    /// Server-side dry run (`--dry-run=server`): the server validates and admits every object
    /// and stores nothing. Objects whose kind only a CRD of the bundle defines cannot be
    /// checked (the CRD is not created): they are reported as warnings and left out.
    pub dry_run: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            field_manager: FIELD_MANAGER.into(),
            force: true,
            concurrency: 16,
            definitions_timeout: Duration::from_secs(60),
            attempts: 6,
            dry_run: false,
        }
    }
}

/// One object as the server stored it after the apply.
#[derive(Debug, Clone)]
pub struct Applied {
    /// `Kind namespace/name`.
    pub identity: String,
    /// The server's copy, with uid and resourceVersion.
    pub object: DynamicObject,
}

/// The outcome of [`apply`]: every object, in bundle order.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// The applied objects.
    pub applied: Vec<Applied>,
}

/// Server-side applies a bundle of objects.
///
/// Every kind is resolved first: a kind the server does not serve and no CRD in the bundle
/// defines fails the whole call before anything is written. Namespaces go first; then the CRDs,
/// and beside them the objects of kinds the server already serves (workloads before the CRDs,
/// webhook configurations after them); the CRDs must be established and discoverable before
/// the objects of their kinds are applied. `concurrency` objects at a
/// time. Throttling, server and connection errors are retried with backoff; the server's
/// refusals (validation, admission) are not, and name the object and its source file.
/// Applying the same bundle again changes nothing on the server.
#[tracing::instrument(name = "apply", level = "info", skip_all, fields(objects = objects.len()))]
pub async fn apply(
    discovery: &Discovery,
    objects: &[Object],
    options: &ApplyOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<ApplyReport, Error> {
    let start = Instant::now();
    let defined = crd_kinds(objects);
    let mut resolved: HashMap<Gvk, Resource> = HashMap::new();
    let mut unknown = Vec::new();
    let mut seen = BTreeSet::new();
    for o in objects {
        let gvk = o.gvk();
        if !seen.insert(gvk.clone()) || defined.contains(&gvk) {
            continue;
        }
        match discovery.resolve_until_cancelled(&gvk, cancel).await? {
            Some(r) => {
                resolved.insert(gvk, r);
            }
            None => unknown.push((gvk, o.origin.clone())),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::UnknownKinds { kinds: unknown });
    }
    let (definitions, rest): (Batch, Batch) = objects
        .iter()
        .enumerate()
        .partition(|(_, o)| apply_phase(&o.gvk()) == ApplyPhase::Definitions);
    observer.action(format!(
        "{} {} objects ({} namespaces and CRDs first)",
        if options.dry_run {
            "checking (server dry run)"
        } else {
            "applying"
        },
        objects.len(),
        definitions.len()
    ));

    let total = objects.len() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let mut results: Vec<Option<Applied>> = vec![None; objects.len()];
    // Objects of kinds the server serves already (a Deployment, a Service) need no CRD of the
    // bundle: outside a dry run they are written beside the CRDs, once the namespaces exist,
    // instead of after every CRD is established. Only the kinds the bundle's CRDs define wait.
    let (early, rest): (Batch, Batch) = if options.dry_run {
        (Vec::new(), rest)
    } else {
        rest.into_iter()
            .partition(|(_, o)| resolved.contains_key(&o.gvk()))
    };
    let listed: Batch = definitions.iter().chain(&early).copied().collect();
    let mut existing = list_existing(discovery, &listed, &resolved, cancel).await?;
    // The kinds of CRDs this apply creates have no objects yet: nothing to read first.
    let crd_gvk = Gvk::from_api_version("apiextensions.k8s.io/v1", "CustomResourceDefinition");
    let new_kinds: BTreeSet<Gvk> = match existing.get(&crd_gvk) {
        Some(Some(crds)) => objects
            .iter()
            .filter(|o| o.gvk() == crd_gvk && !crds.contains(&(String::new(), o.name().into())))
            .flat_map(|o| crd_kinds(std::slice::from_ref(o)))
            .collect(),
        _ => BTreeSet::new(),
    };
    let (namespaces, crds): (Batch, Batch) = definitions
        .iter()
        .partition(|(_, o)| o.kind() == "Namespace" && o.gvk().group.is_empty());
    let first: Batch = if early.is_empty() {
        definitions.clone()
    } else {
        namespaces
    };
    let beside_crds: Batch = if early.is_empty() {
        Vec::new()
    } else {
        beside_crds_order(crds, early)
    };
    // Each CRD is awaited from the moment its write returns, while the others are written.
    let crd_api = (!options.dry_run).then(|| crd_api(discovery));
    for batch in [first, beside_crds] {
        if batch.is_empty() {
            continue;
        }
        run_phase(
            discovery,
            &batch,
            &existing,
            &resolved,
            options,
            crd_api.as_ref(),
            observer,
            cancel,
            &done,
            total,
            &mut results,
        )
        .await?;
    }

    let rest = if options.dry_run {
        dry_run_checkable(discovery, rest, &defined, &mut resolved, observer, cancel).await?
    } else {
        wait_for_discovery(discovery, &rest, &defined, &mut resolved, options, cancel).await?;
        rest
    };
    let listed: Batch = rest
        .iter()
        .filter(|(_, o)| !new_kinds.contains(&o.gvk()) && !existing.contains_key(&o.gvk()))
        .copied()
        .collect();
    existing.extend(list_existing(discovery, &listed, &resolved, cancel).await?);
    for gvk in new_kinds {
        existing.insert(gvk, Some(HashSet::new()));
    }
    run_phase(
        discovery,
        &rest,
        &existing,
        &resolved,
        options,
        None,
        observer,
        cancel,
        &done,
        total,
        &mut results,
    )
    .await?;
    let applied: Vec<Applied> = results.into_iter().flatten().collect();
    observer.success(
        if options.dry_run {
            format!(
                "the server accepts {} objects (dry run: nothing changed)",
                applied.len()
            )
        } else {
            format!("applied {} objects", applied.len())
        },
        Some(start.elapsed()),
    );
    Ok(ApplyReport { applied })
}

/// For a dry run: the objects of `rest` whose kind the server serves now; the others (their
/// CRD is in the bundle, and a dry run does not create it) are reported and left out.
async fn dry_run_checkable<'a>(
    discovery: &Discovery,
    rest: Batch<'a>,
    defined: &BTreeSet<Gvk>,
    resolved: &mut HashMap<Gvk, Resource>,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Batch<'a>, Error> {
    let mut checkable = Vec::with_capacity(rest.len());
    for (i, o) in rest {
        let gvk = o.gvk();
        if !resolved.contains_key(&gvk) && defined.contains(&gvk) {
            match discovery.resolve_until_cancelled(&gvk, cancel).await? {
                Some(r) => {
                    resolved.insert(gvk, r);
                }
                None => {
                    observer.warning(format!(
                        "not checked: {}: its kind {gvk} comes from a CRD of this bundle, which a dry run does not create",
                        o.identity()
                    ));
                    continue;
                }
            }
        }
        checkable.push((i, o));
    }
    Ok(checkable)
}

/// The API of CustomResourceDefinitions.
fn crd_api(discovery: &Discovery) -> Api<DynamicObject> {
    Api::all_with(
        discovery.client().clone(),
        &::kube::api::ApiResource::from_gvk_with_plural(
            &::kube::api::GroupVersionKind::gvk(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
            ),
            "customresourcedefinitions",
        ),
    )
}

/// The kinds the bundle's (established) CRDs define that the rest of the bundle uses,
/// discoverable.
async fn wait_for_discovery(
    discovery: &Discovery,
    rest: &Batch<'_>,
    defined: &BTreeSet<Gvk>,
    resolved: &mut HashMap<Gvk, Resource>,
    options: &ApplyOptions,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let mut needed: BTreeSet<Gvk> = rest
        .iter()
        .map(|(_, o)| o.gvk())
        .filter(|g| defined.contains(g))
        .collect();
    let deadline = Instant::now() + options.definitions_timeout;
    while !needed.is_empty() {
        // One refresh answers for every kind (two requests with aggregated discovery).
        let complete = discovery.refresh(cancel).await?;
        let mut missing = BTreeSet::new();
        for gvk in needed {
            let found = if complete {
                discovery.cached(&gvk).await
            } else {
                discovery.resolve_until_cancelled(&gvk, cancel).await?
            };
            match found {
                Some(r) => {
                    resolved.insert(gvk, r);
                }
                None => {
                    missing.insert(gvk);
                }
            }
        }
        needed = missing;
        let Some(gvk) = needed.first() else { break };
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("kind {gvk} to become discoverable"),
                timeout: options.definitions_timeout,
                last: None,
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => return Err(Error::Cancelled),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    Ok(())
}

/// Applies a batch, `concurrency` objects at a time. With `crds`, each CustomResourceDefinition
/// is then awaited until established, from the copy its write returned; the waits run beside
/// the writes and take no write slot.
#[allow(clippy::too_many_arguments)]
async fn run_phase<'a>(
    discovery: &Discovery,
    batch: &[(usize, &Object)],
    existing: &Existing,
    resolved: &HashMap<Gvk, Resource>,
    options: &ApplyOptions,
    crds: Option<&'a Api<DynamicObject>>,
    observer: &'a dyn Observer,
    cancel: &'a CancellationToken,
    done: &std::sync::atomic::AtomicU64,
    total: u64,
    results: &mut [Option<Applied>],
) -> Result<(), Error> {
    use futures::stream::FuturesUnordered;
    let applies = stream::iter(batch.iter().map(|&(i, o)| async move {
        let resource = resolved
            .get(&o.gvk())
            .expect("kinds were resolved before applying");
        let exists = existing
            .get(&o.gvk())
            .and_then(Option::as_ref)
            .map(|names| names.contains(&key(discovery, resource, o)));
        let r = tokio::select! {
            _ = cancel.cancelled() => Err(Error::Cancelled),
            r = apply_one(discovery, resource, o, options, exists) => r,
        };
        if r.is_ok() {
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            observer.progress("objects applied", n, Some(total));
        }
        (i, o, r)
    }))
    .buffer_unordered(options.concurrency.max(1));
    let mut applies = std::pin::pin!(applies);
    let wait = WaitOptions::timeout(options.definitions_timeout);
    let establish = move |i: usize,
                          name: String,
                          seen: DynamicObject,
                          api: &'a Api<DynamicObject>| async move {
        let what = format!("CRD {name} established");
        let r = wait_after(
            api,
            &name,
            seen,
            &what,
            &conditions::crd_established(),
            wait,
            observer,
            cancel,
        )
        .await;
        (i, r.map(|_| ()))
    };
    let mut waits = FuturesUnordered::new();
    let mut outcomes: Vec<(usize, Result<Applied, Error>)> = Vec::with_capacity(batch.len());
    let mut wait_failures: Vec<(usize, Error)> = Vec::new();
    let mut applying = true;
    while applying || !waits.is_empty() {
        tokio::select! {
            next = applies.next(), if applying => match next {
                None => applying = false,
                Some((i, o, r)) => {
                    if let (Some(api), Ok(a)) = (crds, &r)
                        && o.kind() == "CustomResourceDefinition"
                        && o.gvk().group == "apiextensions.k8s.io"
                    {
                        waits.push(establish(i, a.object.name_any(), a.object.clone(), api));
                    }
                    outcomes.push((i, r));
                }
            },
            Some((i, r)) = waits.next(), if !waits.is_empty() => {
                if let Err(e) = r {
                    wait_failures.push((i, e));
                }
            }
        }
    }
    let mut failures: Vec<(usize, Error)> = Vec::new();
    for (i, r) in outcomes {
        match r {
            Ok(a) => results[i] = Some(a),
            Err(e) => failures.push((i, e)),
        }
    }
    failures.extend(wait_failures);
    failures.sort_by_key(|(i, _)| *i);
    let mut failures = failures.into_iter();
    match failures.next() {
        None => Ok(()),
        Some((_, first)) => {
            for (_, other) in failures {
                observer.warning(error_line(&other));
            }
            Err(first)
        }
    }
}

fn error_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The objects of the batch's kinds that exist, each kind listed once (metadata only) across
/// namespaces, all kinds at once. A kind that cannot be listed (e.g. RBAC allows only reading
/// single objects) is `None`.
async fn list_existing(
    discovery: &Discovery,
    batch: &[(usize, &Object)],
    resolved: &HashMap<Gvk, Resource>,
    cancel: &CancellationToken,
) -> Result<Existing, Error> {
    let kinds: BTreeSet<Gvk> = batch.iter().map(|(_, o)| o.gvk()).collect();
    let lists = stream::iter(kinds.into_iter().filter_map(|gvk| {
        let resource = resolved.get(&gvk)?.clone();
        Some(async move {
            let api: Api<::kube::core::PartialObjectMeta<DynamicObject>> =
                Api::all_with(discovery.client().clone(), &resource.api);
            let list = super::until_cancelled(cancel, async {
                api.list_metadata(&::kube::api::ListParams::default()).await
            })
            .await;
            (gvk, list)
        })
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    let mut out = Existing::new();
    for (gvk, list) in lists {
        let names = match list {
            Err(RequestError::Cancelled) => return Err(Error::Cancelled),
            Err(_) => None,
            Ok(list) => Some(
                list.items
                    .into_iter()
                    .map(|m| {
                        (
                            m.metadata.namespace.unwrap_or_default(),
                            m.metadata.name.unwrap_or_default(),
                        )
                    })
                    .collect(),
            ),
        };
        out.insert(gvk, names);
    }
    Ok(out)
}

/// Namespace (empty when cluster-scoped) and name the object is applied as.
fn key(discovery: &Discovery, resource: &Resource, object: &Object) -> (String, String) {
    let ns = if resource.namespaced {
        object
            .namespace()
            .unwrap_or(discovery.client().default_namespace())
            .to_string()
    } else {
        String::new()
    };
    (ns, object.name().to_string())
}

/// Applies one object. `exists`: whether it is on the server, when the caller knows (a new
/// object is applied at once; an existing or unknown one is read first, see below).
async fn apply_one(
    discovery: &Discovery,
    resource: &Resource,
    object: &Object,
    options: &ApplyOptions,
    exists: Option<bool>,
) -> Result<Applied, Error> {
    let client = discovery.client().clone();
    let mut body = object.value.clone();
    let api: Api<DynamicObject> = if resource.namespaced {
        let ns = object
            .namespace()
            .unwrap_or(client.default_namespace())
            .to_string();
        body["metadata"]["namespace"] = Value::String(ns.clone());
        Api::namespaced_with(client, &ns, &resource.api)
    } else {
        if let Some(md) = body["metadata"].as_object_mut() {
            md.remove("namespace");
        }
        Api::all_with(client, &resource.api)
    };
    let mut identity_obj = object.clone();
    identity_obj.value = body.clone();
    let identity = identity_obj.identity();
    let mut params = PatchParams::apply(&options.field_manager);
    params.force = options.force;
    params.dry_run = options.dry_run;
    // Server-side apply refuses fields the schema does not declare whatever this says; it only
    // decides whether the server parses the body a second time, strictly, to find keys given
    // twice, which a body serialized from a JSON map cannot have. Without that second parse the
    // server does less for every object (a large CRD is a large document to parse).
    params.field_validation = Some(ValidationDirective::Ignore);
    // Re-applying an unchanged configuration must not write: the server writes anyway for some
    // objects (a CRD whose schema defaults `status` is rewritten on every update, and a config
    // that owns no fields adds and drops its managedFields entry). So an existing object is
    // first applied as a dry run, and only written when the result differs from what is live.
    let live = if exists == Some(false) {
        None
    } else {
        with_retries(options, || api.get_opt(object.name()))
            .await
            .map_err(|source| Error::Object {
                action: "reading",
                identity: identity.clone(),
                origin: object.origin.clone(),
                source,
            })?
    };
    if let Some(live) = live {
        if owns_no_fields(&body) {
            return Ok(Applied {
                identity,
                object: live,
            });
        }
        let mut dry = params.clone();
        dry.dry_run = true;
        let patch = Patch::Apply(&body);
        let would = with_retries(options, || api.patch(object.name(), &dry, &patch)).await;
        if let Ok(would) = would
            && comparable(&would) == comparable(&live)
        {
            return Ok(Applied {
                identity,
                object: live,
            });
        }
        // A failed dry run is not final: the real apply below reports the server's answer.
    }
    let patch = Patch::Apply(&body);
    match with_retries(options, || api.patch(object.name(), &params, &patch)).await {
        Ok(stored) => Ok(Applied {
            identity,
            object: stored,
        }),
        Err(source) => Err(Error::Object {
            action: "applying",
            identity,
            origin: object.origin.clone(),
            source,
        }),
    }
}

/// Runs a request, retrying throttling, server and connection errors with backoff.
async fn with_retries<T, F, Fut>(options: &ApplyOptions, mut request: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ::kube::Error>>,
{
    let mut delay = Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        match request().await.map_err(RequestError::from) {
            Err(e) if e.is_transient() && attempt < options.attempts => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// An object without what changes on every write even when nothing else does.
fn comparable(o: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("resourceVersion");
        if let Some(mf) = md.get_mut("managedFields").and_then(Value::as_array_mut) {
            for entry in mf {
                if let Some(e) = entry.as_object_mut() {
                    e.remove("time");
                }
            }
        }
    }
    v
}

/// Whether an applied configuration sets nothing but identity (apiVersion, kind, name, namespace).
fn owns_no_fields(body: &Value) -> bool {
    let Some(top) = body.as_object() else {
        return false;
    };
    let md_ok = top
        .get("metadata")
        .and_then(Value::as_object)
        .is_some_and(|m| m.keys().all(|k| k == "name" || k == "namespace"));
    md_ok
        && top
            .keys()
            .all(|k| k == "apiVersion" || k == "kind" || k == "metadata")
}

/// The order of the batch written beside the CRDs: the workloads and what they need (service
/// accounts, RBAC, Services, Deployments) first, so the controllers, the scheduler and the nodes
/// bring them up while the server is still busy with the CRDs (the slow writes: each is
/// validated, stored, then established by the server's own controllers); then the CRDs; then
/// the webhook configurations, after the CRDs as before: a webhook whose server is not up yet
/// must not stand in the way of the definitions. Bundle order within each group.
fn beside_crds_order<'a>(crds: Batch<'a>, early: Batch<'a>) -> Batch<'a> {
    let (webhooks, workloads): (Batch, Batch) = early
        .into_iter()
        .partition(|(_, o)| is_webhook_configuration(o));
    workloads.into_iter().chain(crds).chain(webhooks).collect()
}

/// Whether the object configures admission webhooks (validating or mutating).
fn is_webhook_configuration(o: &Object) -> bool {
    o.gvk().group == "admissionregistration.k8s.io"
        && matches!(
            o.kind(),
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"
        )
}

/// Every (group, version, kind) that a CRD in the bundle serves.
fn crd_kinds(objects: &[Object]) -> BTreeSet<Gvk> {
    let mut out = BTreeSet::new();
    for o in objects.iter().filter(|o| {
        o.kind() == "CustomResourceDefinition" && o.gvk().group == "apiextensions.k8s.io"
    }) {
        let spec = &o.value["spec"];
        let (Some(group), Some(kind)) = (spec["group"].as_str(), spec["names"]["kind"].as_str())
        else {
            continue;
        };
        for v in spec["versions"].as_array().into_iter().flatten() {
            if let Some(version) = v["name"].as_str() {
                out.insert(Gvk {
                    group: group.into(),
                    version: version.into(),
                    kind: kind.into(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_str;

    #[test]
    fn identity_only_configs_own_no_fields() {
        assert!(owns_no_fields(
            &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})
        ));
        assert!(!owns_no_fields(
            &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"x": "y"}}})
        ));
        assert!(!owns_no_fields(
            &serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {}})
        ));
    }

    #[test]
    fn workloads_go_before_the_crds_and_webhook_configurations_after() {
        let objs = parse_str(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: n}\n---\n\
             apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: v}\n---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: n}\n---\n\
             apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {name: m}\n---\n\
             apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n---\n\
             apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: gadgets.example.com}\n",
            None,
        )
        .unwrap();
        let (crds, early): (Batch, Batch) = objs
            .iter()
            .enumerate()
            .partition(|(_, o)| o.kind() == "CustomResourceDefinition");
        let order: Vec<&str> = beside_crds_order(crds, early)
            .iter()
            .map(|(_, o)| o.name())
            .collect();
        assert_eq!(
            order,
            [
                "a",
                "d",
                "widgets.example.com",
                "gadgets.example.com",
                "v",
                "m"
            ]
        );
    }

    #[test]
    fn crd_kinds_lists_every_served_version() {
        let objs = parse_str(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n  versions: [{name: v1alpha1}, {name: v1}]\n",
            None,
        )
        .unwrap();
        let kinds: Vec<String> = crd_kinds(&objs).iter().map(|g| g.to_string()).collect();
        assert_eq!(
            kinds,
            [
                "example.com/v1, Kind=Widget",
                "example.com/v1alpha1, Kind=Widget"
            ]
        );
    }
}
