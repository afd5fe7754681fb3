//! `capi_manage::flux` on a kwok-backed control plane: component install with health gates
//! (`capi_manage::components::install`),
//! and real GitOps with source-controller and kustomize-controller (built from their Go
//! modules) syncing from a loopback sshd with a generated deploy key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use capi_manage::components::{Error, InstallOptions, Unit, install};
use capi_manage::flux::source_synced;
use capi_manage::flux::{
    SourceAuth, Suspendable, SyncNames, SyncOptions, request_reconcile, resume, revision, suspend,
    suspend_all, sync_objects, wait_synced,
};
use capi_manage::kube::wait::{WaitOptions, wait_for};
use capi_manage::kube::{ApplyOptions, Discovery, apply};
use capi_manage::manifest::{Object, parse_file, to_yaml};
use capi_manage::observe::{Event, Silent};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::capi::dynamic_api;
use crate::support::flux::FluxControllers;
use crate::support::git_server::{Sshd, bare_repo, git, rev_parse, work_repo};
use crate::support::{self, ControlPlane, Options};

const WEBHOOK: &str = "cert-manager-webhook";

fn yaml_files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".yaml") && keep(&n)
        })
        .collect();
    files.sort();
    files
}

fn parse_all(files: &[PathBuf]) -> Vec<Object> {
    files.iter().flat_map(|p| parse_file(p).unwrap()).collect()
}

/// A Deployment of one replica whose pod kwok runs (unless `node_selector` matches no node).
fn deployment(namespace: &str, name: &str, node_selector: Option<Value>) -> Object {
    let mut pod =
        json!({"containers": [{"name": "manager", "image": format!("example.invalid/{name}:v1")}]});
    if let Some(sel) = node_selector {
        pod["nodeSelector"] = sel;
    }
    Object::new(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod}},
    }))
}

fn namespace(name: &str) -> Object {
    Object::new(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
}

/// The components as `capi-manage vendor` lays them out: one file per unit under
/// `vendor-manifests/`, and a kustomization.yaml listing them for Flux. Flux's are the real
/// upstream objects (namespaced like flux2's install); cert-manager is a stand-in with a webhook
/// configuration waiting for its CA bundle; CAPI, CAPO and sealed-secrets are their real CRDs
/// plus a small controller Deployment each.
fn write_components(repo: &Path) -> Vec<(String, PathBuf)> {
    let fx = support::fixtures();
    let mut flux = parse_all(&yaml_files(&fx.join("flux"), |n| {
        n.starts_with("install-") || n.starts_with("crd-") || n.starts_with("rbac-")
    }));
    for mut d in parse_all(&yaml_files(&fx.join("flux"), |n| {
        n.ends_with("-deployment.yaml")
    })) {
        d.set_namespace("flux-system");
        flux.push(d);
    }
    let cert_manager = vec![
        namespace("cert-manager"),
        deployment("cert-manager", "cert-manager", None),
        deployment("cert-manager", WEBHOOK, None),
        Object::new(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": WEBHOOK, "namespace": "cert-manager"},
            "spec": {"selector": {"app": WEBHOOK}, "ports": [{"name": "https", "port": 443, "targetPort": 10250}]}})),
        Object::new(
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": WEBHOOK, "annotations": {"cert-manager.io/inject-ca-from-secret": "cert-manager/cert-manager-webhook-ca"}},
            "webhooks": [{"name": "webhook.cert-manager.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "failurePolicy": "Fail", "timeoutSeconds": 5,
                "clientConfig": {"service": {"name": WEBHOOK, "namespace": "cert-manager", "path": "/validate"}},
                // Only kinds nothing here creates, so the stand-in is never called.
                "rules": [{"apiGroups": ["cert-manager.io"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["certificates"]}]}]}),
        ),
    ];
    let crds = |dir: &str| parse_all(&yaml_files(&fx.join(dir), |_| true));
    let mut capi = vec![namespace("capi-system")];
    capi.extend(crds("cluster-api"));
    capi.push(deployment("capi-system", "capi-controller-manager", None));
    let mut capo = vec![namespace("capo-system")];
    capo.extend(crds("openstack"));
    capo.push(deployment("capo-system", "capo-controller-manager", None));
    let mut sealed = crds("sealed-secrets");
    sealed.push(deployment("kube-system", "sealed-secrets-controller", None));

    let dir = repo.join("vendor-manifests");
    std::fs::create_dir_all(&dir).unwrap();
    let mut out = Vec::new();
    let mut kustomization = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
    );
    for (name, objects) in [
        ("flux", flux),
        ("cert-manager", cert_manager),
        ("cluster-api", capi),
        ("cluster-api-provider-openstack", capo),
        ("sealed-secrets", sealed),
    ] {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, to_yaml(&objects)).unwrap();
        kustomization.push_str(&format!("- {name}.yaml\n"));
        out.push((name.to_string(), path));
    }
    std::fs::write(dir.join("kustomization.yaml"), kustomization).unwrap();
    out
}

