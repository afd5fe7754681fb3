//! A test-only stand-in for what cannot run here: OpenStack, the add-on provider (a Python
//! operator), and the RESULTS of the Cluster API and CAPO controllers' reconciling. The chart's
//! objects themselves (Cluster, KubeadmControlPlane, OpenStackCluster, templates,
//! MachineDeployments) come from the real openstack-cluster chart installed by the real
//! helm-controller; the stand-in never creates them.
//!
//! On every watched cluster, as the upstream components would, it:
//! - registers the add-on provider's CRDs once the provider's Deployment is available (the
//!   provider applies them at start-up), and reports each addon `Deployed`;
//! - for every Cluster that is not paused (CAPI controllers skip paused clusters, so objects
//!   arriving by a move are left alone): reports the OpenStackCluster provisioned with the new
//!   cluster's API endpoint; creates what the KubeadmControlPlane controller creates (the
//!   cluster's `-ca`/`-etcd`/`-sa`/`-proxy` certificates and `-kubeconfig`, pointing at the
//!   "new cluster", and one Machine per replica) and what the MachineDeployment and MachineSet
//!   controllers create (a MachineSet, its Machines); for every Machine, its OpenStackMachine and
//!   KubeadmConfig (owned by the Machine, as they are once the Machine controller adopts them)
//!   and the bootstrap data Secret; then the status the controllers report.
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
//! conversion webhook turns into the v1beta2 status). So it is right with the real conversion
//! webhook and also on CRDs that serve both versions without one (strategy None).

use std::time::Duration;

