//! The stand-in's Machines: what the KubeadmControlPlane, MachineDeployment/MachineSet, Machine
//! and kubeadm bootstrap controllers make of them, the kwok Node a booted server's kubelet
//! would register, and the Machine controller's deletion. CAPO (real) creates each Machine's
//! server from its OpenStackMachine; the stand-in only reads what CAPO reports.

use ::kube::Api;
use ::kube::api::{DynamicObject, Patch, PatchParams};
use capi_manage::kube::Discovery;
use serde_json::{Value, json};

use super::{
    CABPK, CAPI, CAPO, CLUSTER_NAME, Ctx, KCP, MACHINE_FINALIZER, api, condition, controller_ref,
    create, delete_and_check, list, random_suffix, remove_finalizer, secret, set_status,
    v1beta1_conditions,
};

/// The KubeadmControlPlane's secrets and Machines: once the infrastructure is ready (KCP
/// waits for it), one Machine, and each further one once all before it are ready (KCP scales up
/// one at a time after its health checks). Returns (initialized, all replicas ready).
pub(super) async fn control_plane(
    d: &Discovery,
    o: &Ctx,
    cluster: &str,
    kcps: &Api<DynamicObject>,
    kcp: &DynamicObject,
    infra_ready: bool,
    busy: &mut bool,
) -> Option<(bool, bool)> {
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
        create(d, ns, s).await?;
    }
    let mut kc = secret(
        &format!("{cluster}-kubeconfig"),
        "cluster.x-k8s.io/secret",
        &[("value", &o.kubeconfig)],
        cluster,
    );
    kc["metadata"]["ownerReferences"] = json!([owner]);
    create(d, ns, kc).await?;
    if !infra_ready {
        return Some((false, false));
    }

    let replicas = kcp.data["spec"]["replicas"].as_i64().unwrap_or(1);
    let version = kcp.data["spec"]["version"].clone();
    let machines = api(d, CAPI, "Machine", Some(ns)).await?;
    let selector =
        format!("{CLUSTER_NAME}={cluster},cluster.x-k8s.io/control-plane-name={kcp_name}");
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
    let mut ready = 0;
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
        if machine_parts(d, o, cluster, m, &infra_tmpl, config, true, busy).await? {
            ready += 1;
        }
    }
    let have = cp_machines.len() as i64;
    if have < replicas && ready == have {
        let labels = json!({CLUSTER_NAME: cluster, "cluster.x-k8s.io/control-plane": "",
                            "cluster.x-k8s.io/control-plane-name": kcp_name});
        let name = format!("{kcp_name}-{}", random_suffix());
        new_machine(d, ns, cluster, &name, labels, owner.clone(), &version).await?;
    }
    let g = kcp.metadata.generation.unwrap_or(1);
    let current = kcps.get(&kcp_name).await.ok()?;
    let all = ready >= replicas;
    let (mut old, mut new) = (vec!["MachinesCreated"], Vec::new());
    if ready > 0 {
        new.push(condition("Initialized", g, "Initialized"));
    }
    if all {
        old.extend(["Ready", "Available", "MachinesReady"]);
        new.push(condition("Available", g, "Available"));
    }
    set_status(
        kcps,
        &current,
        json!({"observedGeneration": g, "selector": selector, "replicas": replicas,
            "readyReplicas": ready, "updatedReplicas": replicas, "unavailableReplicas": replicas - ready,
            "version": version, "initialized": ready > 0, "ready": all,
            "conditions": v1beta1_conditions(&old),
            "v1beta2": {"readyReplicas": ready, "availableReplicas": ready, "upToDateReplicas": replicas,
                "conditions": new}}),
    )
    .await;
    Some((ready > 0, all))
}

/// A Machine as its owner (KubeadmControlPlane or MachineSet) creates it, with the Machine
/// controller's finalizer.
async fn new_machine(
    d: &Discovery,
    ns: &str,
    cluster: &str,
    name: &str,
    labels: Value,
    owner: Value,
    version: &Value,
) -> Option<DynamicObject> {
    create(d, ns, json!({"apiVersion": CAPI, "kind": "Machine",
        "metadata": {"name": name, "labels": labels, "ownerReferences": [owner],
                     "finalizers": [MACHINE_FINALIZER]},
        "spec": {"clusterName": cluster, "version": version,
            "infrastructureRef": {"apiVersion": CAPO, "kind": "OpenStackMachine", "name": name, "namespace": ns},
            "bootstrap": {"configRef": {"apiVersion": CABPK, "kind": "KubeadmConfig", "name": name, "namespace": ns}}}})).await
}