/// Units read back from the component files, exactly what Flux will read from git.
fn units(files: &[(String, PathBuf)]) -> Vec<Unit> {
    files
        .iter()
        .map(|(name, path)| Unit {
            name: name.clone(),
            objects: parse_file(path).unwrap(),
        })
        .collect()
}

/// Every object of the units as stored now, by identity.
async fn snapshot(discovery: &Discovery, units: &[Unit]) -> BTreeMap<String, DynamicObject> {
    let mut out = BTreeMap::new();
    for o in units.iter().flat_map(|u| &u.objects) {
        let live = dynamic_api(discovery, o)
            .await
            .get(o.name())
            .await
            .unwrap_or_else(|e| panic!("{} readable: {e}", o.identity()));
        out.insert(o.identity(), live);
    }
    out
}

fn resource_version(o: &DynamicObject) -> String {
    o.metadata.resource_version.clone().unwrap_or_default()
}

/// The object as an applier writes it: everything but `status`, the resourceVersion and the
/// managedFields entries of the status subresource. A controller reporting status (the
/// deployment controller as kwok's pods come and go) moves the resourceVersion too.
fn outside_status(o: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(o).unwrap();
    let md = v["metadata"].as_object_mut().unwrap();
    md.remove("resourceVersion");
    if let Some(Value::Array(fields)) = md.get_mut("managedFields") {
        fields.retain(|f| f["subresource"] != "status");
    }
    v.as_object_mut().unwrap().remove("status");
    v
}

