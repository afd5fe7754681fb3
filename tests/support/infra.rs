//! A test-only stand-in for what cannot run here: what needs a booted machine, the add-on
//! provider (a Python operator), and the RESULTS of the Cluster API controllers' reconciling.
//! OpenStack itself is real (the loopback stack), and so are CAPO and ORC, which reconcile the
//! chart's OpenStackCluster, OpenStackMachines and Images there (tests/support/webhooks.rs,
//! orc.rs): the stand-in never writes their status. The chart's objects themselves (Cluster,
//! KubeadmControlPlane, OpenStackCluster, templates, MachineDeployments) come from the real
//! openstack-cluster chart installed by the real helm-controller; the stand-in never creates
//! them.
//!
//! On every watched cluster, as the upstream components would, it:
//! - registers the add-on provider's CRDs once the provider's Deployment is available (the
//!   provider applies them at start-up), and reports each addon `Deployed`;
//! - for every Cluster that is not paused (Cluster API controllers skip paused clusters, so
//!   objects arriving by a move are left alone), as the Cluster controller: its finalizer, the
//!   OpenStackCluster's owner reference (CAPO waits for it), the endpoint and readiness CAPO
//!   reports copied into the Cluster; as the KubeadmControlPlane controller (it needs a live
//!   etcd): the cluster's `-ca`/`-etcd`/`-sa`/`-proxy` certificates and `-kubeconfig` (pointing
//!   at the "new cluster"), and, once the infrastructure is ready, one Machine per replica; as
//!   the MachineDeployment and MachineSet controllers: a MachineSet, its Machines; for every
//!   Machine, its OpenStackMachine and KubeadmConfig (owned by the Machine) and, as the kubeadm
//!   bootstrap controller (cloud-init), the bootstrap data Secret CAPO waits for; as the Machine
//!   controller, once CAPO reports the server: its providerID copied into the Machine, and, as
//!   the kubelet of the booted server would, a kwok Node with that providerID in the workload
//!   cluster; then the status the controllers report;
//! - for a deleted Cluster, the Cluster API deletion order: its control plane, MachineDeployments
//!   and Machines (each Machine's OpenStackMachine first, which CAPO deletes in OpenStack, then
//!   its Node), then the OpenStackCluster (CAPO deletes the network, router, load balancer...),
//!   then the Cluster's finalizer.
//!
//! cert-manager's cainjector is played by the webhooks harness (tests/support/webhooks.rs),
//! with the CA that signed the real webhook servers' certificates.
//!
//! Names, labels and owner references follow Cluster API v1.13: Machines of a control plane
//! are `<kcp>-<random>`, MachineSets `<md>-<random>`, their Machines `<ms>-<random>`; infra
//! machines and bootstrap configs are named after their Machine.
//!
//! It speaks `v1beta1` to Cluster API, as the chart does: specs it copies (a MachineDeployment's
//! template into its MachineSet, a KubeadmControlPlane's `kubeadmConfigSpec` into a
//! KubeadmConfig) keep the shape they were written in, and its status carries both the v1beta1
//! fields and, under `status.v1beta2`, what the controllers report in v1beta2 (which the
//! conversion webhook turns into the v1beta2 status).

use std::time::Duration;

use ::kube::Api;
use ::kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use base64::Engine;
use capi_manage::kube::Discovery;
use capi_manage::manifest::Gvk;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

mod machines;
use machines::{building, control_plane, machine_deleted, machine_deployment};

/// What the stand-in plays.
#[derive(Clone)]
pub struct InfraOptions {
    /// The Cluster API namespace (capi-self).
    pub namespace: String,
    /// The cluster's name (= the chart's release name).
    pub cluster: String,
    /// The kubeconfig written to `<cluster>-kubeconfig`.
    pub kubeconfig: Vec<u8>,
}

/// The options and the workload cluster, where the machines' Nodes register (kwok Nodes).
pub(super) struct Ctx {
    o: InfraOptions,
    workload: Option<Discovery>,
}

