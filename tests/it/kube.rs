//! `capi_manage::kube` against a real kube-apiserver.

use std::path::{Path, PathBuf};
use std::time::Duration;

use capi_manage::kube::wait::{WaitOptions, conditions, wait_for};
use capi_manage::kube::{ApplyOptions, Discovery, Error, apply};
use capi_manage::manifest::{Gvk, Object, parse_file, parse_str};
use capi_manage::observe::Silent;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use tokio_util::sync::CancellationToken;

use crate::support::capi::dynamic_api;
use crate::support::capi::upstream_crds;
use crate::support::{self, ControlPlane, Options};

fn data(name: &str) -> PathBuf {
    support::project_root().join("tests/data/kube").join(name)
}

#[tokio::test]
async fn applies_upstream_crds_and_instances_in_one_call_and_reapply_changes_nothing() {
    let cp = ControlPlane::start().await;
    let discovery = Discovery::new(cp.client().await);
    let mut bundle = upstream_crds();
    let instances = parse_file(&data("instances.yaml")).unwrap();
    // Instances before their CRDs in the input: apply must order them itself.
    bundle.splice(0..0, instances.clone());
    let cancel = CancellationToken::new();
    let first = apply(
        &discovery,
        &bundle,
        &ApplyOptions::default(),
        &Silent,
        &cancel,
    )
    .await
    .unwrap();
    assert_eq!(first.applied.len(), bundle.len());

    // Read every instance back: same spec, labels, and our field manager.
    for o in &instances {
        let api = dynamic_api(&discovery, o).await;
        let stored = api
            .get(o.name())
            .await
            .unwrap_or_else(|e| panic!("{} readable: {e}", o.identity()));
        if let Some(spec) = o.value.get("spec") {
            for (k, v) in spec.as_object().unwrap() {
                let got = &stored.data["spec"][k];
                // The server may add defaults inside; everything we set must be there as set.
                assert_contains(got, v, &format!("{} spec.{k}", o.identity()));
            }
        }
        if o.value.get("spec").is_none() {
            // A namespace applied with only its name owns no fields: no managedFields entry.
            continue;
        }
        let managers: Vec<String> = stored
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.manager)
            .collect();
        assert!(
            managers.contains(&"capi-manage".to_string()),
            "{} managed by capi-manage: {managers:?}",
            o.identity()
        );
    }
    let kinds: std::collections::BTreeSet<String> =
        instances.iter().map(|o| o.kind().to_string()).collect();
    for k in [
        "Cluster",
        "KubeadmControlPlane",
        "OpenStackCluster",
        "GitRepository",
        "Kustomization",
        "HelmRelease",
        "SealedSecret",
    ] {
        assert!(kinds.contains(k), "instances include {k}");
    }

    // A second apply of the same bundle is a no-op: no resourceVersion moves. (Compared with
    // each object as read just before, since the server itself may have touched some since the
    // first apply, e.g. CRD status.)
    let mut before = Vec::new();
    for o in &bundle {
        let api = dynamic_api(&discovery, o).await;
        before.push(api.get(o.name()).await.unwrap());
    }
    let second = apply(
        &discovery,
        &bundle,
        &ApplyOptions::default(),
        &Silent,
        &cancel,
    )
    .await
    .unwrap();
    for ((a, b), old) in first.applied.iter().zip(&second.applied).zip(&before) {
        assert_eq!(a.identity, b.identity);
        assert_eq!(
            old.metadata.resource_version,
            b.object.metadata.resource_version,
            "{} changed on re-apply:\nbefore: {}\nafter: {}",
            a.identity,
            serde_json::to_string(old).unwrap(),
            serde_json::to_string(&b.object).unwrap()
        );
    }
}