use ::kube::Api;
use ::kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use base64::Engine;
use capi_manage::kube::Discovery;
use capi_manage::manifest::Gvk;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// `Some` value, or a logged step that could not be done (retried on the next round).
macro_rules! need {
    ($e:expr, $($what:tt)*) => {
        match $e {
            Some(v) => v,
            None => {
                eprintln!("stand-in: cannot {}", format!($($what)*));
                return None;
            }
        }
    };
}

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
    /// Starts watching `first` (where the chart installs) and `others`.
    pub fn start(first: Discovery, others: Vec<Discovery>, o: InfraOptions) -> Infra {
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        let task = tokio::spawn(async move {
            while !c.is_cancelled() {
                for d in std::iter::once(&first).chain(others.iter()) {
                    let _ = addon_provider(d).await;
                    let _ = reconcile(d, &o).await;
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
const CLUSTER_NAME: &str = "cluster.x-k8s.io/cluster-name";
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
fn v1beta1_conditions(types: &[&str]) -> Value {
    types
        .iter()
        .map(|t| json!({"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}))
        .collect()
}

/// Five characters as `k8s.io/apimachinery/pkg/util/rand.String` draws them.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = [0u8; 5];
    getrandom::fill(&mut bytes).unwrap();
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

async fn list(a: &Api<DynamicObject>, selector: &str) -> Vec<DynamicObject> {
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

// ---------------------------------------------------------------- CAPI/CAPO results

/// The results of CAPO's and CAPI's controllers for every unpaused Cluster in the namespace.
async fn reconcile(d: &Discovery, o: &InfraOptions) -> Option<()> {
    let ns = o.namespace.as_str();
    let clusters = api(d, CAPI, "Cluster", Some(ns)).await?;
    for cluster in list(&clusters, "").await {
        let paused = cluster.data["spec"]["paused"] == true
            || cluster
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("cluster.x-k8s.io/paused"));
        if paused || cluster.metadata.deletion_timestamp.is_some() {
            continue;
        }
        reconcile_cluster(d, o, &clusters, &cluster).await;
    }
    Some(())
}

/// host and port of the new cluster's API server, from the kubeconfig.
fn endpoint(kubeconfig: &[u8]) -> (String, i64) {
    let kc: Value = serde_yaml_ng::from_slice(kubeconfig).unwrap_or(Value::Null);
    let server = kc["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap_or("https://127.0.0.1:6443");
    let hostport = server.trim_start_matches("https://");
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "443"));
    (host.to_string(), port.parse().unwrap_or(443))
}

async fn reconcile_cluster(
    d: &Discovery,
    o: &InfraOptions,
    clusters: &Api<DynamicObject>,
    cluster: &DynamicObject,
) -> Option<()> {
    let ns = o.namespace.as_str();
    let name = cluster.metadata.name.clone()?;
    let (host, port) = endpoint(&o.kubeconfig);
    let ep = json!({"host": host, "port": port});

    // CAPO: the OpenStackCluster is provisioned, its endpoint is the load balancer's address.
    let infra_ref = &cluster.data["spec"]["infrastructureRef"];
    if infra_ref["kind"] == "OpenStackCluster" {
        let oscs = api(d, CAPO, "OpenStackCluster", Some(ns)).await?;
        if let Some(osc) = oscs.get_opt(infra_ref["name"].as_str()?).await.ok()? {
            // Set once, when the load balancer is made; a moved cluster keeps its own.
            if osc.data["spec"]["controlPlaneEndpoint"]["host"]
                .as_str()
                .is_none_or(str::is_empty)
            {
                let _ = oscs
                    .patch(
                        osc.metadata.name.as_deref()?,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"controlPlaneEndpoint": ep}})),
                    )
                    .await;
            }
            let osc = oscs.get(osc.metadata.name.as_deref()?).await.ok()?;
            let g = osc.metadata.generation.unwrap_or(1);
            set_status(&oscs, &osc, json!({"ready": true, "initialization": {"provisioned": true},
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                "observedGeneration": g})).await;
        }
    }
    // CAPI's Cluster controller copies the endpoint from the infrastructure cluster.
    if cluster.data["spec"]["controlPlaneEndpoint"]["host"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        let _ = clusters
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"controlPlaneEndpoint": ep}})),
            )
            .await;
    }

    // The KubeadmControlPlane controller: certificates, kubeconfig, control-plane Machines.
    let cp_ref = &cluster.data["spec"]["controlPlaneRef"];
    let mut cp_ready = false;
    if cp_ref["kind"] == "KubeadmControlPlane" {
        let kcps = api(d, KCP, "KubeadmControlPlane", Some(ns)).await?;
        if let Some(kcp) = kcps.get_opt(cp_ref["name"].as_str()?).await.ok()? {
            cp_ready = control_plane(d, o, &name, &kcps, &kcp)
                .await
                .unwrap_or(false);
        }
    }

    // The MachineDeployment and MachineSet controllers.
    let mds = api(d, CAPI, "MachineDeployment", Some(ns)).await?;
    for md in list(&mds, "").await {
        if md.data["spec"]["clusterName"] != name.as_str() {
            continue;
        }
        let _ = machine_deployment(d, ns, &name, &mds, &md).await;
    }

    let g = cluster.metadata.generation.unwrap_or(1);
    let mut conditions = vec![
        condition("InfrastructureReady", g, "Ready"),
        condition("ControlPlaneInitialized", g, "Initialized"),
    ];
    let mut old = vec!["InfrastructureReady", "ControlPlaneInitialized"];
    if cp_ready {
        conditions.push(condition("ControlPlaneAvailable", g, "Available"));
        conditions.push(condition("Available", g, "Available"));
        old.extend(["ControlPlaneReady", "Ready"]);
    }
    let current = clusters.get(&name).await.ok()?;
    set_status(
        clusters,
        &current,
        json!({"observedGeneration": g, "phase": "Provisioned",
            "infrastructureReady": true, "controlPlaneReady": cp_ready,
            "conditions": v1beta1_conditions(&old),
            "v1beta2": {"conditions": conditions}}),
    )
    .await;
    Some(())
}