/// A Machine's OpenStackMachine (cloned from `infra_template`'s `spec.template.spec`),
/// KubeadmConfig (`bootstrap_spec`), owned as they are once the Machine controller has adopted
/// them; the bootstrap data Secret once `can_bootstrap` (CABPK makes a joining node's data only
/// once the control plane is initialized) and no other server of the cluster is being built
/// (`busy`), its name copied into the Machine; once CAPO reports the server ready, the
/// Machine's providerID, its Node and status. True when it is running.
///
/// One build at a time: the loopback Nova keeps its databases in sqlite and, under concurrent
/// builds, loses one now and then to `database is locked` (the server stays in BUILD for ever).
#[allow(clippy::too_many_arguments)]
async fn machine_parts(
    d: &Discovery,
    o: &Ctx,
    cluster: &str,
    m: &DynamicObject,
    infra_template: &Value,
    bootstrap_spec: Value,
    can_bootstrap: bool,
    busy: &mut bool,
) -> Option<bool> {
    let ns = o.namespace.as_str();
    let name = m.metadata.name.as_deref()?;
    let by_machine = controller_ref(CAPI, "Machine", m);
    let osms = api(d, CAPO, "OpenStackMachine", Some(ns)).await?;
    let osm = match osms.get_opt(name).await.ok()? {
        Some(osm) => osm,
        None => {
            let tmpl_name = infra_template["name"].as_str()?;
            let templates = api(d, CAPO, "OpenStackMachineTemplate", Some(ns)).await?;
            let tmpl = templates.get(tmpl_name).await.ok()?;
            let spec = tmpl.data["spec"]["template"]["spec"].clone();
            create(d, ns, json!({"apiVersion": CAPO, "kind": "OpenStackMachine",
                "metadata": {"name": name, "labels": labels_of(m), "ownerReferences": [by_machine],
                    "annotations": {"cluster.x-k8s.io/cloned-from-name": tmpl_name,
                                    "cluster.x-k8s.io/cloned-from-groupkind": "OpenStackMachineTemplate.infrastructure.cluster.x-k8s.io"}},
                "spec": spec})).await?
        }
    };
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
    let machines = api(d, CAPI, "Machine", Some(ns)).await?;
    let g = m.metadata.generation.unwrap_or(1);
    let has_data = m.data["spec"]["bootstrap"]["dataSecretName"].is_string();
    if !has_data && (!can_bootstrap || *busy) {
        set_status(
            &machines,
            m,
            json!({"phase": "Pending", "observedGeneration": g,
            "bootstrapReady": false, "infrastructureReady": false}),
        )
        .await;
        return Some(false);
    }
    if !has_data {
        *busy = true;
    }
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

    if m.data["spec"]["bootstrap"]["dataSecretName"] != name {
        machines
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"bootstrap": {"dataSecretName": name}}})),
            )
            .await
            .ok()?;
    }
    // What CAPO reports for the server.
    let provider_id = osm.data["spec"]["providerID"].as_str().unwrap_or_default();
    let infra_ready = osm.data["status"]["ready"] == true
        || osm.data["status"]["initialization"]["provisioned"] == true;
    if provider_id.is_empty() || !infra_ready {
        set_status(
            &machines,
            m,
            json!({"phase": "Provisioning", "observedGeneration": g,
            "bootstrapReady": true, "infrastructureReady": false,
            "conditions": v1beta1_conditions(&["BootstrapReady"]),
            "v1beta2": {"conditions": [condition("BootstrapConfigReady", g, "Ready")]}}),
        )
        .await;
        return Some(false);
    }
    if m.data["spec"]["providerID"] != provider_id {
        machines
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"providerID": provider_id}})),
            )
            .await
            .ok()?;
    }
    // The booted server's kubelet registers its Node; kwok keeps it Ready.
    let node_name = match &o.workload {
        Some(w) => node(w, name, provider_id).await?,
        None => m.data["status"]["nodeRef"]["name"].as_str()?.to_string(),
    };
    let m = machines.get(name).await.ok()?;
    set_status(&machines, &m, json!({"phase": "Running", "observedGeneration": g,
        "nodeRef": {"apiVersion": "v1", "kind": "Node", "name": node_name},
        "addresses": osm.data["status"]["addresses"],
        "bootstrapReady": true, "infrastructureReady": true,
        "conditions": v1beta1_conditions(&["Ready", "BootstrapReady", "InfrastructureReady", "NodeHealthy"]),
        "v1beta2": {"conditions": [condition("Ready", g, "Ready"), condition("Available", g, "Available"),
                                   condition("NodeHealthy", g, "NodeHealthy")]}})).await;
    Some(true)
}