fn assert_contains(got: &serde_json::Value, want: &serde_json::Value, at: &str) {
    match (got, want) {
        (serde_json::Value::Object(g), serde_json::Value::Object(w)) => {
            for (k, v) in w {
                assert_contains(&g[k], v, &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(got, want, "{at}"),
    }
}

#[tokio::test]
async fn schema_violations_and_unknown_kinds_are_reported_with_identity_and_file() {
    let cp = ControlPlane::start().await;
    let discovery = Discovery::new(cp.client().await);
    let cancel = CancellationToken::new();
    apply(
        &discovery,
        &upstream_crds(),
        &ApplyOptions::default(),
        &Silent,
        &cancel,
    )
    .await
    .unwrap();

    let invalid = parse_file(&data("invalid.yaml")).unwrap();
    let (err, line) = refused(&discovery, &invalid).await;
    assert!(
        matches!(
            err,
            Error::Object {
                action: "applying",
                ..
            }
        ),
        "{line}"
    );
    assert!(line.contains("Kustomization capi-self/broken"), "{line}");
    assert!(line.contains("invalid.yaml (document 2, line 6)"), "{line}");
    assert!(
        line.contains("spec.prune: Required value"),
        "apiserver's message in: {line}"
    );
    assert!(line.contains("HTTP 422"), "{line}");

    let unknown = parse_file(&data("unknown-kind.yaml")).unwrap();
    let (err, line) = refused(&discovery, &unknown).await;
    assert!(
        matches!(&err, Error::UnknownKinds { kinds } if kinds[0].0 == Gvk::from_api_version("widgets.example.com/v1", "Gizmo")),
        "{line}"
    );
    assert!(
        line.contains("`Gizmo`") && line.contains("unknown-kind.yaml (document 2, line 9)"),
        "{line}"
    );
    // Nothing was applied: the valid ConfigMap before it is absent.
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(cp.client().await, "default");
    assert!(cms.get_opt("would-be-applied").await.unwrap().is_none());

    // A field the schema does not declare (a typo) is refused, not dropped, for a built-in kind
    // and in a CRD (apply sends no strict field validation: server-side apply refuses them
    // anyway).
    let typo = parse_str(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: typo, namespace: default}\ndata: {a: b}\ndta: {c: d}\n",
        None,
    )
    .unwrap();
    let mut crd = upstream_crds()
        .into_iter()
        .find(|o| o.kind() == "CustomResourceDefinition")
        .unwrap();
    crd.value["spec"]["scopee"] = "Namespaced".into();
    for (objects, field) in [(typo, ".dta"), (vec![crd], ".spec.scopee")] {
        let (_, line) = refused(&discovery, &objects).await;
        assert!(
            line.contains(field) && line.contains("not declared in schema"),
            "{line}"
        );
    }
    assert!(cms.get_opt("typo").await.unwrap().is_none());
}

#[tokio::test]
async fn deployments_on_kwok_become_available_and_impossible_ones_time_out_by_name() {
    let cp = ControlPlane::start_with(Options::kwok()).await;
    let discovery = Discovery::new(cp.client().await);
    let cancel = CancellationToken::new();
    apply(
        &discovery,
        &parse_file(&data("deployments.yaml")).unwrap(),
        &ApplyOptions::default(),
        &Silent,
        &cancel,
    )
    .await
    .unwrap();
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps", "v1", "Deployment"),
        "deployments",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(cp.client().await, "apps", &ar);

    let seen = std::sync::Mutex::new(Vec::new());
    let observer = |e: capi_manage::observe::Event| seen.lock().unwrap().push(e.to_string());
    let good = wait_for(
        &api,
        "good",
        "Deployment apps/good available",
        &conditions::deployment_available(),
        WaitOptions::timeout(Duration::from_secs(120)),
        &observer,
        &cancel,
    )
    .await
    .unwrap_or_else(|e| {
        if std::env::var_os("CAPI_MANAGE_DEBUG_HOLD").is_some() {
            eprintln!("holding: KUBECONFIG={}", cp.kubeconfig_path().display());
            std::thread::sleep(Duration::from_secs(600));
        }
        panic!(
            "{}\nkwok log:\n{}",
            support::error_chain(&e),
            cp.log_tail("kwok", 20)
        )
    })
    .unwrap();
    assert_eq!(good.data["status"]["availableReplicas"], 2);

    let err = wait_for(
        &api,
        "unschedulable",
        "Deployment apps/unschedulable available",
        &conditions::deployment_available(),
        WaitOptions::timeout(Duration::from_secs(8)),
        &Silent,
        &cancel,
    )
    .await
    .unwrap_err();
    let line = support::error_chain(&err);
    assert!(matches!(err, Error::Timeout { .. }), "{line}");
    assert!(line.starts_with("timed out after 8s waiting for Deployment apps/unschedulable available: last seen replicas 1 wanted, 0 updated") || line.contains("0 available"), "{line}");
    assert!(line.contains("Available=False"), "conditions in: {line}");
}

#[tokio::test]
async fn cancellation_ends_a_wait() {
    let cp = ControlPlane::start().await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("", "v1", "ConfigMap"),
        "configmaps",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(cp.client().await, "default", &ar);
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.cancel();
    });
    let start = std::time::Instant::now();
    let err = wait_for(
        &api,
        "never",
        "ConfigMap default/never",
        &conditions::exists(),
        WaitOptions::timeout(Duration::from_secs(60)),
        &Silent,
        &cancel,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Cancelled));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn cli_apply_reports_one_line_errors_and_exit_code() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cp = rt.block_on(ControlPlane::start());
    let run = |files: &[&Path]| {
        let mut cmd = support::capi_manage();
        cmd.arg("apply")
            .arg("--kubeconfig")
            .arg(cp.kubeconfig_path());
        for f in files {
            cmd.arg("-f").arg(f);
        }
        cmd.output().unwrap()
    };
    let out = run(&[&data("unknown-kind.yaml")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("error: unknown kind `Gizmo`") && last.contains("unknown-kind.yaml"),
        "{stderr}"
    );

    let ok_file = cp.dir().join("cm.yaml");
    std::fs::write(
        &ok_file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-cli}\ndata: {a: '1'}\n",
    )
    .unwrap();
    let out = run(&[&ok_file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(rt.block_on(cp.client()), "default");
    let cm = rt.block_on(cms.get("from-cli")).unwrap();
    assert_eq!(cm.data.unwrap()["a"], "1");
}

#[tokio::test]
async fn kubeconfig_contexts_and_lists_load_like_kubectl() {
    use capi_manage::kube::{ClientOptions, connect};
    let cp = ControlPlane::start().await;
    let real = std::fs::read_to_string(cp.kubeconfig_path()).unwrap();
    // A second file whose current context points at a closed port; the real one adds `test`.
    let broken = cp.dir().join("broken.kubeconfig");
    std::fs::write(
        &broken,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: closed\n  cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}\nusers:\n- name: nobody\n  user: {token: x}\ncontexts:\n- name: broken\n  context: {cluster: closed, user: nobody}\ncurrent-context: broken\n",
    )
    .unwrap();
    assert!(real.contains("current-context: test"));
    let list = std::env::join_paths([broken.clone(), cp.kubeconfig_path().to_path_buf()]).unwrap();
    // SAFETY: this test is the only one that sets KUBECONFIG, and reads it right away.
    unsafe { std::env::set_var("KUBECONFIG", &list) };
    let with_context = connect(&ClientOptions {
        kubeconfig: None,
        context: Some("test".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let without = connect(&ClientOptions::default()).await.unwrap();
    unsafe { std::env::remove_var("KUBECONFIG") };
    with_context
        .apiserver_version()
        .await
        .expect("the `test` context from the second file reaches the apiserver");
    assert!(
        without.apiserver_version().await.is_err(),
        "the first file's current-context wins, as with kubectl"
    );

    let Err(err) = connect(&ClientOptions {
        kubeconfig: Some(cp.kubeconfig_path().to_path_buf()),
        context: Some("nope".into()),
        ..Default::default()
    })
    .await
    else {
        panic!("an unknown context fails")
    };
    let line = support::error_chain(&err);
    assert!(
        line.contains(&cp.kubeconfig_path().display().to_string()) && line.contains("nope"),
        "{line}"
    );
    let Err(err) = connect(&ClientOptions {
        kubeconfig: Some(cp.dir().join("missing")),
        ..Default::default()
    })
    .await
    else {
        panic!("a missing kubeconfig fails")
    };
    assert!(
        support::error_chain(&err).starts_with(&format!(
            "cannot load kubeconfig {}",
            cp.dir().join("missing").display()
        )),
        "{}",
        support::error_chain(&err)
    );
}

/// Applying CRDs alone (nothing in the bundle needs their kinds) still returns only once every
/// CRD is established: the wait starts from each write's answer, not after a read.
#[tokio::test]
async fn crds_alone_are_established_when_apply_returns() {
    let cp = ControlPlane::start().await;
    let discovery = Discovery::new(cp.client().await);
    let crds = upstream_crds();
    let report = apply(
        &discovery,
        &crds,
        &ApplyOptions::default(),
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.applied.len(), crds.len());
    let api: Api<DynamicObject> = Api::all_with(
        discovery.client().clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
            "customresourcedefinitions",
        ),
    );
    for o in &crds {
        let stored = api.get(o.name()).await.unwrap();
        let established = stored.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        assert!(established, "CRD {} established", o.name());
    }
}

/// Applies `objects` with the default options, expecting the server or the kind check to
/// refuse them: the error and its chain on one line.
async fn refused(discovery: &Discovery, objects: &[Object]) -> (Error, String) {
    let err = apply(
        discovery,
        objects,
        &ApplyOptions::default(),
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    let line = support::error_chain(&err);
    (err, line)
}