/// The KubeadmControlPlane's Machines and secrets; true when all its replicas are available.
async fn control_plane(
    d: &Discovery,
    o: &InfraOptions,
    cluster: &str,
    kcps: &Api<DynamicObject>,
    kcp: &DynamicObject,
) -> Option<bool> {
    let ns = o.namespace.as_str();
    let kcp_name = kcp.metadata.name.clone()?;
    let owner = controller_ref(KCP, "KubeadmControlPlane", kcp);
    for (suffix, key) in [
        ("ca", "tls.crt"),
        ("etcd", "tls.crt"),
        ("sa", "tls.crt"),
        ("proxy", "tls.crt"),
    ] {
        let mut s = secret(
            &format!("{cluster}-{suffix}"),
            "cluster.x-k8s.io/secret",
            &[(key, b"stand-in certificate"), ("tls.key", b"stand-in key")],
            cluster,
        );
        s["metadata"]["ownerReferences"] = json!([owner]);
        need!(create(d, ns, s).await, "create {cluster}-{suffix}");
    }
    let mut kc = secret(
        &format!("{cluster}-kubeconfig"),
        "cluster.x-k8s.io/secret",
        &[("value", &o.kubeconfig)],
        cluster,
    );
    kc["metadata"]["ownerReferences"] = json!([owner]);
    need!(create(d, ns, kc).await, "create {cluster}-kubeconfig");

    let replicas = kcp.data["spec"]["replicas"].as_i64().unwrap_or(1);
    let version = kcp.data["spec"]["version"].clone();
    let machines = api(d, CAPI, "Machine", Some(ns)).await?;
    let selector =
        format!("{CLUSTER_NAME}={cluster},cluster.x-k8s.io/control-plane-name={kcp_name}");
    let mut have = list(&machines, &selector).await.len() as i64;
    while have < replicas {
        let labels = json!({CLUSTER_NAME: cluster, "cluster.x-k8s.io/control-plane": "",
                            "cluster.x-k8s.io/control-plane-name": kcp_name});
        let name = format!("{kcp_name}-{}", random_suffix());
        new_machine(d, ns, cluster, &name, labels, owner.clone(), &version).await?;
        have += 1;
    }
    // The first Machine initialises the control plane, the others join it.
    let mut cp_machines = list(&machines, &selector).await;
    cp_machines.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .cmp(&b.metadata.creation_timestamp)
    });
    // v1beta1 `machineTemplate.infrastructureRef`; an object written as v1beta2 and read back
    // without conversion keeps `machineTemplate.spec.infrastructureRef`.
    let mt = &kcp.data["spec"]["machineTemplate"];
    let infra_tmpl = if mt["infrastructureRef"].is_object() {
        mt["infrastructureRef"].clone()
    } else {
        mt["spec"]["infrastructureRef"].clone()
    };
    for (i, m) in cp_machines.iter().enumerate() {
        let mut config = kcp.data["spec"]["kubeadmConfigSpec"].clone();
        if let Some(c) = config.as_object_mut() {
            c.remove(if i == 0 {
                "joinConfiguration"
            } else {
                "initConfiguration"
            });
            if i > 0 {
                c.remove("clusterConfiguration");
            }
        }
        need!(
            machine_parts(d, ns, cluster, m, &infra_tmpl, config).await,
            "complete control-plane Machine {:?}",
            m.metadata.name
        );
    }
    let g = kcp.metadata.generation.unwrap_or(1);
    let current = kcps.get(&kcp_name).await.ok()?;
    set_status(
        kcps,
        &current,
        json!({"observedGeneration": g, "selector": selector, "replicas": replicas,
            "readyReplicas": replicas, "updatedReplicas": replicas, "unavailableReplicas": 0,
            "version": version, "initialized": true, "ready": true,
            "conditions": v1beta1_conditions(&["Ready", "Available", "MachinesReady", "MachinesCreated"]),
            "v1beta2": {"readyReplicas": replicas, "availableReplicas": replicas, "upToDateReplicas": replicas,
                "conditions": [condition("Available", g, "Available"),
                               condition("Initialized", g, "Initialized")]}}),
    )
    .await;
    Some(true)
}

/// A Machine as its owner (KubeadmControlPlane or MachineSet) creates it, with what the
/// Machine controller later copies into its spec (the infra machine's providerID, the bootstrap
/// data secret's name).
async fn new_machine(
    d: &Discovery,
    ns: &str,
    cluster: &str,
    name: &str,
    labels: Value,
    owner: Value,
    version: &Value,
) -> Option<DynamicObject> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    // An OpenStack server UUID.
    let server_id = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    create(d, ns, json!({"apiVersion": CAPI, "kind": "Machine",
        "metadata": {"name": name, "labels": labels, "ownerReferences": [owner]},
        "spec": {"clusterName": cluster, "version": version, "providerID": format!("openstack:///{server_id}"),
            "infrastructureRef": {"apiVersion": CAPO, "kind": "OpenStackMachine", "name": name, "namespace": ns},
            "bootstrap": {"configRef": {"apiVersion": CABPK, "kind": "KubeadmConfig", "name": name, "namespace": ns},
                          "dataSecretName": name}}})).await
}

