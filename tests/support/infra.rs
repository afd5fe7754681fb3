//! A test-only stand-in for what cannot run here: OpenStack, the CAPI/CAPO controllers that
//! would talk to it, and helm-controller rendering the openstack-cluster chart (no chart can be
//! fetched offline).
//!
//! It watches management clusters and, as those would:
//! - when the cluster's Flux HelmRelease appears on the FIRST cluster (the kind cluster), creates
//!   the objects the chart and the controllers make (Cluster, KubeadmControlPlane,
//!   OpenStackCluster, MachineDeployment/MachineSet/Machine, templates, the cluster's secrets,
//!   the Helm release secret) with `<cluster>-kubeconfig` pointing at the "new cluster";
//! - on every cluster, marks Flux HelmReleases Ready, Clusters Available and MachineDeployments
//!   ready (status only; it never writes spec);
//! - plays cert-manager's cainjector: fills in the `caBundle` of webhook configurations (no
//!   cert-manager pod runs on a kwok node).
//!
//! Everything else in the end-to-end test is real.

use std::time::Duration;

use ::kube::Api;
use ::kube::api::{DynamicObject, PostParams};
use base64::Engine;
use capi_manage::kube::Discovery;
use capi_manage::manifest::Gvk;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// What the stand-in builds.
#[derive(Clone)]
pub struct InfraOptions {
    /// The Cluster API namespace (capi-self).
    pub namespace: String,
    /// The cluster's name (= the chart's release name).
    pub cluster: String,
    /// The kubeconfig written to `<cluster>-kubeconfig`.
    pub kubeconfig: Vec<u8>,
    /// Worker replicas.
    pub workers: i64,
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
    /// Starts watching `first` (where the chart "installs") and `others`.
    pub fn start(first: Discovery, others: Vec<Discovery>, o: InfraOptions) -> Infra {
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        let task = tokio::spawn(async move {
            let mut built = false;
            while !c.is_cancelled() {
                if !built {
                    built = build_if_released(&first, &o).await.unwrap_or(false);
                }
                for d in std::iter::once(&first).chain(others.iter()) {
                    let _ = mark_ready(d, &o).await;
                    let _ = inject_ca(d).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Infra { cancel, task }
    }
}

async fn api(
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

const CAPI: &str = "cluster.x-k8s.io/v1beta2";
const CAPO: &str = "infrastructure.cluster.x-k8s.io/v1beta1";
const KCP: &str = "controlplane.cluster.x-k8s.io/v1beta2";
const CABPK: &str = "bootstrap.cluster.x-k8s.io/v1beta2";

/// Creates the chart's objects once the cluster's HelmRelease exists; true when done.
async fn build_if_released(d: &Discovery, o: &InfraOptions) -> Option<bool> {
    let ns = o.namespace.as_str();
    let hrs = api(d, "helm.toolkit.fluxcd.io/v2", "HelmRelease", Some(ns)).await?;
    let released = hrs
        .list(&Default::default())
        .await
        .ok()?
        .items
        .iter()
        .any(|h| h.data["spec"]["releaseName"] == o.cluster.as_str());
    if !released {
        return Some(false);
    }
    let clusters = api(d, CAPI, "Cluster", Some(ns)).await?;
    if clusters.get_opt(&o.cluster).await.ok()?.is_some() {
        return Some(true);
    }
    build_graph(d, o).await;
    Some(true)
}

async fn create(
    d: &Discovery,
    ns: &str,
    mut v: Value,
    owners: &[(&str, &str, &str, &str)],
) -> String {
    v["metadata"]["namespace"] = json!(ns);
    if !owners.is_empty() {
        v["metadata"]["ownerReferences"] = owners
            .iter()
            .map(|(av, k, n, u)| json!({"apiVersion": av, "kind": k, "name": n, "uid": u, "controller": true, "blockOwnerDeletion": true}))
            .collect();
    }
    let a = api(
        d,
        v["apiVersion"].as_str().unwrap(),
        v["kind"].as_str().unwrap(),
        Some(ns),
    )
    .await
    .unwrap_or_else(|| panic!("{} served", v["kind"]));
    let obj: DynamicObject = serde_json::from_value(v).unwrap();
    match a.create(&PostParams::default(), &obj).await {
        Ok(c) => c.metadata.uid.unwrap(),
        Err(::kube::Error::Api(e)) if e.code == 409 => a
            .get(obj.metadata.name.as_deref().unwrap())
            .await
            .unwrap()
            .metadata
            .uid
            .unwrap(),
        Err(e) => panic!("create {}: {e}", obj.metadata.name.unwrap_or_default()),
    }
}

/// The objects the openstack-cluster chart and the controllers make for one cluster.
pub async fn build_graph(d: &Discovery, o: &InfraOptions) {
    let (ns, name) = (o.namespace.as_str(), o.cluster.as_str());
    let cl = |extra: Value| {
        let mut labels =
            json!({"cluster.x-k8s.io/cluster-name": name, "app.kubernetes.io/managed-by": "Helm"});
        if let Value::Object(m) = extra {
            labels.as_object_mut().unwrap().extend(m);
        }
        labels
    };
    let iref = |kind: &str, n: &str| json!({"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": kind, "name": n});
    let cp_name = format!("{name}-control-plane");
    let c = create(d, ns, json!({"apiVersion": CAPI, "kind": "Cluster",
        "metadata": {"name": name, "labels": cl(json!({})), "annotations": {"meta.helm.sh/release-name": name}},
        "spec": {"clusterNetwork": {"pods": {"cidrBlocks": ["172.16.0.0/13"]}},
                 "controlPlaneRef": {"apiGroup": "controlplane.cluster.x-k8s.io", "kind": "KubeadmControlPlane", "name": cp_name},
                 "infrastructureRef": iref("OpenStackCluster", name)}}), &[]).await;
    let oc = [(CAPI, "Cluster", name, c.as_str())];
    create(d, ns, json!({"apiVersion": CAPO, "kind": "OpenStackCluster", "metadata": {"name": name, "labels": cl(json!({}))},
        "spec": {"identityRef": {"cloudName": "openstack", "name": format!("{name}-cloud-credentials")}}}), &oc).await;
    let cpt = format!("{name}-control-plane-1");
    create(d, ns, json!({"apiVersion": CAPO, "kind": "OpenStackMachineTemplate", "metadata": {"name": cpt, "labels": cl(json!({}))},
        "spec": {"template": {"spec": {"flavor": "m1.medium", "image": {"filter": {"name": "ubuntu-jammy-kube-v1.31.4"}}}}}}), &oc).await;
    let kcp = create(d, ns, json!({"apiVersion": KCP, "kind": "KubeadmControlPlane", "metadata": {"name": cp_name, "labels": cl(json!({}))},
        "spec": {"replicas": 1, "version": "v1.31.4", "machineTemplate": {"spec": {"infrastructureRef": iref("OpenStackMachineTemplate", &cpt)}}}}), &oc).await;
    let mdt = format!("{name}-md-0-1");
    create(d, ns, json!({"apiVersion": CAPO, "kind": "OpenStackMachineTemplate", "metadata": {"name": mdt, "labels": cl(json!({}))},
        "spec": {"template": {"spec": {"flavor": "m1.large", "image": {"filter": {"name": "ubuntu-jammy-kube-v1.31.4"}}}}}}), &oc).await;
    create(d, ns, json!({"apiVersion": CABPK, "kind": "KubeadmConfigTemplate", "metadata": {"name": mdt, "labels": cl(json!({}))},
        "spec": {"template": {"spec": {"joinConfiguration": {"nodeRegistration": {"name": "{{ local_hostname }}"}}}}}}), &oc).await;
    let md_name = format!("{name}-md-0");
    let sel = json!({"matchLabels": {"cluster.x-k8s.io/deployment-name": md_name}});
    let spec = |infra: Value, bootstrap: Value| json!({"clusterName": name, "version": "v1.31.4", "infrastructureRef": infra, "bootstrap": bootstrap});
    let tmpl_bootstrap = json!({"configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfigTemplate", "name": mdt}});
    let md = create(d, ns, json!({"apiVersion": CAPI, "kind": "MachineDeployment", "metadata": {"name": md_name, "labels": cl(json!({}))},
        "spec": {"clusterName": name, "replicas": o.workers, "selector": sel,
                 "template": {"metadata": {"labels": {"cluster.x-k8s.io/deployment-name": md_name}}, "spec": spec(iref("OpenStackMachineTemplate", &mdt), tmpl_bootstrap.clone())}}}), &oc).await;
    let ms_name = format!("{md_name}-7c9f8");
    let ms = create(d, ns, json!({"apiVersion": CAPI, "kind": "MachineSet", "metadata": {"name": ms_name, "labels": cl(json!({"cluster.x-k8s.io/deployment-name": md_name}))},
        "spec": {"clusterName": name, "replicas": o.workers, "selector": sel,
                 "template": {"metadata": {"labels": {"cluster.x-k8s.io/deployment-name": md_name}}, "spec": spec(iref("OpenStackMachineTemplate", &mdt), tmpl_bootstrap)}}}),
        &[(CAPI, "MachineDeployment", &md_name, md.as_str())]).await;
    for i in 0..o.workers {
        let m_name = format!("{ms_name}-w{i}");
        let m = create(d, ns, json!({"apiVersion": CAPI, "kind": "Machine", "metadata": {"name": m_name, "labels": cl(json!({"cluster.x-k8s.io/deployment-name": md_name}))},
            "spec": spec(iref("OpenStackMachine", &m_name), json!({"configRef": {"apiGroup": "bootstrap.cluster.x-k8s.io", "kind": "KubeadmConfig", "name": m_name}, "dataSecretName": m_name}))}),
            &[(CAPI, "MachineSet", &ms_name, ms.as_str())]).await;
        let om = [(CAPI, "Machine", m_name.as_str(), m.as_str())];
        create(d, ns, json!({"apiVersion": CAPO, "kind": "OpenStackMachine", "metadata": {"name": m_name, "labels": cl(json!({}))},
            "spec": {"flavor": "m1.large", "image": {"filter": {"name": "ubuntu-jammy-kube-v1.31.4"}}, "providerID": format!("openstack:///{i:08}")}}), &om).await;
        let kc = create(d, ns, json!({"apiVersion": CABPK, "kind": "KubeadmConfig", "metadata": {"name": m_name, "labels": cl(json!({}))},
            "spec": {"joinConfiguration": {"nodeRegistration": {"name": m_name}}}}), &om).await;
        create(
            d,
            ns,
            secret(
                &m_name,
                "cluster.x-k8s.io/secret",
                "value",
                b"#cloud-config\n",
                name,
            ),
            &[(CABPK, "KubeadmConfig", m_name.as_str(), kc.as_str())],
        )
        .await;
    }
    let okcp = [(KCP, "KubeadmControlPlane", cp_name.as_str(), kcp.as_str())];
    create(
        d,
        ns,
        secret(
            &format!("{name}-kubeconfig"),
            "cluster.x-k8s.io/secret",
            "value",
            &o.kubeconfig,
            name,
        ),
        &oc,
    )
    .await;
    for s in ["ca", "etcd", "sa", "proxy"] {
        create(
            d,
            ns,
            secret(
                &format!("{name}-{s}"),
                "cluster.x-k8s.io/secret",
                "tls.crt",
                b"stand-in",
                name,
            ),
            &okcp,
        )
        .await;
    }
    let mut release = secret(
        &format!("sh.helm.release.v1.{name}.v1"),
        "helm.sh/release.v1",
        "release",
        b"H4sIAAAA",
        name,
    );
    release["metadata"]["labels"] =
        json!({"owner": "helm", "name": name, "status": "deployed", "version": "1"});
    create(d, ns, release, &[]).await;
}

fn secret(name: &str, ty: &str, key: &str, value: &[u8], cluster: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "labels": {"cluster.x-k8s.io/cluster-name": cluster}},
        "type": ty, "data": {key: base64::engine::general_purpose::STANDARD.encode(value)}})
}

async fn set_status(a: &Api<DynamicObject>, o: &DynamicObject, status: Value) {
    let mut v = serde_json::to_value(o).unwrap();
    v["status"] = status;
    let _ = a
        .replace_status(
            o.metadata.name.as_deref().unwrap(),
            &PostParams::default(),
            &serde_json::from_value(v).unwrap(),
        )
        .await;
}

fn ready_condition(ty: &str, generation: i64, reason: &str) -> Value {
    json!({"type": ty, "status": "True", "reason": reason, "message": "stand-in", "observedGeneration": generation,
           "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

/// Marks HelmReleases, Clusters and MachineDeployments ready (status only).
async fn mark_ready(d: &Discovery, o: &InfraOptions) -> Option<()> {
    if let Some(a) = api(d, "helm.toolkit.fluxcd.io/v2", "HelmRelease", None).await {
        for h in a.list(&Default::default()).await.ok()?.items {
            let g = h.metadata.generation.unwrap_or(1);
            if capi_manage::capi::readiness::helm_release_ready(&serde_json::to_value(&h).unwrap())
            {
                continue;
            }
            if h.data["spec"]["suspend"] == true {
                continue;
            }
            let ns = h.metadata.namespace.clone().unwrap();
            let na: Api<DynamicObject> = Api::namespaced_with(
                d.client().clone(),
                &ns,
                &api_resource(d, "helm.toolkit.fluxcd.io/v2", "HelmRelease").await?,
            );
            set_status(&na, &h, json!({"observedGeneration": g, "conditions": [ready_condition("Ready", g, "InstallSucceeded")]})).await;
        }
    }
    let ns = o.namespace.as_str();
    if let Some(a) = api(d, CAPI, "Cluster", Some(ns)).await {
        for c in a.list(&Default::default()).await.ok()?.items {
            let v = serde_json::to_value(&c).unwrap();
            if capi_manage::capi::readiness::cluster_ready(&v) || v["spec"]["paused"] == true {
                continue;
            }
            let g = c.metadata.generation.unwrap_or(1);
            set_status(&a, &c, json!({"observedGeneration": g, "phase": "Provisioned",
                "initialization": {"infrastructureProvisioned": true, "controlPlaneInitialized": true},
                "conditions": [ready_condition("Available", g, "Available")]})).await;
        }
    }
    if let Some(a) = api(d, CAPI, "MachineDeployment", Some(ns)).await {
        for md in a.list(&Default::default()).await.ok()?.items {
            let v = serde_json::to_value(&md).unwrap();
            if capi_manage::capi::readiness::machine_deployment_ready(&v).0 {
                continue;
            }
            let g = md.metadata.generation.unwrap_or(1);
            let r = v["spec"]["replicas"].as_i64().unwrap_or(1);
            set_status(&a, &md, json!({"observedGeneration": g, "replicas": r, "readyReplicas": r, "availableReplicas": r, "upToDateReplicas": r})).await;
        }
    }
    Some(())
}

async fn api_resource(
    d: &Discovery,
    api_version: &str,
    kind: &str,
) -> Option<::kube::api::ApiResource> {
    Some(
        d.resolve(&Gvk::from_api_version(api_version, kind))
            .await
            .ok()??
            .api,
    )
}

/// Sets a `caBundle` on every service-backed webhook that lacks one, as cainjector would.
async fn inject_ca(d: &Discovery) -> Option<()> {
    let bundle = base64::engine::general_purpose::STANDARD.encode(b"stand-in CA bundle");
    for kind in [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ] {
        let a = api(d, "admissionregistration.k8s.io/v1", kind, None).await?;
        for w in a.list(&Default::default()).await.ok()?.items {
            let mut v = serde_json::to_value(&w).unwrap();
            let mut changed = false;
            for hook in v["webhooks"].as_array_mut().into_iter().flatten() {
                let cc = &mut hook["clientConfig"];
                if cc.get("service").is_some() && cc["caBundle"].as_str().is_none_or(str::is_empty)
                {
                    cc["caBundle"] = json!(bundle);
                    changed = true;
                }
            }
            if changed {
                let _ = a
                    .replace(
                        w.metadata.name.as_deref().unwrap(),
                        &PostParams::default(),
                        &serde_json::from_value(v).unwrap(),
                    )
                    .await;
            }
        }
    }
    Some(())
}