/// The kwok Node of the server `provider_id` in the workload cluster (named as the server);
/// its name.
async fn node(w: &Discovery, name: &str, provider_id: &str) -> Option<String> {
    let nodes = api(w, "v1", "Node", None).await?;
    if nodes.get_opt(name).await.ok()?.is_none() {
        let node: DynamicObject =
            serde_json::from_value(json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name,
                "labels": {"type": "kwok", "kubernetes.io/hostname": name,
                           "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"providerID": provider_id}}))
            .ok()?;
        nodes.create(&Default::default(), &node).await.ok()?;
    }
    Some(name.to_string())
}

/// The Machine controller's deletion: the OpenStackMachine first (CAPO deletes the server),
/// then the Node, then the finalizer.
/// Whether a server of the cluster is being built: a Machine has its bootstrap data and no
/// providerID yet.
pub(super) async fn building(d: &Discovery, ns: &str, cluster: &str) -> Option<bool> {
    let machines = api(d, CAPI, "Machine", Some(ns)).await?;
    Some(
        list(&machines, &format!("{CLUSTER_NAME}={cluster}"))
            .await
            .iter()
            .any(|m| {
                m.data["spec"]["bootstrap"]["dataSecretName"].is_string()
                    && m.data["spec"]["providerID"]
                        .as_str()
                        .is_none_or(str::is_empty)
            }),
    )
}

pub(super) async fn machine_deleted(
    d: &Discovery,
    o: &Ctx,
    machines: &Api<DynamicObject>,
    m: &DynamicObject,
) -> Option<()> {
    let name = m.metadata.name.as_deref()?;
    let osms = api(d, CAPO, "OpenStackMachine", Some(&o.namespace)).await?;
    let infra = m.data["spec"]["infrastructureRef"]["name"]
        .as_str()
        .unwrap_or(name);
    if !delete_and_check(&osms, infra).await {
        return Some(());
    }
    if let (Some(w), Some(node)) = (&o.workload, m.data["status"]["nodeRef"]["name"].as_str()) {
        let nodes = api(w, "v1", "Node", None).await?;
        if !delete_and_check(&nodes, node).await {
            return Some(());
        }
    }
    remove_finalizer(machines, m, MACHINE_FINALIZER).await;
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

/// A MachineDeployment's MachineSet and Machines (bootstrapped once the control plane is
/// initialized), then both statuses; true when all its replicas are ready.
pub(super) async fn machine_deployment(
    d: &Discovery,
    o: &Ctx,
    cluster: &str,
    mds: &Api<DynamicObject>,
    md: &DynamicObject,
    cp_initialized: bool,
    busy: &mut bool,
) -> Option<bool> {
    let ns = o.namespace.as_str();
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
    let mut ready = 0;
    for m in list(&machines, &format!("cluster.x-k8s.io/set-name={ms_name}")).await {
        let infra = &spec["infrastructureRef"];
        if machine_parts(
            d,
            o,
            cluster,
            &m,
            infra,
            bootstrap.clone(),
            cp_initialized,
            busy,
        )
        .await?
        {
            ready += 1;
        }
    }
    let all = ready >= replicas;
    let status = |g: i64| {
        json!({"observedGeneration": g, "replicas": replicas, "readyReplicas": ready,
            "availableReplicas": ready, "updatedReplicas": replicas,
            "selector": format!("cluster.x-k8s.io/deployment-name={md_name}"),
            "conditions": v1beta1_conditions(if all { &["Ready", "Available"] } else { &[] }),
            "v1beta2": {"readyReplicas": ready, "availableReplicas": ready, "upToDateReplicas": replicas,
                "conditions": if all { json!([condition("Available", g, "Available")]) } else { json!([]) }}})
    };
    let mut ms_status = status(ms.metadata.generation.unwrap_or(1));
    ms_status["fullyLabeledReplicas"] = json!(replicas);
    if let Some(m) = ms_status.as_object_mut() {
        m.remove("updatedReplicas");
    }
    set_status(&sets, &ms, ms_status).await;
    let current = mds.get(&md_name).await.ok()?;
    let mut s = status(current.metadata.generation.unwrap_or(1));
    s["phase"] = json!(if all { "Running" } else { "ScalingUp" });
    set_status(mds, &current, s).await;
    Some(all)
}
