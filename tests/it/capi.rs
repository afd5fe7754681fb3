//! `capi_manage::capi` moves between two real kube-apiservers with the CAPI/CAPO/Flux CRDs.

use std::collections::BTreeMap;

use capi_manage::capi::{Error as MoveError, MoveOptions, move_objects, plan};
use capi_manage::kube::{ApplyOptions, Discovery, apply};
use capi_manage::manifest::{Gvk, Object};
use capi_manage::observe::Silent;
use kube::api::{Api, DynamicObject};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::kube::upstream_crds;
use crate::support::ControlPlane;

const NS: &str = "capi-self";

/// A management cluster with the upstream CRDs and the namespace.
async fn management_cluster() -> (ControlPlane, Discovery) {
    let cp = ControlPlane::start().await;
    let d = Discovery::new(cp.client().await);
    let mut bundle = upstream_crds();
    bundle.push(Object::new(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    ));
    apply(
        &d,
        &bundle,
        &ApplyOptions::default(),
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    (cp, d)
}

async fn api(d: &Discovery, api_version: &str, kind: &str) -> Api<DynamicObject> {
    let r = d
        .resolve(&Gvk::from_api_version(api_version, kind))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{kind} served"));
    Api::namespaced_with(d.client().clone(), NS, &r.api)
}

/// Creates an object (owners given as (kind, name, uid, apiVersion)), then its status; returns its UID.
async fn create(
    d: &Discovery,
    mut o: Value,
    owners: &[(&str, &str, &str, &str)],
    status: Option<Value>,
) -> String {
    o["metadata"]["namespace"] = json!(NS);
    if !owners.is_empty() {
        o["metadata"]["ownerReferences"] =
            owners.iter().map(|(k, n, u, av)| json!({"apiVersion": av, "kind": k, "name": n, "uid": u, "controller": false})).collect();
    }
    let a = api(
        d,
        o["apiVersion"].as_str().unwrap(),
        o["kind"].as_str().unwrap(),
    )
    .await;
    let created = a
        .create(&Default::default(), &serde_json::from_value(o).unwrap())
        .await
        .unwrap();
    if let Some(status) = status {
        let mut with = serde_json::to_value(&created).unwrap();
        with["status"] = status;
        a.replace_status(
            created.metadata.name.as_deref().unwrap(),
            &Default::default(),
            &serde_json::from_value(with).unwrap(),
        )
        .await
        .unwrap();
    }
    created.metadata.uid.unwrap()
}

const CAPI: &str = "cluster.x-k8s.io/v1beta2";
const CAPO: &str = "infrastructure.cluster.x-k8s.io/v1beta1";

/// A realistic cluster graph, like the openstack-cluster chart and the CAPI controllers make.
async fn demo_graph(d: &Discovery) {
    let infra_ref = |kind: &str, name: &str| json!({"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": kind, "name": name});
    let c = create(d, json!({"apiVersion": CAPI, "kind": "Cluster", "metadata": {"name": "demo", "labels": {"app": "demo"}, "annotations": {"note": "kept"}},
        "spec": {"clusterNetwork": {"pods": {"cidrBlocks": ["172.16.0.0/13"]}},
                 "controlPlaneRef": {"apiGroup": "controlplane.cluster.x-k8s.io", "kind": "KubeadmControlPlane", "name": "demo-control-plane"},
                 "infrastructureRef": infra_ref("OpenStackCluster", "demo")}}),
        &[], Some(json!({"phase": "Provisioned", "initialization": {"infrastructureProvisioned": true, "controlPlaneInitialized": true}}))).await;
    let owner_c = [("Cluster", "demo", c.as_str(), CAPI)];
    create(
        d,
        json!({"apiVersion": CAPO, "kind": "OpenStackCluster", "metadata": {"name": "demo"},
        "spec": {"identityRef": {"cloudName": "openstack", "name": "demo-cloud-credentials"}}}),
        &owner_c,
        Some(json!({"ready": true})),
    )
    .await;
    create(d, json!({"apiVersion": CAPO, "kind": "OpenStackMachineTemplate", "metadata": {"name": "demo-control-plane-1"},
        "spec": {"template": {"spec": {"flavor": "m1.medium", "image": {"filter": {"name": "ubuntu-2404-kube-v1.33.4"}}}}}}), &owner_c, None).await;
    let kcp = create(d, json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1beta2", "kind": "KubeadmControlPlane", "metadata": {"name": "demo-control-plane"},
        "spec": {"replicas": 1, "version": "v1.33.4", "machineTemplate": {"spec": {"infrastructureRef": infra_ref("OpenStackMachineTemplate", "demo-control-plane-1")}}}}),
        &owner_c, None).await;
    create(d, json!({"apiVersion": CAPO, "kind": "OpenStackMachineTemplate", "metadata": {"name": "demo-md-0-1"},
        "spec": {"template": {"spec": {"flavor": "m1.large", "image": {"filter": {"name": "ubuntu-2404-kube-v1.33.4"}}}}}}), &owner_c, None).await;
    create(d, json!({"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfigTemplate", "metadata": {"name": "demo-md-0-1"},
        "spec": {"template": {"spec": {"joinConfiguration": {"nodeRegistration": {"name": "{{ local_hostname }}"}}}}}}), &owner_c, None).await;
    let machine_spec = |infra: Value| {
        json!({"clusterName": "demo", "version": "v1.33.4", "infrastructureRef": infra,
        "bootstrap": {"configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfigTemplate", "name": "demo-md-0-1"}}})
    };
    let selector = json!({"matchLabels": {"cluster.x-k8s.io/deployment-name": "demo-md-0"}});
    let md = create(d, json!({"apiVersion": CAPI, "kind": "MachineDeployment", "metadata": {"name": "demo-md-0"},
        "spec": {"clusterName": "demo", "replicas": 1, "selector": selector,
                 "template": {"metadata": {"labels": {"cluster.x-k8s.io/deployment-name": "demo-md-0"}}, "spec": machine_spec(infra_ref("OpenStackMachineTemplate", "demo-md-0-1"))}}}),
        &owner_c, Some(json!({"replicas": 1}))).await;
    let ms = create(d, json!({"apiVersion": CAPI, "kind": "MachineSet", "metadata": {"name": "demo-md-0-abcde", "labels": {"cluster.x-k8s.io/deployment-name": "demo-md-0"}},
        "spec": {"clusterName": "demo", "replicas": 1, "selector": selector,
                 "template": {"metadata": {"labels": {"cluster.x-k8s.io/deployment-name": "demo-md-0"}}, "spec": machine_spec(infra_ref("OpenStackMachineTemplate", "demo-md-0-1"))}}}),
        &[("MachineDeployment", "demo-md-0", md.as_str(), CAPI)], None).await;
    let mut mspec = machine_spec(infra_ref("OpenStackMachine", "demo-md-0-abcde-x1"));
    mspec["bootstrap"] = json!({"configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfig", "name": "demo-md-0-abcde-x1"}, "dataSecretName": "demo-md-0-abcde-x1"});
    let m = create(d, json!({"apiVersion": CAPI, "kind": "Machine", "metadata": {"name": "demo-md-0-abcde-x1", "labels": {"cluster.x-k8s.io/deployment-name": "demo-md-0"}}, "spec": mspec}),
        &[("MachineSet", "demo-md-0-abcde", ms.as_str(), CAPI)], Some(json!({"phase": "Running", "nodeRef": {"name": "demo-md-0-abcde-x1"}}))).await;
    let owner_m = [("Machine", "demo-md-0-abcde-x1", m.as_str(), CAPI)];
    create(d, json!({"apiVersion": CAPO, "kind": "OpenStackMachine", "metadata": {"name": "demo-md-0-abcde-x1"},
        "spec": {"flavor": "m1.large", "image": {"filter": {"name": "ubuntu-2404-kube-v1.33.4"}}, "providerID": "openstack:///0b5d-1"}}), &owner_m, None).await;
    let kc = create(d, json!({"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfig", "metadata": {"name": "demo-md-0-abcde-x1"},
        "spec": {"joinConfiguration": {"nodeRegistration": {"name": "x1"}}}}), &owner_m, None).await;
    let secret = |name: &str, ty: &str| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": ty, "data": {"value": "c2VjcmV0"}});
    create(
        d,
        secret("demo-kubeconfig", "cluster.x-k8s.io/secret"),
        &[],
        None,
    )
    .await;
    create(
        d,
        secret("demo-ca", "cluster.x-k8s.io/secret"),
        &[(
            "KubeadmControlPlane",
            "demo-control-plane",
            kcp.as_str(),
            "controlplane.cluster.x-k8s.io/v1beta2",
        )],
        None,
    )
    .await;
    create(
        d,
        secret("demo-md-0-abcde-x1", "cluster.x-k8s.io/secret"),
        &[(
            "KubeadmConfig",
            "demo-md-0-abcde-x1",
            kc.as_str(),
            "bootstrap.cluster.x-k8s.io/v1beta2",
        )],
        None,
    )
    .await;
    create(
        d,
        secret("sh.helm.release.v1.demo.v1", "helm.sh/release.v1"),
        &[],
        None,
    )
    .await;
    create(
        d,
        secret("demo-cloud-credentials", "Opaque"),
        &[(
            "SealedSecret",
            "demo-cloud-credentials",
            "0f0e0d0c-0000-4000-8000-000000000001",
            "bitnami.com/v1alpha1",
        )],
        None,
    )
    .await;
    create(d, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "demo-values"}, "data": {"values.yaml": "clusterName: demo\n"}}), &[], None).await;
    create(d, json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": "demo"},
        "spec": {"interval": "5m", "chart": {"spec": {"chart": "openstack-cluster", "sourceRef": {"kind": "HelmRepository", "name": "capi"}}}}}), &[], None).await;
}