impl std::ops::Deref for Ctx {
    type Target = InfraOptions;
    fn deref(&self) -> &InfraOptions {
        &self.o
    }
}

/// The running stand-in; stops on drop.
pub struct Infra {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Infra {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.task.abort();
    }
}

impl Infra {
    /// Starts watching `first` (where the chart installs) and `others`; no workload cluster.
    pub fn start(first: Discovery, others: Vec<Discovery>, o: InfraOptions) -> Infra {
        Infra::start_with_workload(first, others, o, None)
    }

    /// As [`Infra::start`], with the machines' kwok Nodes registered in `workload`.
    pub fn start_with_workload(
        first: Discovery,
        others: Vec<Discovery>,
        o: InfraOptions,
        workload: Option<Discovery>,
    ) -> Infra {
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        let ctx = Ctx { o, workload };
        let task = tokio::spawn(async move {
            while !c.is_cancelled() {
                for d in std::iter::once(&first).chain(others.iter()) {
                    let _ = addon_provider(d).await;
                    let _ = reconcile(d, &ctx).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Infra { cancel, task }
    }
}

pub(super) async fn api(
    d: &Discovery,
    api_version: &str,
    kind: &str,
    ns: Option<&str>,
) -> Option<Api<DynamicObject>> {
    let r = d
        .resolve(&Gvk::from_api_version(api_version, kind))
        .await
        .ok()??;
    Some(match ns {
        Some(ns) => Api::namespaced_with(d.client().clone(), ns, &r.api),
        None => Api::all_with(d.client().clone(), &r.api),
    })
}

pub(super) const CAPI: &str = "cluster.x-k8s.io/v1beta1";
pub(super) const CAPO: &str = "infrastructure.cluster.x-k8s.io/v1beta1";
pub(super) const KCP: &str = "controlplane.cluster.x-k8s.io/v1beta1";
pub(super) const CABPK: &str = "bootstrap.cluster.x-k8s.io/v1beta1";
pub(super) const CLUSTER_NAME: &str = "cluster.x-k8s.io/cluster-name";
const ADDONS: &str = "addons.stackhpc.com";

/// An owner reference as `metav1.NewControllerRef` makes it.
pub(super) fn controller_ref(api_version: &str, kind: &str, o: &DynamicObject) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": o.metadata.name, "uid": o.metadata.uid,
           "controller": true, "blockOwnerDeletion": true})
}

/// Creates `v` in `ns` (an existing object is returned as it is).
pub(super) async fn create(d: &Discovery, ns: &str, mut v: Value) -> Option<DynamicObject> {
    v["metadata"]["namespace"] = json!(ns);
    let a = api(d, v["apiVersion"].as_str()?, v["kind"].as_str()?, Some(ns)).await?;
    let obj: DynamicObject = serde_json::from_value(v).ok()?;
    match a.create(&PostParams::default(), &obj).await {
        Ok(c) => Some(c),
        Err(::kube::Error::Api(e)) if e.code == 409 => {
            a.get(obj.metadata.name.as_deref()?).await.ok()
        }
        Err(e) => {
            eprintln!(
                "stand-in: create {} {}: {e}",
                obj.types.as_ref().map_or("?", |t| t.kind.as_str()),
                obj.metadata.name.as_deref().unwrap_or("?")
            );
            None
        }
    }
}

pub(super) fn secret(name: &str, ty: &str, data: &[(&str, &[u8])], cluster: &str) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                json!(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "labels": {CLUSTER_NAME: cluster}},
        "type": ty, "data": data})
}