/// Whether something other than a status report changed the object between the two reads.
/// Prints what changed, so that a failure names the writer.
fn was_written(id: &str, before: &DynamicObject, now: &DynamicObject) -> bool {
    if resource_version(before) == resource_version(now) {
        return false;
    }
    let (b, n) = (outside_status(before), outside_status(now));
    if b == n {
        return false;
    }
    let owners = |v: &Value| -> Vec<String> {
        v["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| format!("{}/{}@{}", f["manager"], f["operation"], f["time"]))
            .collect()
    };
    eprintln!(
        "{id} written: managers {:?} -> {:?}",
        owners(&b),
        owners(&n)
    );
    true
}

/// The stand-in for cert-manager's cainjector: once the webhook configuration exists, waits
/// `delay`, then fills in its CA bundle. Returns when it did so.
fn spawn_cainjector(
    cp: &ControlPlane,
    client: kube::Client,
    delay: Duration,
) -> tokio::task::JoinHandle<Instant> {
    let ca = base64::engine::general_purpose::STANDARD.encode(cp.ca_pem());
    tokio::spawn(async move {
        let api: Api<k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration> =
            Api::all(client);
        loop {
            if let Ok(Some(vwc)) = api.get_opt(WEBHOOK).await {
                tokio::time::sleep(delay).await;
                let mut webhooks = serde_json::to_value(&vwc.webhooks).unwrap();
                for w in webhooks.as_array_mut().unwrap() {
                    w["clientConfig"]["caBundle"] = json!(ca);
                }
                api.patch(
                    WEBHOOK,
                    &PatchParams {
                        field_manager: Some("cainjector".into()),
                        ..Default::default()
                    },
                    &Patch::Merge(json!({"webhooks": webhooks})),
                )
                .await
                .expect("inject the CA bundle");
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// An observer that records events with the time they happened.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(Instant, String)>>>);

impl capi_manage::observe::Observer for Recorder {
    fn event(&self, e: Event) {
        self.0.lock().unwrap().push((Instant::now(), e.to_string()));
    }
}

impl Recorder {
    fn when(&self, prefix: &str) -> Instant {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|(_, e)| e.starts_with(prefix))
            .unwrap_or_else(|| panic!("no event starting with {prefix:?}"))
            .0
    }
}

#[tokio::test]
async fn install_waits_unit_by_unit_reruns_write_nothing_and_failures_are_collected() {
    let cp = ControlPlane::start_with(Options::kwok()).await;
    let discovery = Discovery::new(cp.client().await);
    let cancel = CancellationToken::new();
    let tmp = tempfile::tempdir().unwrap();
    let units = units(&write_components(tmp.path()));

    let injector = spawn_cainjector(&cp, cp.client().await, Duration::from_secs(2));
    let events = Recorder::default();
    let options = InstallOptions {
        timeout: Duration::from_secs(180),
        ..Default::default()
    };
    let start = Instant::now();
    let report = install(&discovery, &units, &options, &events, &cancel)
        .await
        .unwrap_or_else(|e| panic!("{}", support::error_chain(&e)));
    let took = start.elapsed();
    let injected = injector.await.unwrap();
    eprintln!(
        "install of {} units ({} objects) took {:.1}s: {}",
        report.units.len(),
        units.iter().map(|u| u.objects.len()).sum::<usize>(),
        took.as_secs_f64(),
        report
            .units
            .iter()
            .map(|u| format!(
                "{} {} objects, {} gated, {:.1}s",
                u.name,
                u.objects,
                u.gated,
                u.elapsed.as_secs_f64()
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let names: Vec<&str> = report.units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "flux",
            "cert-manager",
            "cluster-api",
            "cluster-api-provider-openstack",
            "sealed-secrets"
        ]
    );
    // Gates: each unit starts only after the previous one is healthy, and cluster-api waited
    // for cert-manager's webhook to get its CA bundle.
    assert!(events.when("flux installed and healthy") < events.when("installing cert-manager"));
    assert!(injected < events.when("cert-manager installed and healthy"));
    assert!(injected < events.when("installing cluster-api"));
    assert_eq!(
        report.units[0].gated,
        8 + 3,
        "Flux: 8 CRDs and 3 Deployments"
    );

    // Re-run: nothing is written.
    let before = snapshot(&discovery, &units).await;
    install(&discovery, &units, &options, &Silent, &cancel)
        .await
        .unwrap_or_else(|e| panic!("{}", support::error_chain(&e)));
    let after = snapshot(&discovery, &units).await;
    let changed: Vec<&String> = before
        .iter()
        .filter(|(k, v)| was_written(k, v, &after[*k]))
        .map(|(k, _)| k)
        .collect();
    assert!(changed.is_empty(), "re-run wrote {changed:?}");

    // A unit that can never become healthy fails with every failing object named, and the
    // unit after it is not applied.
    let nowhere = json!({"capi-manage.test/no-such-node": "true"});
    let broken = Unit {
        name: "broken".into(),
        objects: vec![
            namespace("broken"),
            deployment("broken", "stuck-a", Some(nowhere.clone())),
            deployment("broken", "stuck-b", Some(nowhere)),
            deployment("broken", "fine", None),
        ],
    };
    let later = Unit {
        name: "later".into(),
        objects: vec![Object::new(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later", "namespace": "broken"}}),
        )],
    };
    let short = InstallOptions {
        timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let start = Instant::now();
    let err = install(&discovery, &[broken, later], &short, &Silent, &cancel)
        .await
        .unwrap_err();
    let line = support::error_chain(&err);
    eprintln!(
        "collected failure after {:.1}s: {line}",
        start.elapsed().as_secs_f64()
    );
    assert!(start.elapsed() < Duration::from_secs(30), "{line}");
    match &err {
        Error::Unhealthy { unit, failures, .. } => {
            assert_eq!(unit, "broken");
            let ids: Vec<&str> = failures.iter().map(|f| f.identity.as_str()).collect();
            assert_eq!(
                ids,
                ["Deployment broken/stuck-a", "Deployment broken/stuck-b"]
            );
            for f in failures {
                assert!(
                    f.detail.contains("0 available") && f.detail.contains("Available=False"),
                    "last conditions in {f}"
                );
            }
        }
        other => panic!("expected Unhealthy, got {line} ({other:?})"),
    }
    assert!(
        line.starts_with("broken is not healthy after 10s (2 objects): Deployment broken/stuck-a: not ready after 10s, last seen: "),
        "{line}"
    );
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(cp.client().await, "broken");
    assert!(cms.get_opt("later").await.unwrap().is_none());
}

/// Commits everything in `work` and pushes it to `bare`; returns the commit.
fn commit_and_push(work: &Path, bare: &Path, message: &str) -> String {
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", message]);
    git(work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    rev_parse(bare, "refs/heads/main").unwrap()
}

fn configmap(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n  value: \"{value}\"\n"
    )
}

/// What differs between two copies of an object once fields that change on every write are
/// dropped: metadata.managedFields, resourceVersion and status. Labels and annotations are
/// compared too (and reported by the caller).
fn content(o: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(o).unwrap();
    let md = v["metadata"].as_object_mut().unwrap();
    md.remove("managedFields");
    md.remove("resourceVersion");
    v.as_object_mut().unwrap().remove("status");
    v
}

fn managers(o: &DynamicObject) -> Vec<String> {
    o.metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            format!(
                "{}/{}",
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default()
            )
        })
        .collect()
}

/// Installs `units` again and returns the objects it (or anyone but a status reporter) wrote
/// since `before`.
async fn install_writes(
    discovery: &Discovery,
    units: &[Unit],
    before: &BTreeMap<String, DynamicObject>,
) -> Vec<String> {
    install(
        discovery,
        units,
        &InstallOptions::default(),
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{}", support::error_chain(&e)));
    let now = snapshot(discovery, units).await;
    before
        .iter()
        .filter(|(k, v)| was_written(k, v, &now[*k]))
        .map(|(k, _)| k.clone())
        .collect()
}

#[tokio::test]
async fn real_flux_syncs_over_ssh_and_changes_nothing_capi_manage_installed() {
    let cp = ControlPlane::start_with(Options::kwok()).await;
    let discovery = Discovery::new(cp.client().await);
    let cancel = CancellationToken::new();
    let tmp = tempfile::tempdir().unwrap();

    // The config repository: components and a cluster folder.
    let work = work_repo(tmp.path(), "work");
    let bare = bare_repo(&tmp.path().join("git"), "config.git");
    let units = units(&write_components(&work));
    let cluster_dir = work.join("clusters/test");
    std::fs::create_dir_all(&cluster_dir).unwrap();
    std::fs::write(
        cluster_dir.join("configmaps.yaml"),
        format!("{}---\n{}", configmap("one", "1"), configmap("two", "2")),
    )
    .unwrap();
    let first = commit_and_push(&work, &bare, "components and cluster test");

    // capi-manage installs the components (the CA bundle comes from the stand-in injector).
    let injector = spawn_cainjector(&cp, cp.client().await, Duration::ZERO);
    let start = Instant::now();
    install(
        &discovery,
        &units,
        &InstallOptions {
            timeout: Duration::from_secs(180),
            ..Default::default()
        },
        &Silent,
        &cancel,
    )
    .await
    .unwrap_or_else(|e| panic!("{}", support::error_chain(&e)));
    eprintln!("install took {:.1}s", start.elapsed().as_secs_f64());
    injector.await.unwrap();
    let installed = snapshot(&discovery, &units).await;

    // Flux reads the repository over SSH with a generated deploy key, trusting the scanned
    // host keys: the SSH source Secret end to end through go-git's known_hosts check.
    let sshd = Sshd::start(tmp.path());
    let key = capi_manage::git::generate_deploy_key("flux-test").unwrap();
    let authorized = tmp.path().join("sshd/authorized_keys");
    let mut keys = std::fs::read_to_string(&authorized).unwrap();
    keys.push_str(&format!("{}\n", key.public_line));
    std::fs::write(&authorized, keys).unwrap();
    let host_keys = capi_manage::git::scan_host_keys(
        &capi_manage::git::HostKeyScanOptions::new("127.0.0.1", sshd.port),
        &Silent,
        &cancel,
    )
    .await
    .unwrap();
    let mut sync = SyncOptions::new("test", sshd.url(&bare), "main");
    sync.auth = SourceAuth::Ssh {
        identity: key.private_openssh.to_string(),
        identity_pub: key.public_line.clone(),
        known_hosts: host_keys.known_hosts(),
    };
    let names = sync.names();

    let mut controllers = FluxControllers::start(&cp);
    let start = Instant::now();
    apply(
        &discovery,
        &sync_objects(&sync),
        &ApplyOptions::default(),
        &Silent,
        &cancel,
    )
    .await
    .unwrap();
    let wait = WaitOptions::timeout(Duration::from_secs(180));
    let rev1 = revision("main", &first);
    let synced = wait_synced(&discovery, &names, &rev1, wait, &Silent, &cancel).await;
    controllers.assert_running();
    let synced = synced.unwrap_or_else(|e| {
        panic!(
            "{}\n{}",
            support::error_chain(&e),
            controllers.log_tails(40)
        )
    });
    eprintln!(
        "Flux synced {} in {:.1}s after the sync objects were applied",
        synced.revision,
        start.elapsed().as_secs_f64()
    );

    // The cluster folder is applied, with Flux's ownership labels.
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(cp.client().await, "default");
    for (name, value) in [("one", "1"), ("two", "2")] {
        let cm = cms.get(name).await.unwrap();
        assert_eq!(cm.data.unwrap()["value"], value);
        let labels = cm.metadata.labels.unwrap();
        assert_eq!(labels["kustomize.toolkit.fluxcd.io/name"], "test");
        assert_eq!(
            labels["kustomize.toolkit.fluxcd.io/namespace"],
            "flux-system"
        );
    }

    // Flux applied every vendored component (its inventory lists them all) ...
    let ks_api = dynamic_api(
        &discovery,
        &Object::new(
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "test-components", "namespace": "flux-system"}}),
        ),
    )
    .await;
    let components = ks_api.get("test-components").await.unwrap();
    let inventory = components.data["status"]["inventory"]["entries"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(inventory, installed.len(), "components in Flux's inventory");

    // ... and changed nothing of them but its own labels and managedFields entries.
    let after = snapshot(&discovery, &units).await;
    let flux_labels: BTreeMap<String, String> = [
        ("kustomize.toolkit.fluxcd.io/name", "test-components"),
        ("kustomize.toolkit.fluxcd.io/namespace", "flux-system"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut rewritten = 0;
    let mut manager_sets: BTreeMap<String, usize> = BTreeMap::new();
    for (id, before) in &installed {
        let now = &after[id];
        let mut expected = before.clone();
        let labels = expected
            .metadata
            .labels
            .get_or_insert_with(Default::default);
        labels.extend(flux_labels.clone());
        assert_eq!(
            content(&expected),
            content(now),
            "{id}: Flux changed more than its labels"
        );
        if resource_version(before) != resource_version(now) {
            rewritten += 1;
        }
        let m = managers(now);
        if !m.iter().any(|m| m.starts_with("capi-manage/")) {
            eprintln!("{id}: capi-manage no longer among its managers: {m:?}");
        }
        *manager_sets.entry(m.join(", ")).or_default() += 1;
    }
    eprintln!(
        "Flux re-applied {} of {} installed objects: only labels {:?} added; managers now: {:?}",
        rewritten,
        installed.len(),
        flux_labels.keys().collect::<Vec<_>>(),
        manager_sets
    );

    // capi-manage installing again succeeds without conflicts and changes no content. It may
    // write once: for atomic fields the server fills with defaults (env valueFrom.fieldRef,
    // webhook rules, a CPU quantity it normalises), each applier's apply counts as a change,
    // so the last applier owns them alone; kube::apply compares managedFields too and takes
    // them back.
    let written = install_writes(&discovery, &units, &after).await;
    let again = snapshot(&discovery, &units).await;
    for id in &written {
        assert_eq!(
            content(&after[id]),
            content(&again[id]),
            "{id}: content changed"
        );
        let owned = |o: &DynamicObject| {
            o.metadata
                .managed_fields
                .iter()
                .flatten()
                .any(|m| m.manager.as_deref() == Some("capi-manage"))
        };
        assert!(owned(&again[id]), "{id}");
    }
    eprintln!(
        "second install after Flux: {} of {} objects rewritten, ownership only: {written:?}",
        written.len(),
        installed.len()
    );
    // No ping-pong: a third install writes nothing, Flux reconciling again sees no drift and
    // writes nothing, and an install after that writes nothing either.
    let third = install_writes(&discovery, &units, &again).await;
    assert!(third.is_empty(), "third install wrote {third:?}");
    let requested = request_reconcile(
        &discovery,
        Suspendable::Kustomization,
        "flux-system",
        "test-components",
    )
    .await
    .unwrap();
    wait_for(
        &ks_api,
        "test-components",
        "Kustomization flux-system/test-components handled the request",
        &move |o: Option<&DynamicObject>| match o {
            Some(o) if o.data["status"]["lastHandledReconcileAt"] == requested.as_str() => {
                capi_manage::kube::wait::Check::Done
            }
            _ => capi_manage::kube::wait::Check::Pending(None),
        },
        wait,
        &Silent,
        &cancel,
    )
    .await
    .unwrap();
    let reflux = snapshot(&discovery, &units).await;
    let flux_writes: Vec<&String> = again
        .iter()
        .filter(|(k, v)| was_written(k, v, &reflux[*k]))
        .map(|(k, _)| k)
        .collect();
    assert!(flux_writes.is_empty(), "Flux re-applied {flux_writes:?}");
    let fourth = install_writes(&discovery, &units, &reflux).await;
    assert!(
        fourth.is_empty(),
        "install after Flux's second pass wrote {fourth:?}"
    );

    // Suspend: Flux stops applying; the health check says so instead of waiting.
    let none = suspend_all(&discovery, Suspendable::HelmRelease, "flux-system")
        .await
        .unwrap();
    assert!(none.is_empty());
    suspend(
        &discovery,
        Suspendable::Kustomization,
        "flux-system",
        "test",
    )
    .await
    .unwrap();
    suspend(
        &discovery,
        Suspendable::Kustomization,
        "flux-system",
        "test",
    )
    .await
    .unwrap();
    assert_eq!(
        ks_api.get("test").await.unwrap().data["spec"]["suspend"],
        true
    );
    let err = wait_synced(
        &discovery,
        &names,
        &rev1,
        WaitOptions::timeout(Duration::from_secs(20)),
        &Silent,
        &cancel,
    )
    .await
    .unwrap_err();
    let line = support::error_chain(&err);
    assert!(
        line.contains("Kustomization flux-system/test: failed: suspended"),
        "{line}"
    );

    std::fs::write(cluster_dir.join("three.yaml"), configmap("three", "3")).unwrap();
    let second = commit_and_push(&work, &bare, "a third ConfigMap");
    let rev2 = revision("main", &second);
    request_reconcile(
        &discovery,
        Suspendable::GitRepository,
        "flux-system",
        "test",
    )
    .await
    .unwrap();
    let source_only = SyncNames {
        kustomizations: vec![],
        ..names.clone()
    };
    wait_synced(&discovery, &source_only, &rev2, wait, &Silent, &cancel)
        .await
        .unwrap_or_else(|e| panic!("{}", support::error_chain(&e)));
    // The components Kustomization follows the new revision; the suspended one does not.
    let components_only = SyncNames {
        kustomizations: vec!["test-components".into()],
        ..names.clone()
    };
    wait_synced(&discovery, &components_only, &rev2, wait, &Silent, &cancel)
        .await
        .unwrap_or_else(|e| panic!("{}", support::error_chain(&e)));
    request_reconcile(
        &discovery,
        Suspendable::Kustomization,
        "flux-system",
        "test",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(cms.get_opt("three").await.unwrap().is_none());
    assert_eq!(
        ks_api.get("test").await.unwrap().data["status"]["lastAppliedRevision"],
        rev1.as_str()
    );

    // Resume removes spec.suspend, as `flux resume` does, and Flux catches up.
    let start = Instant::now();
    resume(
        &discovery,
        Suspendable::Kustomization,
        "flux-system",
        "test",
    )
    .await
    .unwrap();
    let resumed = ks_api.get("test").await.unwrap();
    assert!(resumed.data["spec"].get("suspend").is_none());
    wait_synced(&discovery, &names, &rev2, wait, &Silent, &cancel)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{}\n{}",
                support::error_chain(&e),
                controllers.log_tails(30)
            )
        });
    eprintln!(
        "after resume, Flux applied {rev2} in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(cms.get("three").await.unwrap().data.unwrap()["value"], "3");
    resume(
        &discovery,
        Suspendable::Kustomization,
        "flux-system",
        "test",
    )
    .await
    .unwrap();

    // The generic condition agrees with the source's own status.
    let repo_api = dynamic_api(
        &discovery,
        &Object::new(
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "test", "namespace": "flux-system"}}),
        ),
    )
    .await;
    wait_for(
        &repo_api,
        "test",
        "GitRepository at rev2",
        &source_synced(rev2.clone()),
        WaitOptions::timeout(Duration::from_secs(5)),
        &Silent,
        &cancel,
    )
    .await
    .unwrap();
    controllers.assert_running();
}