/// Every object of the moved kinds in the namespace, by `Kind/name`.
async fn snapshot(d: &Discovery) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (av, kind) in [
        (CAPI, "Cluster"),
        (CAPI, "MachineDeployment"),
        (CAPI, "MachineSet"),
        (CAPI, "Machine"),
        (
            "controlplane.cluster.x-k8s.io/v1beta2",
            "KubeadmControlPlane",
        ),
        ("bootstrap.cluster.x-k8s.io/v1beta2", "KubeadmConfig"),
        (
            "bootstrap.cluster.x-k8s.io/v1beta2",
            "KubeadmConfigTemplate",
        ),
        (CAPO, "OpenStackCluster"),
        (CAPO, "OpenStackMachine"),
        (CAPO, "OpenStackMachineTemplate"),
        ("v1", "Secret"),
        ("v1", "ConfigMap"),
    ] {
        for o in api(d, av, kind)
            .await
            .list(&Default::default())
            .await
            .unwrap()
            .items
        {
            out.insert(
                format!("{kind}/{}", o.metadata.name.clone().unwrap()),
                serde_json::to_value(&o).unwrap(),
            );
        }
    }
    out
}

/// After a failed move the source runs again: its Cluster unpaused and its HelmRelease resumed.
async fn assert_source_restored(src: &Discovery, when: &str) {
    let cluster = api(src, CAPI, "Cluster").await.get("demo").await.unwrap();
    assert!(
        cluster.data["spec"].get("paused").is_none(),
        "{when}: source Cluster unpaused"
    );
    let hr = api(src, "helm.toolkit.fluxcd.io/v2", "HelmRelease")
        .await
        .get("demo")
        .await
        .unwrap();
    assert!(
        hr.data["spec"].get("suspend").is_none(),
        "{when}: source HelmRelease resumed"
    );
}

