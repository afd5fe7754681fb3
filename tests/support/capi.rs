//! Cluster API management clusters and cluster graphs on real kube-apiservers, shared by the
//! `capi` integration tests and the move bench.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ::kube::api::{Api, DynamicObject, Patch};
use capi_manage::kube::{ApplyOptions, Discovery, apply};
use capi_manage::manifest::{Gvk, Object, parse_file};
use capi_manage::observe::Silent;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::ControlPlane;
use super::release_mirror::{CAPI_VERSION, CAPO_VERSION, release_components};
use super::webhooks::Webhooks;

/// The namespace the cluster graphs live in.
pub const NS: &str = "capi-self";
/// Cluster API core group version.
pub const CAPI: &str = "cluster.x-k8s.io/v1beta2";
/// Cluster API Provider OpenStack group version.
pub const CAPO: &str = "infrastructure.cluster.x-k8s.io/v1beta1";

/// Every CRD in ../shared/fixtures/upstream (Flux, CAPI, CAPO, sealed-secrets).
pub fn upstream_crds() -> Vec<Object> {
    let mut files: Vec<PathBuf> = Vec::new();
    for group in ["flux", "cluster-api", "openstack", "sealed-secrets"] {
        for entry in std::fs::read_dir(super::fixtures().join(group)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    files.sort();
    let crds: Vec<Object> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .flat_map(|p| parse_file(p).unwrap())
        .filter(|o| o.kind() == "CustomResourceDefinition")
        .collect();
    assert!(
        crds.len() >= 30,
        "expected the upstream CRDs, found {}",
        crds.len()
    );
    crds
}

/// Server-side applies `objects` as capi-manage does; panics on failure.
pub async fn apply_all(d: &Discovery, objects: &[Object]) {
    apply(
        d,
        objects,
        &ApplyOptions::default(),
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
}

/// The Flux and sealed-secrets CRDs of ../shared/fixtures/upstream: the kinds the cluster graph
/// holds besides Cluster API's and CAPO's.
pub fn flux_and_sealed_secrets_crds() -> Vec<Object> {
    upstream_crds()
        .into_iter()
        .filter(|crd| {
            let group = crd.value["spec"]["group"].as_str().unwrap_or_default();
            group.ends_with(".toolkit.fluxcd.io") || group == "bitnami.com"
        })
        .collect()
}

/// A management cluster as capi-manage installs it: the real release components of Cluster API
/// (v1.13.3), ORC and CAPO (v0.14.6) from the test mirror, with clusterctl's processing and
/// cert-manager's stand-in, their webhooks served by the real managers (kept alive with the
/// control plane), the Flux and sealed-secrets CRDs, and the namespace.
pub async fn management_cluster() -> (ControlPlane, Discovery) {
    with_release_components(&[]).await
}

async fn with_release_components(extra: &[Object]) -> (ControlPlane, Discovery) {
    let mut cp = ControlPlane::start().await;
    let webhooks = Webhooks::start(&cp).await;
    let d = Discovery::new(cp.client().await);
    let mut bundle = flux_and_sealed_secrets_crds();
    bundle.extend(release_components().await);
    bundle.extend(extra.iter().cloned());
    bundle.push(Object::new(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    ));
    apply_all(&d, &bundle).await;
    webhooks.wait_ready(Duration::from_secs(180)).await;
    cp.attach(webhooks);
    (cp, d)
}

/// A management cluster as `clusterctl init` leaves it, for clusterctl move: the release
/// components as [`management_cluster`] installs them (clusterctl's labels
/// `clusterctl.cluster.x-k8s.io` and `cluster.x-k8s.io/provider` on every provider object), and
/// the provider inventory — the `providers.clusterctl.cluster.x-k8s.io` CRD (written here
/// minimally: clusterctl only lists and reads these objects, it needs no schema) and one
/// Provider per installed provider, at the installed version.
pub async fn clusterctl_management_cluster() -> (ControlPlane, Discovery) {
    let inventory_crd = Object::new(
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "providers.clusterctl.cluster.x-k8s.io", "labels": {"clusterctl.cluster.x-k8s.io/core": "inventory"}},
        "spec": {"group": "clusterctl.cluster.x-k8s.io", "scope": "Namespaced",
                 "names": {"kind": "Provider", "listKind": "ProviderList", "plural": "providers", "singular": "provider"},
                 "versions": [{"name": "v1alpha3", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}),
    );
    let (cp, d) = with_release_components(&[inventory_crd]).await;
    let providers = [
        ("capi-system", "cluster-api", "CoreProvider", CAPI_VERSION),
        (
            "capi-kubeadm-bootstrap-system",
            "bootstrap-kubeadm",
            "BootstrapProvider",
            CAPI_VERSION,
        ),
        (
            "capi-kubeadm-control-plane-system",
            "control-plane-kubeadm",
            "ControlPlaneProvider",
            CAPI_VERSION,
        ),
        (
            "capo-system",
            "infrastructure-openstack",
            "InfrastructureProvider",
            CAPO_VERSION,
        ),
    ];
    let inventory: Vec<Object> = providers
        .iter()
        .map(|(ns, name, ty, version)| {
            let provider_name = name.rsplit_once('-').map_or(*name, |(_, n)| n);
            let provider_name = if *name == "cluster-api" { "cluster-api" } else { provider_name };
            Object::new(json!({"apiVersion": "clusterctl.cluster.x-k8s.io/v1alpha3", "kind": "Provider",
                "metadata": {"name": name, "namespace": ns, "labels": {"clusterctl.cluster.x-k8s.io": "", "cluster.x-k8s.io/provider": name}},
                "providerName": provider_name, "type": ty, "version": version}))
        })
        .collect();
    apply_all(&d, &inventory).await;
    (cp, d)
}

/// The namespaced API of `kind` in [`NS`].
pub async fn api(d: &Discovery, api_version: &str, kind: &str) -> Api<DynamicObject> {
    api_in(d, api_version, kind, NS).await
}

/// The API of `kind` in namespace `ns`; panics when the server does not serve it.
pub async fn api_in(d: &Discovery, api_version: &str, kind: &str, ns: &str) -> Api<DynamicObject> {
    let r = d
        .resolve(&Gvk::from_api_version(api_version, kind))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{kind} served"));
    Api::namespaced_with(d.client().clone(), ns, &r.api)
}

/// The API for `o`'s kind, in its namespace when the kind is namespaced.
pub async fn dynamic_api(discovery: &Discovery, o: &Object) -> Api<DynamicObject> {
    let r = discovery
        .resolve(&o.gvk())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{} resolves", o.gvk()));
    match o.namespace() {
        Some(ns) if r.namespaced => Api::namespaced_with(discovery.client().clone(), ns, &r.api),
        _ => Api::all_with(discovery.client().clone(), &r.api),
    }
}

/// Creates an object in [`NS`] (owners given as (kind, name, uid, apiVersion)), then its
/// status; returns its UID.
pub async fn create(
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

/// The realistic cluster graph named `demo`: see [`cluster_graph`].
pub async fn demo_graph(d: &Discovery) {
    cluster_graph(d, "demo").await;
}

/// A realistic cluster graph, like the openstack-cluster chart and the CAPI controllers make,
/// for the Cluster `name` in [`NS`]: 17 objects (Cluster, KubeadmControlPlane, one
/// MachineDeployment with its MachineSet and Machine, CAPO infrastructure, bootstrap configs,
/// the cluster's Secrets, the chart's values ConfigMap and HelmRelease). Every object's name
/// starts with `name` or embeds it, so several graphs can share the namespace.
pub async fn cluster_graph(d: &Discovery, name: &str) {
    let infra_ref = |kind: &str, name: &str| json!({"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": kind, "name": name});
    let cp_name = format!("{name}-control-plane");
    let md_name = format!("{name}-md-0");
    let tmpl = format!("{md_name}-1");
    let ms_name = format!("{md_name}-abcde");
    let m_name = format!("{ms_name}-x1");
    let c = create(d, json!({"apiVersion": CAPI, "kind": "Cluster", "metadata": {"name": name, "labels": {"app": name}, "annotations": {"note": "kept"}},
        "spec": {"clusterNetwork": {"pods": {"cidrBlocks": ["172.16.0.0/13"]}},
                 "controlPlaneRef": {"apiGroup": "controlplane.cluster.x-k8s.io", "kind": "KubeadmControlPlane", "name": cp_name},
                 "infrastructureRef": infra_ref("OpenStackCluster", name)}}),
        &[], Some(json!({"phase": "Provisioned", "initialization": {"infrastructureProvisioned": true, "controlPlaneInitialized": true}}))).await;
    let owner_c = [("Cluster", name, c.as_str(), CAPI)];
    create(
        d,
        json!({"apiVersion": CAPO, "kind": "OpenStackCluster", "metadata": {"name": name},
        "spec": {"identityRef": {"cloudName": "openstack", "name": format!("{name}-cloud-credentials")}}}),
        &owner_c,
        Some(json!({"ready": true})),
    )
    .await;
    create(d, json!({"apiVersion": CAPO, "kind": "OpenStackMachineTemplate", "metadata": {"name": format!("{cp_name}-1")},
        "spec": {"template": {"spec": {"flavor": "m1.medium", "image": {"filter": {"name": "ubuntu-2404-kube-v1.33.4"}}}}}}), &owner_c, None).await;
    let kcp = create(d, json!({"apiVersion": "controlplane.cluster.x-k8s.io/v1beta2", "kind": "KubeadmControlPlane", "metadata": {"name": cp_name},
        "spec": {"replicas": 1, "version": "v1.33.4", "machineTemplate": {"spec": {"infrastructureRef": infra_ref("OpenStackMachineTemplate", &format!("{cp_name}-1"))}}}}),
        &owner_c, None).await;
    create(d, json!({"apiVersion": CAPO, "kind": "OpenStackMachineTemplate", "metadata": {"name": tmpl},
        "spec": {"template": {"spec": {"flavor": "m1.large", "image": {"filter": {"name": "ubuntu-2404-kube-v1.33.4"}}}}}}), &owner_c, None).await;
    create(d, json!({"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfigTemplate", "metadata": {"name": tmpl},
        "spec": {"template": {"spec": {"joinConfiguration": {"nodeRegistration": {"name": "{{ local_hostname }}"}}}}}}), &owner_c, None).await;
    let machine_spec = |infra: Value| {
        json!({"clusterName": name, "version": "v1.33.4", "infrastructureRef": infra,
        "bootstrap": {"configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfigTemplate", "name": tmpl}}})
    };
    let md_label = json!({"cluster.x-k8s.io/deployment-name": md_name});
    let selector = json!({"matchLabels": md_label});
    let md = create(d, json!({"apiVersion": CAPI, "kind": "MachineDeployment", "metadata": {"name": md_name},
        "spec": {"clusterName": name, "replicas": 1, "selector": selector,
                 "template": {"metadata": {"labels": md_label}, "spec": machine_spec(infra_ref("OpenStackMachineTemplate", &tmpl))}}}),
        &owner_c, Some(json!({"replicas": 1}))).await;
    let ms = create(d, json!({"apiVersion": CAPI, "kind": "MachineSet", "metadata": {"name": ms_name, "labels": md_label},
        "spec": {"clusterName": name, "replicas": 1, "selector": selector,
                 "template": {"metadata": {"labels": md_label}, "spec": machine_spec(infra_ref("OpenStackMachineTemplate", &tmpl))}}}),
        &[("MachineDeployment", &md_name, md.as_str(), CAPI)], None).await;
    let mut mspec = machine_spec(infra_ref("OpenStackMachine", &m_name));
    mspec["bootstrap"] = json!({"configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfig", "name": m_name}, "dataSecretName": m_name});
    let m = create(d, json!({"apiVersion": CAPI, "kind": "Machine", "metadata": {"name": m_name, "labels": md_label}, "spec": mspec}),
        &[("MachineSet", &ms_name, ms.as_str(), CAPI)], Some(json!({"phase": "Running", "nodeRef": {"name": m_name}}))).await;
    let owner_m = [("Machine", m_name.as_str(), m.as_str(), CAPI)];
    create(d, json!({"apiVersion": CAPO, "kind": "OpenStackMachine", "metadata": {"name": m_name},
        "spec": {"flavor": "m1.large", "image": {"filter": {"name": "ubuntu-2404-kube-v1.33.4"}}, "providerID": "openstack:///0b5d-1"}}), &owner_m, None).await;
    let kc = create(d, json!({"apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2", "kind": "KubeadmConfig", "metadata": {"name": m_name},
        "spec": {"joinConfiguration": {"nodeRegistration": {"name": "x1"}}}}), &owner_m, None).await;
    let secret = |name: &str, ty: &str| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": ty, "data": {"value": "c2VjcmV0"}});
    create(
        d,
        secret(&format!("{name}-kubeconfig"), "cluster.x-k8s.io/secret"),
        &[],
        None,
    )
    .await;
    create(
        d,
        secret(&format!("{name}-ca"), "cluster.x-k8s.io/secret"),
        &[(
            "KubeadmControlPlane",
            &cp_name,
            kcp.as_str(),
            "controlplane.cluster.x-k8s.io/v1beta2",
        )],
        None,
    )
    .await;
    create(
        d,
        secret(&m_name, "cluster.x-k8s.io/secret"),
        &[(
            "KubeadmConfig",
            &m_name,
            kc.as_str(),
            "bootstrap.cluster.x-k8s.io/v1beta2",
        )],
        None,
    )
    .await;
    create(
        d,
        secret(
            &format!("sh.helm.release.v1.{name}.v1"),
            "helm.sh/release.v1",
        ),
        &[],
        None,
    )
    .await;
    create(
        d,
        secret(&format!("{name}-cloud-credentials"), "Opaque"),
        &[(
            "SealedSecret",
            &format!("{name}-cloud-credentials"),
            "0f0e0d0c-0000-4000-8000-000000000001",
            "bitnami.com/v1alpha1",
        )],
        None,
    )
    .await;
    create(d, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("{name}-values")}, "data": {"values.yaml": format!("clusterName: {name}\n")}}), &[], None).await;
    create(d, json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": name},
        "spec": {"interval": "5m", "chart": {"spec": {"chart": "openstack-cluster", "sourceRef": {"kind": "HelmRepository", "name": "capi"}}}}}), &[], None).await;
}

/// Sets the v1beta2 conditions the Cluster controller sets once the control plane is up on
/// Cluster `name`: clusterctl moves only clusters that have them.
pub async fn mark_provisioned_for_clusterctl(d: &Discovery, name: &str) {
    let now = "2026-01-01T00:00:00Z";
    let conditions = json!({"status": {"conditions": [
        {"type": "ControlPlaneInitialized", "status": "True", "reason": "Initialized", "message": "", "lastTransitionTime": now},
        {"type": "ControlPlaneAvailable", "status": "True", "reason": "Available", "message": "", "lastTransitionTime": now},
        {"type": "InfrastructureReady", "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": now}]}});
    api(d, CAPI, "Cluster")
        .await
        .patch_status(name, &Default::default(), &Patch::Merge(conditions))
        .await
        .unwrap();
}

/// The kinds a move of a cluster graph moves.
pub const MOVED_KINDS: [(&str, &str); 12] = [
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
];

/// Every object of the moved kinds in the namespace, by `Kind/name`.
pub async fn snapshot(d: &Discovery) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (av, kind) in MOVED_KINDS {
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
