//! `capi::cluster_status` and `flux::sync_status` on a real kube-apiserver holding the upstream
//! Cluster API and Flux CRDs, and `capi-manage status` printing them.

use std::path::Path;

use capi_manage::capi::readiness::ClusterRef;
use capi_manage::capi::{PAUSED_BY_MOVE, Paused, cluster_status};
use capi_manage::flux::{SyncObject, sync_status};
use capi_manage::kube::Discovery;
use capi_manage::manifest::Object;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

use crate::support::capi::{CAPI, api_in, apply_all, upstream_crds};
use crate::support::{ControlPlane, capi_manage, project_root};

const NS: &str = "capi-self";
const FLUX_NS: &str = "flux-system";
const REVISION: &str = "main@sha1:0123456789abcdef0123456789abcdef01234567";

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1})
}

/// Creates `o` in `ns`, then writes `status` through the status subresource, as a controller.
async fn create_with_status(d: &Discovery, ns: &str, o: Value, status: Value) {
    let a = api_in(
        d,
        o["apiVersion"].as_str().unwrap(),
        o["kind"].as_str().unwrap(),
        ns,
    )
    .await;
    let name = o["metadata"]["name"].as_str().unwrap().to_string();
    a.create(&Default::default(), &serde_json::from_value(o).unwrap())
        .await
        .unwrap();
    a.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .unwrap();
}

async fn flux_sync_objects(d: &Discovery) {
    create_with_status(
        d,
        FLUX_NS,
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
               "metadata": {"name": "flux-system"},
               "spec": {"interval": "1m", "url": "ssh://git@git.example.com/org/config.git", "ref": {"branch": "main"}}}),
        json!({"observedGeneration": 1,
               "artifact": {"path": "a.tar.gz", "url": "http://source/a.tar.gz", "revision": REVISION,
                            "digest": "sha256:00", "lastUpdateTime": "2026-01-01T00:00:00Z"},
               "conditions": [condition("Ready", "True", "Succeeded", "stored artifact")]}),
    )
    .await;
    create_with_status(
        d,
        FLUX_NS,
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
               "metadata": {"name": "flux-system"},
               "spec": {"interval": "10m", "path": "./clusters/example", "prune": true,
                        "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}}),
        json!({"observedGeneration": 1, "lastAppliedRevision": REVISION,
               "conditions": [condition("Ready", "False", "BuildFailed", "kustomize build failed")]}),
    )
    .await;
}

async fn paused_cluster(d: &Discovery, name: &str) {
    create_with_status(
        d,
        NS,
        json!({"apiVersion": CAPI, "kind": "Cluster",
               "metadata": {"name": name, "annotations": {PAUSED_BY_MOVE: "run-7"}},
               "spec": {"paused": true, "clusterNetwork": {"pods": {"cidrBlocks": ["172.16.0.0/13"]}}}}),
        json!({"phase": "Provisioned"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reads_the_clusters_pause_and_fluxs_sync() {
    let cp = ControlPlane::start().await;
    let d = Discovery::new(cp.client().await);

    // Without Flux: its kinds are not served, which is no error.
    let before = sync_status(&d, FLUX_NS).await.unwrap();
    assert_eq!(
        before
            .iter()
            .map(|k| (k.kind, k.served))
            .collect::<Vec<_>>(),
        [("GitRepository", false), ("Kustomization", false)]
    );

    let mut bundle = upstream_crds();
    for ns in [NS, FLUX_NS] {
        bundle.push(Object::new(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        ));
    }
    apply_all(&d, &bundle).await;
    flux_sync_objects(&d).await;
    paused_cluster(&d, "example").await;

    let sync = sync_status(&d, FLUX_NS).await.unwrap();
    assert!(sync.iter().all(|k| k.served));
    assert_eq!(
        sync[0].objects,
        [SyncObject {
            name: "flux-system".into(),
            conditions: "Ready=True (Succeeded: stored artifact)".into(),
            revision: Some(REVISION.into()),
            ready: true,
            branch: Some("main".into()),
        }]
    );
    assert_eq!(
        sync[1].objects[0].conditions,
        "Ready=False (BuildFailed: kustomize build failed)"
    );
    assert_eq!(sync[1].objects[0].revision.as_deref(), Some(REVISION));

    let cluster = ClusterRef {
        namespace: NS.into(),
        name: "example".into(),
        helm_releases: Vec::new(),
    };
    let s = cluster_status(&d, &cluster).await.unwrap();
    assert!(!s.readiness.ready, "{:?}", s.readiness.parts);
    assert_eq!(
        s.paused,
        Some(Paused {
            by_move: Some("run-7".into())
        })
    );

    // The binary prints the same, from the cluster's kubeconfig in the config repository.
    let repo = tempfile::tempdir().unwrap();
    for d in ["clusters/bases", "clusters/example"] {
        copy_dir(&project_root().join(d), &repo.path().join(d));
    }
    std::fs::create_dir_all(repo.path().join("vendor-manifests")).unwrap();
    std::fs::copy(
        cp.kubeconfig_path(),
        repo.path().join("clusters/example/kubeconfig"),
    )
    .unwrap();
    let out = capi_manage()
        .args(["status", "example", "--repo"])
        .arg(repo.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Not ready (paused, the Kustomization failing): 4, and the last line says why.
    assert_eq!(out.status.code(), Some(4), "{stdout}{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: cluster example is not ready: Cluster capi-self/example: no condition reported yet; paused (spec.paused)")
            && last.contains("Flux Kustomization flux-system: not Ready"),
        "{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "cluster example: not ready", "{stdout}");
    assert!(
        lines[1].starts_with("NAME ") && lines[2] == "Cluster capi-self/example",
        "{stdout}"
    );
    // No git remote in this copy: the head is unknown, only readiness is judged.
    assert!(stdout.contains("flux: branch head unknown ("), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "  GitRepository flux-system: Ready=True (Succeeded: stored artifact) (revision {REVISION}): in sync"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("  Kustomization flux-system: Ready=False (BuildFailed: kustomize build failed) (revision ")
            && stdout.contains("): drift: not Ready"),
        "{stdout}"
    );
    let out = capi_manage()
        .args(["status", "example", "-o", "json", "--repo"])
        .arg(repo.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["ready"], false);
    assert_eq!(j["describe"]["tree"]["paused"], true);
    assert_eq!(j["flux"]["objects"][1]["drift"], "not Ready");
    assert!(stderr.contains("a move (run run-7) paused it"), "{stderr}");

    // Unpaused: no pause reported.
    api_in(&d, CAPI, "Cluster", NS)
        .await
        .patch(
            "example",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": false}})),
        )
        .await
        .unwrap();
    assert_eq!(cluster_status(&d, &cluster).await.unwrap().paused, None);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