/// A Machine's OpenStackMachine (cloned from `infra_template`'s `spec.template.spec`),
/// KubeadmConfig (`bootstrap_spec`) and bootstrap data Secret, owned as they are once the
/// Machine controller has adopted them, and the statuses once the node has joined.
async fn machine_parts(
    d: &Discovery,
    ns: &str,
    cluster: &str,
    m: &DynamicObject,
    infra_template: &Value,
    bootstrap_spec: Value,
) -> Option<()> {
    let name = m.metadata.name.as_deref()?;
    let provider_id = need!(
        m.data["spec"]["providerID"].as_str(),
        "read providerID of {name}"
    );
    let by_machine = controller_ref(CAPI, "Machine", m);
    let osms = api(d, CAPO, "OpenStackMachine", Some(ns)).await?;
    let osm = match osms.get_opt(name).await.ok()? {
        Some(osm) => osm,
        None => {
            let tmpl_name = need!(infra_template["name"].as_str(), "read template of {name}");
            let templates = api(d, CAPO, "OpenStackMachineTemplate", Some(ns)).await?;
            let tmpl = need!(templates.get(tmpl_name).await.ok(), "read {tmpl_name}");
            let mut spec = tmpl.data["spec"]["template"]["spec"].clone();
            spec["providerID"] = json!(provider_id);
            create(d, ns, json!({"apiVersion": CAPO, "kind": "OpenStackMachine",
                "metadata": {"name": name, "labels": labels_of(m), "ownerReferences": [by_machine],
                    "annotations": {"cluster.x-k8s.io/cloned-from-name": tmpl_name,
                                    "cluster.x-k8s.io/cloned-from-groupkind": "OpenStackMachineTemplate.infrastructure.cluster.x-k8s.io"}},
                "spec": spec})).await?
        }
    };
    let server_id = provider_id.trim_start_matches("openstack:///");
    set_status(
        &osms,
        &osm,
        json!({"ready": true, "instanceID": server_id, "instanceState": "ACTIVE",
        "initialization": {"provisioned": true},
        "addresses": [{"type": "InternalIP", "address": "10.0.0.10"}]}),
    )
    .await;
    let kcs = api(d, CABPK, "KubeadmConfig", Some(ns)).await?;
    let kc = match kcs.get_opt(name).await.ok()? {
        Some(kc) => kc,
        None => {
            create(
                d,
                ns,
                json!({"apiVersion": CABPK, "kind": "KubeadmConfig",
            "metadata": {"name": name, "labels": labels_of(m), "ownerReferences": [by_machine]},
            "spec": bootstrap_spec}),
            )
            .await?
        }
    };
    let mut data = secret(
        name,
        "cluster.x-k8s.io/secret",
        &[
            ("value", b"## stand-in cloud-config\n"),
            ("format", b"cloud-config"),
        ],
        cluster,
    );
    data["metadata"]["ownerReferences"] = json!([{"apiVersion": CABPK, "kind": "KubeadmConfig",
        "name": name, "uid": kc.metadata.uid, "controller": true}]);
    create(d, ns, data).await?;
    let kg = kc.metadata.generation.unwrap_or(1);
    set_status(&kcs, &kc, json!({"dataSecretName": name, "ready": true, "observedGeneration": kg,
        "conditions": v1beta1_conditions(&["Ready", "DataSecretAvailable"]),
        "v1beta2": {"conditions": [condition("Ready", kg, "Ready"), condition("DataSecretAvailable", kg, "Available")]}})).await;
    let machines = api(d, CAPI, "Machine", Some(ns)).await?;
    let g = m.metadata.generation.unwrap_or(1);
    set_status(&machines, m, json!({"phase": "Running", "observedGeneration": g,
        "nodeRef": {"apiVersion": "v1", "kind": "Node", "name": name},
        "bootstrapReady": true, "infrastructureReady": true,
        "conditions": v1beta1_conditions(&["Ready", "BootstrapReady", "InfrastructureReady", "NodeHealthy"]),
        "v1beta2": {"conditions": [condition("Ready", g, "Ready"), condition("Available", g, "Available"),
                                   condition("NodeHealthy", g, "NodeHealthy")]}})).await;
    Some(())
}

fn labels_of(o: &DynamicObject) -> serde_json::Map<String, Value> {
    o.metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect()
}