#[tokio::test]
async fn moves_a_realistic_cluster_graph_with_owners_status_and_pause_handled() {
    let ((src_cp, src), (dst_cp, dst)) = tokio::join!(management_cluster(), management_cluster());
    demo_graph(&src).await;
    let before = snapshot(&src).await;

    let planned = plan(&src, NS).await.unwrap();
    assert_eq!(
        planned.moved().count(),
        before.len(),
        "every object is planned: {:?}",
        planned.groups
    );
    assert_eq!(
        planned.groups[0]
            .iter()
            .filter(|o| o.kind == "Cluster")
            .count(),
        1
    );
    assert_eq!(
        planned.dropped_owner_refs.len(),
        1,
        "the SealedSecret owner reference is dropped"
    );

    let journal = src_cp.dir().join("move-journal.json");
    let options = MoveOptions {
        journal: Some(journal.clone()),
        ..MoveOptions::new(NS)
    };
    let report = move_objects(&src, &dst, &options, &Silent, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.moved().count(), before.len());
    assert!(!journal.exists(), "a finished move leaves no journal");

    let after = snapshot(&dst).await;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    let target_uid: BTreeMap<String, String> = before
        .iter()
        .map(|(k, v)| {
            (
                v["metadata"]["uid"].as_str().unwrap().to_string(),
                after[k]["metadata"]["uid"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (key, src_obj) in &before {
        let dst_obj = &after[key];
        for field in ["spec", "data", "type"] {
            let mut want = src_obj[field].clone();
            if key == "Cluster/demo" && field == "spec" {
                want.as_object_mut().unwrap().remove("paused");
            }
            assert_eq!(dst_obj[field], want, "{key} {field}");
        }
        for md in ["labels", "annotations"] {
            assert_eq!(
                dst_obj["metadata"][md], src_obj["metadata"][md],
                "{key} metadata.{md}"
            );
        }
        if src_obj["status"].is_object() && !src_obj["status"].as_object().unwrap().is_empty() {
            assert_eq!(dst_obj["status"], src_obj["status"], "{key} status");
        }
        let src_owners = src_obj["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let dst_owners = dst_obj["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let kept: Vec<&Value> = src_owners
            .iter()
            .filter(|r| r["kind"] != "SealedSecret")
            .collect();
        assert_eq!(dst_owners.len(), kept.len(), "{key} owner references");
        for (s, t) in kept.iter().zip(&dst_owners) {
            assert_eq!((&s["kind"], &s["name"]), (&t["kind"], &t["name"]));
            assert_eq!(
                t["uid"].as_str().unwrap(),
                target_uid[s["uid"].as_str().unwrap()],
                "{key} owner UID rewritten to the target's"
            );
        }
    }
    // Unpaused on the target (the field is gone), still paused and suspended on the source.
    assert!(after["Cluster/demo"]["spec"].get("paused").is_none());
    let src_cluster = api(&src, CAPI, "Cluster").await.get("demo").await.unwrap();
    assert_eq!(src_cluster.data["spec"]["paused"], true);
    let hr = api(&src, "helm.toolkit.fluxcd.io/v2", "HelmRelease")
        .await
        .get("demo")
        .await
        .unwrap();
    assert_eq!(hr.data["spec"]["suspend"], true);
    drop((src_cp, dst_cp));
}

#[tokio::test]
async fn a_failed_copy_unpauses_the_source_and_a_rerun_completes() {
    let ((src_cp, src), (_dst_cp, dst)) = tokio::join!(management_cluster(), management_cluster());
    demo_graph(&src).await;
    // A blocker on the target: an immutable Secret with other data where demo-ca must go.
    let secrets = api(&dst, "v1", "Secret").await;
    let blocker: DynamicObject = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "demo-ca", "namespace": NS},
        "immutable": true, "data": {"value": "b3RoZXI="}})).unwrap();
    secrets.create(&Default::default(), &blocker).await.unwrap();

    let journal = src_cp.dir().join("move-journal.json");
    let options = MoveOptions {
        journal: Some(journal.clone()),
        ..MoveOptions::new(NS)
    };
    let err = move_objects(&src, &dst, &options, &Silent, &CancellationToken::new())
        .await
        .unwrap_err();
    let line = crate::support::error_chain(&err);
    assert!(matches!(err, MoveError::Rolledback { .. }), "{line}");
    assert!(
        line.contains("Secret capi-self/demo-ca on the target cluster"),
        "{line}"
    );
    assert_source_restored(&src, "after the failure").await;

    secrets
        .delete("demo-ca", &Default::default())
        .await
        .unwrap();
    move_objects(&src, &dst, &options, &Silent, &CancellationToken::new())
        .await
        .unwrap();
    let after = snapshot(&dst).await;
    assert_eq!(after.len(), snapshot(&src).await.len());
    assert!(after["Cluster/demo"]["spec"].get("paused").is_none());
}

#[tokio::test]
async fn preflight_refuses_a_target_without_the_providers() {
    let (_src_cp, src) = management_cluster().await;
    demo_graph(&src).await;
    let dst_cp = ControlPlane::start().await;
    let dst = Discovery::new(dst_cp.client().await);
    let err = move_objects(
        &src,
        &dst,
        &MoveOptions::new(NS),
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, MoveError::Preflight { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("Cluster (cluster.x-k8s.io/v1beta2)"),
        "{err}"
    );
    // Nothing was paused.
    let c = api(&src, CAPI, "Cluster").await.get("demo").await.unwrap();
    assert!(c.data["spec"].get("paused").is_none());
}

#[tokio::test]
async fn cli_dry_run_prints_the_plan_and_changes_nothing() {
    let (cp, src) = management_cluster().await;
    demo_graph(&src).await;
    let out = tokio::task::spawn_blocking({
        let kc = cp.kubeconfig_path().to_path_buf();
        move || {
            crate::support::capi_manage()
                .args(["move", "--dry-run", "--from-kubeconfig"])
                .arg(kc)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("would move")
            && l.contains("group 1")
            && l.ends_with("Cluster capi-self/demo")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(
            |l| l.contains("OpenStackMachine capi-self/demo-md-0-abcde-x1")
                && l.contains("group 5")
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "owner reference to SealedSecret capi-self/demo-cloud-credentials (not moved)"
        ),
        "{stdout}"
    );
    let c = api(&src, CAPI, "Cluster").await.get("demo").await.unwrap();
    assert!(
        c.data["spec"].get("paused").is_none(),
        "dry run paused nothing"
    );
}

/// Makes the target refuse to create or update one object, through a ValidatingAdmissionPolicy.
/// The policy also refuses ConfigMaps named `fault-probe`, which tells when it is in force.
async fn inject_write_failure(d: &Discovery, kind: &str, name: &str) {
    let rule = format!(
        "!((object.kind == '{kind}' && object.metadata.name == '{name}') || object.metadata.name == 'fault-probe')"
    );
    let policy = [
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy", "metadata": {"name": "fault"},
         "spec": {"failurePolicy": "Fail",
                  "matchConstraints": {"resourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": ["*"]}]},
                  "validations": [{"expression": rule, "message": "injected fault"}]}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "fault"},
         "spec": {"policyName": "fault", "validationActions": ["Deny"]}}),
    ];
    let objects: Vec<Object> = policy.into_iter().map(Object::new).collect();
    apply(
        d,
        &objects,
        &ApplyOptions::default(),
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    wait_for_fault(d, true).await;
}