/// Replaces the status subresource with `status` unless it already holds it.
pub(super) async fn set_status(a: &Api<DynamicObject>, o: &DynamicObject, status: Value) {
    if o.data["status"] == status {
        return;
    }
    let mut v = serde_json::to_value(o).unwrap();
    v["status"] = status;
    if let Err(e) = a
        .replace_status(
            o.metadata.name.as_deref().unwrap(),
            &PostParams::default(),
            &serde_json::from_value(v).unwrap(),
        )
        .await
    {
        eprintln!(
            "stand-in: status of {}: {e}",
            o.metadata.name.as_deref().unwrap_or("?")
        );
    }
}

/// A v1beta2 condition (metav1.Condition), True.
pub(super) fn condition(ty: &str, generation: i64, reason: &str) -> Value {
    json!({"type": ty, "status": "True", "reason": reason, "message": "", "observedGeneration": generation,
           "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

/// v1beta1 conditions (Cluster API's own type), True.
pub(super) fn v1beta1_conditions(types: &[&str]) -> Value {
    types
        .iter()
        .map(|t| json!({"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}))
        .collect()
}

/// Five characters as `k8s.io/apimachinery/pkg/util/rand.String` draws them.
pub(super) fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = [0u8; 5];
    getrandom::fill(&mut bytes).unwrap();
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

pub(super) async fn list(a: &Api<DynamicObject>, selector: &str) -> Vec<DynamicObject> {
    a.list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

// ---------------------------------------------------------------- the add-on provider

/// The add-on provider's CRDs (applied by the provider at start-up), then every addon reported
/// `Deployed` as the provider does once the release is installed in the workload cluster.
async fn addon_provider(d: &Discovery) -> Option<()> {
    let deployments = api(d, "apps/v1", "Deployment", None).await?;
    let running = list(
        &deployments,
        "app.kubernetes.io/name=cluster-api-addon-provider",
    )
    .await
    .iter()
    .any(|dep| {
        dep.data["status"]["availableReplicas"]
            .as_i64()
            .unwrap_or(0)
            > 0
    });
    if !running {
        return Some(());
    }
    let crds = api(
        d,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
    )
    .await?;
    for (kind, plural) in [("HelmRelease", "helmreleases"), ("Manifests", "manifests")] {
        let name = format!("{plural}.{ADDONS}");
        if crds.get_opt(&name).await.ok()?.is_some() {
            continue;
        }
        // The provider generates full schemas from its models; this one keeps every field.
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {"group": ADDONS, "scope": "Namespaced",
                "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                          "singular": kind.to_lowercase(), "categories": ["cluster-api", "capi-addons"]},
                "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
        let _ = crds
            .create(&PostParams::default(), &serde_json::from_value(crd).ok()?)
            .await;
    }
    for kind in ["HelmRelease", "Manifests"] {
        let Some(a) = api(d, &format!("{ADDONS}/v1alpha1"), kind, None).await else {
            continue;
        };
        for addon in list(&a, "").await {
            if addon.data["status"]["phase"] == "Deployed" {
                continue;
            }
            let ns = addon.metadata.namespace.clone()?;
            let na = api(d, &format!("{ADDONS}/v1alpha1"), kind, Some(&ns)).await?;
            set_status(&na, &addon, json!({"phase": "Deployed"})).await;
        }
    }
    Some(())
}

// ---------------------------------------------------------------- Cluster API results

/// Cluster API's finalizers, as its Cluster and Machine controllers add them.
pub(super) const CLUSTER_FINALIZER: &str = "cluster.cluster.x-k8s.io";
pub(super) const MACHINE_FINALIZER: &str = "machine.cluster.x-k8s.io";

fn paused(o: &DynamicObject) -> bool {
    o.data["spec"]["paused"] == true
        || o.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("cluster.x-k8s.io/paused"))
}

/// The results of Cluster API's controllers for every unpaused Cluster in the namespace.
async fn reconcile(d: &Discovery, o: &Ctx) -> Option<()> {
    let ns = o.namespace.as_str();
    let clusters = api(d, CAPI, "Cluster", Some(ns)).await?;
    for cluster in list(&clusters, "").await {
        if paused(&cluster) {
            continue;
        }
        if cluster.metadata.deletion_timestamp.is_some() {
            delete_cluster(d, o, &clusters, &cluster).await;
            continue;
        }
        let has = |f: &str| cluster.metadata.finalizers.iter().flatten().any(|x| x == f);
        if !has(CLUSTER_FINALIZER) {
            let mut fs = cluster.metadata.finalizers.clone().unwrap_or_default();
            fs.push(CLUSTER_FINALIZER.into());
            let _ = clusters
                .patch(
                    cluster.metadata.name.as_deref()?,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": fs,
                        "resourceVersion": cluster.metadata.resource_version}})),
                )
                .await;
            continue;
        }
        reconcile_cluster(d, o, &clusters, &cluster).await;
    }
    Some(())
}

/// Removes `finalizer` from `o`.
pub(super) async fn remove_finalizer(a: &Api<DynamicObject>, o: &DynamicObject, finalizer: &str) {
    let rest: Vec<&String> = o
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != finalizer)
        .collect();
    let _ = a
        .patch(
            o.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": rest,
                "resourceVersion": o.metadata.resource_version}})),
        )
        .await;
}