/// A MachineDeployment's MachineSet and Machines, then both statuses.
async fn machine_deployment(
    d: &Discovery,
    ns: &str,
    cluster: &str,
    mds: &Api<DynamicObject>,
    md: &DynamicObject,
) -> Option<()> {
    let md_name = md.metadata.name.clone()?;
    let replicas = md.data["spec"]["replicas"].as_i64().unwrap_or(1);
    let template = md.data["spec"]["template"].clone();
    let sets = api(d, CAPI, "MachineSet", Some(ns)).await?;
    let owned = |s: &DynamicObject| {
        s.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| Some(&r.uid) == md.metadata.uid.as_ref())
    };
    let ms = match list(
        &sets,
        &format!("cluster.x-k8s.io/deployment-name={md_name}"),
    )
    .await
    .into_iter()
    .find(owned)
    {
        Some(ms) => ms,
        None => {
            let suffix = random_suffix();
            let unique = format!("{}-{suffix}", md.metadata.generation.unwrap_or(1));
            let mut labels: serde_json::Map<String, Value> = template["metadata"]["labels"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            labels.insert("machine-template-hash".into(), json!(unique));
            labels.insert("cluster.x-k8s.io/deployment-name".into(), json!(md_name));
            labels.insert(CLUSTER_NAME.into(), json!(cluster));
            let mut selector = md.data["spec"]["selector"].clone();
            selector["matchLabels"]["machine-template-hash"] = json!(unique);
            let mut tmpl = template.clone();
            tmpl["metadata"]["labels"] = Value::Object(labels.clone());
            create(d, ns, json!({"apiVersion": CAPI, "kind": "MachineSet",
                "metadata": {"name": format!("{md_name}-{suffix}"), "labels": labels,
                             "ownerReferences": [controller_ref(CAPI, "MachineDeployment", md)]},
                "spec": {"clusterName": cluster, "replicas": replicas, "selector": selector, "template": tmpl}})).await?
        }
    };
    let ms_name = ms.metadata.name.clone()?;
    let machines = api(d, CAPI, "Machine", Some(ns)).await?;
    let mut have = list(&machines, &format!("cluster.x-k8s.io/set-name={ms_name}"))
        .await
        .len() as i64;
    let spec = &ms.data["spec"]["template"]["spec"];
    while have < replicas {
        let mut labels = ms.data["spec"]["template"]["metadata"]["labels"].clone();
        labels["cluster.x-k8s.io/set-name"] = json!(ms_name);
        labels["cluster.x-k8s.io/deployment-name"] = json!(md_name);
        labels[CLUSTER_NAME] = json!(cluster);
        let name = format!("{ms_name}-{}", random_suffix());
        let owner = controller_ref(CAPI, "MachineSet", &ms);
        new_machine(d, ns, cluster, &name, labels, owner, &spec["version"]).await?;
        have += 1;
    }
    let cfg_tmpl = spec["bootstrap"]["configRef"]["name"].as_str()?;
    let kcts = api(d, CABPK, "KubeadmConfigTemplate", Some(ns)).await?;
    let bootstrap = kcts.get(cfg_tmpl).await.ok()?.data["spec"]["template"]["spec"].clone();
    for m in list(&machines, &format!("cluster.x-k8s.io/set-name={ms_name}")).await {
        machine_parts(
            d,
            ns,
            cluster,
            &m,
            &spec["infrastructureRef"],
            bootstrap.clone(),
        )
        .await?;
    }
    let status = |g: i64| {
        json!({"observedGeneration": g, "replicas": replicas, "readyReplicas": replicas,
            "availableReplicas": replicas, "updatedReplicas": replicas,
            "selector": format!("cluster.x-k8s.io/deployment-name={md_name}"),
            "conditions": v1beta1_conditions(&["Ready", "Available"]),
            "v1beta2": {"readyReplicas": replicas, "availableReplicas": replicas, "upToDateReplicas": replicas,
                "conditions": [condition("Available", g, "Available")]}})
    };
    let mut ms_status = status(ms.metadata.generation.unwrap_or(1));
    ms_status["fullyLabeledReplicas"] = json!(replicas);
    if let Some(m) = ms_status.as_object_mut() {
        m.remove("updatedReplicas");
    }
    set_status(&sets, &ms, ms_status).await;
    let current = mds.get(&md_name).await.ok()?;
    let mut s = status(current.metadata.generation.unwrap_or(1));
    s["phase"] = json!("Running");
    set_status(mds, &current, s).await;
    Some(())
}