/// Waits until the fault policy is (or is no longer) in force, probing with a dry-run create.
async fn wait_for_fault(d: &Discovery, in_force: bool) {
    let probe: DynamicObject = serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fault-probe", "namespace": NS}})).unwrap();
    let cms = api(d, "v1", "ConfigMap").await;
    let dry = kube::api::PostParams {
        dry_run: true,
        ..Default::default()
    };
    for _ in 0..100 {
        if cms.create(&dry, &probe).await.is_err() == in_force {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "the fault policy was not {} after 10s",
        if in_force { "in force" } else { "gone" }
    );
}

async fn remove_write_failure(d: &Discovery) {
    for (kind, plural) in [
        (
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
        ),
        ("ValidatingAdmissionPolicy", "validatingadmissionpolicies"),
    ] {
        let ar = kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind),
            plural,
        );
        let a: Api<DynamicObject> = Api::all_with(d.client().clone(), &ar);
        a.delete("fault", &Default::default()).await.unwrap();
    }
    wait_for_fault(d, false).await;
}

#[tokio::test]
async fn a_write_failure_after_each_group_rolls_back_and_a_rerun_completes() {
    let (_src_cp, src) = management_cluster().await;
    demo_graph(&src).await;
    let before = snapshot(&src).await;
    let groups = plan(&src, NS).await.unwrap().groups;
    assert!(groups.len() >= 5);
    for (g, group) in groups.iter().enumerate().skip(1) {
        let victim = &group[0];
        let (dst_cp, dst) = management_cluster().await;
        inject_write_failure(&dst, &victim.kind, &victim.name).await;
        let journal = dst_cp.dir().join("journal.json");
        let options = MoveOptions {
            journal: Some(journal.clone()),
            ..MoveOptions::new(NS)
        };
        let err = move_objects(&src, &dst, &options, &Silent, &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, MoveError::Rolledback { copied, .. } if *copied == groups[..g].iter().map(Vec::len).sum::<usize>()),
            "group {g}: {err}"
        );
        // Source untouched and not left paused or suspended.
        let now = snapshot(&src).await;
        assert_eq!(
            now.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "group {g}: no object lost"
        );
        assert_source_restored(&src, &format!("group {g}")).await;

        remove_write_failure(&dst).await;
        move_objects(&src, &dst, &options, &Silent, &CancellationToken::new())
            .await
            .unwrap_or_else(|e| panic!("group {g}: rerun: {e}"));
        let moved = snapshot(&dst).await;
        assert_eq!(
            moved.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "group {g}: everything on the target after the rerun"
        );
        assert!(moved["Cluster/demo"]["spec"].get("paused").is_none());
        // Reset the source for the next round: the successful move left it paused and suspended.
        api(&src, CAPI, "Cluster")
            .await
            .patch(
                "demo",
                &Default::default(),
                &kube::api::Patch::Merge(json!({"spec": {"paused": null}})),
            )
            .await
            .unwrap();
        api(&src, "helm.toolkit.fluxcd.io/v2", "HelmRelease")
            .await
            .patch(
                "demo",
                &Default::default(),
                &kube::api::Patch::Merge(json!({"spec": {"suspend": null}})),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn block_move_is_waited_out_and_times_out_by_name() {
    let ((_s, src), (_d, dst)) = tokio::join!(management_cluster(), management_cluster());
    demo_graph(&src).await;
    let osc = api(&src, CAPO, "OpenStackCluster").await;
    let block =
        json!({"metadata": {"annotations": {"clusterctl.cluster.x-k8s.io/block-move": ""}}});
    osc.patch("demo", &Default::default(), &kube::api::Patch::Merge(block))
        .await
        .unwrap();

    let short = MoveOptions {
        block_move_timeout: std::time::Duration::from_secs(2),
        ..MoveOptions::new(NS)
    };
    let err = move_objects(&src, &dst, &short, &Silent, &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "OpenStackCluster capi-self/demo still has annotation clusterctl.cluster.x-k8s.io/block-move after 2s; its provider is not ready to move it"
    );
    let c = api(&src, CAPI, "Cluster").await.get("demo").await.unwrap();
    assert!(
        c.data["spec"].get("paused").is_none(),
        "nothing paused while blocked"
    );

    let unblock = osc.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let patch =
            json!({"metadata": {"annotations": {"clusterctl.cluster.x-k8s.io/block-move": null}}});
        unblock
            .patch("demo", &Default::default(), &kube::api::Patch::Merge(patch))
            .await
            .unwrap();
    });
    let report = move_objects(
        &src,
        &dst,
        &MoveOptions::new(NS),
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(report.moved().any(|o| o.kind == "OpenStackCluster"));
}