/// Deletes `name` unless it is gone or going; true once it is gone.
pub(super) async fn delete_and_check(a: &Api<DynamicObject>, name: &str) -> bool {
    match a.get_opt(name).await {
        Ok(None) => true,
        Ok(Some(o)) => {
            if o.metadata.deletion_timestamp.is_none() {
                let _ = a.delete(name, &DeleteParams::default()).await;
            }
            false
        }
        Err(_) => false,
    }
}

/// Cluster API's deletion of a Cluster: its control plane and MachineDeployments with their
/// Machines, then (no Machine left) the infrastructure cluster, then the finalizer.
async fn delete_cluster(
    d: &Discovery,
    o: &Ctx,
    clusters: &Api<DynamicObject>,
    cluster: &DynamicObject,
) -> Option<()> {
    let ns = o.namespace.as_str();
    let name = cluster.metadata.name.clone()?;
    let selector = format!("{CLUSTER_NAME}={name}");
    for (api_version, kind) in [
        (KCP, "KubeadmControlPlane"),
        (CAPI, "MachineDeployment"),
        (CAPI, "MachineSet"),
    ] {
        let a = api(d, api_version, kind, Some(ns)).await?;
        for x in list(&a, &selector).await {
            delete_and_check(&a, x.metadata.name.as_deref()?).await;
        }
    }
    // One Machine at a time (Cluster API deletes them together): the loopback Nova keeps its
    // databases in sqlite and loses concurrent deletes to `database is locked`.
    let machines = api(d, CAPI, "Machine", Some(ns)).await?;
    let left = list(&machines, &selector).await;
    match left
        .iter()
        .find(|m| m.metadata.deletion_timestamp.is_some())
    {
        Some(m) => {
            machine_deleted(d, o, &machines, m).await;
        }
        None => {
            if let Some(m) = left.first() {
                delete_and_check(&machines, m.metadata.name.as_deref()?).await;
            }
        }
    }
    if !left.is_empty() {
        return Some(());
    }
    let infra_ref = &cluster.data["spec"]["infrastructureRef"];
    if infra_ref["kind"] == "OpenStackCluster" {
        let oscs = api(d, CAPO, "OpenStackCluster", Some(ns)).await?;
        if !delete_and_check(&oscs, infra_ref["name"].as_str()?).await {
            return Some(());
        }
    }
    remove_finalizer(clusters, cluster, CLUSTER_FINALIZER).await;
    Some(())
}

async fn reconcile_cluster(
    d: &Discovery,
    o: &Ctx,
    clusters: &Api<DynamicObject>,
    cluster: &DynamicObject,
) -> Option<()> {
    let ns = o.namespace.as_str();
    let name = cluster.metadata.name.clone()?;

    // The Cluster controller owns the infrastructure cluster (CAPO waits for that owner
    // reference), then copies what CAPO reports: readiness and the load balancer's endpoint.
    let infra_ref = &cluster.data["spec"]["infrastructureRef"];
    let mut infra_ready = false;
    if infra_ref["kind"] == "OpenStackCluster" {
        let oscs = api(d, CAPO, "OpenStackCluster", Some(ns)).await?;
        if let Some(osc) = oscs.get_opt(infra_ref["name"].as_str()?).await.ok()? {
            let owned = osc
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.kind == "Cluster" && Some(&r.uid) == cluster.metadata.uid.as_ref());
            if !owned {
                let mut refs: Vec<Value> = osc
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .filter(|r| r.kind != "Cluster")
                    .map(|r| serde_json::to_value(r).unwrap())
                    .collect();
                refs.push(controller_ref(CAPI, "Cluster", cluster));
                let _ = oscs
                    .patch(
                        osc.metadata.name.as_deref()?,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"ownerReferences": refs}})),
                    )
                    .await;
            }
            infra_ready = osc.data["status"]["ready"] == true
                || osc.data["status"]["initialization"]["provisioned"] == true;
            let ep = &osc.data["spec"]["controlPlaneEndpoint"];
            if ep["host"].as_str().is_some_and(|h| !h.is_empty())
                && cluster.data["spec"]["controlPlaneEndpoint"] != *ep
            {
                let _ = clusters
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"controlPlaneEndpoint": ep}})),
                    )
                    .await;
            }
        }
    }

    // The KubeadmControlPlane controller: certificates, kubeconfig, control-plane Machines.
    let cp_ref = &cluster.data["spec"]["controlPlaneRef"];
    let (mut cp_initialized, mut cp_ready) = (false, false);
    let mut busy = building(d, ns, &name).await?;
    if cp_ref["kind"] == "KubeadmControlPlane" {
        let kcps = api(d, KCP, "KubeadmControlPlane", Some(ns)).await?;
        if let Some(kcp) = kcps.get_opt(cp_ref["name"].as_str()?).await.ok()? {
            (cp_initialized, cp_ready) =
                control_plane(d, o, &name, &kcps, &kcp, infra_ready, &mut busy)
                    .await
                    .unwrap_or((false, false));
        }
    }

    // The MachineDeployment and MachineSet controllers.
    let mds = api(d, CAPI, "MachineDeployment", Some(ns)).await?;
    let mut workers_ready = true;
    for md in list(&mds, "").await {
        if md.data["spec"]["clusterName"] != name.as_str() {
            continue;
        }
        workers_ready &= machine_deployment(d, o, &name, &mds, &md, cp_initialized, &mut busy)
            .await
            .unwrap_or(false);
    }

    let g = cluster.metadata.generation.unwrap_or(1);
    let mut conditions = Vec::new();
    let mut old = Vec::new();
    if infra_ready {
        conditions.push(condition("InfrastructureReady", g, "Ready"));
        old.push("InfrastructureReady");
    }
    if cp_initialized {
        conditions.push(condition("ControlPlaneInitialized", g, "Initialized"));
        old.push("ControlPlaneInitialized");
    }
    if cp_ready {
        conditions.push(condition("ControlPlaneAvailable", g, "Available"));
        old.push("ControlPlaneReady");
    }
    if infra_ready && cp_ready && workers_ready {
        conditions.push(condition("Available", g, "Available"));
        old.push("Ready");
    }
    let current = clusters.get(&name).await.ok()?;
    set_status(
        clusters,
        &current,
        json!({"observedGeneration": g,
            "phase": if infra_ready { "Provisioned" } else { "Provisioning" },
            "infrastructureReady": infra_ready, "controlPlaneReady": cp_ready,
            "conditions": v1beta1_conditions(&old),
            "v1beta2": {"conditions": conditions}}),
    )
    .await;
    Some(())
}
