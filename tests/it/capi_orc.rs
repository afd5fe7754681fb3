//! ORC objects move with their cluster, and back: two real kube-apiservers with the Cluster API
//! and CAPO CRDs (upstream fixtures) and ORC's CRDs from its v2.6.0 release `install.yaml`.
//!
//! ORC's controller cannot run here (it needs an OpenStack cloud). In its place, on each side, a
//! stand-in does only the two things of ORC's contract that matter to a move: it puts ORC's
//! finalizer back on an Image that lost it (as ORC does when it reconciles), and it records
//! every moment an Image being deleted holds ORC's finalizer and no other — the state in which
//! ORC deletes the image in the cloud. A move must never produce that state.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::kube::Api;
use ::kube::api::{DynamicObject, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use capi_manage::capi::orc::MOVE_GUARD_FINALIZER;
use capi_manage::capi::{MoveOptions, move_objects, plan};
use capi_manage::kube::{ApplyOptions, Discovery, apply};
use capi_manage::manifest::{Object, parse_file};
use capi_manage::observe::Silent;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::ControlPlane;
use crate::support::capi::{CAPI, CAPO, NS, api, cluster_graph, create, upstream_crds};

const ORC: &str = "openstack.k-orc.cloud/v1alpha1";
const ORC_FINALIZER: &str = "openstack.k-orc.cloud/image";

/// ORC's CRDs, exactly as its v2.6.0 release installs them.
fn orc_crds() -> Vec<Object> {
    let file = crate::support::fixtures()
        .join("releases/openstack-resource-controller-v2.6.0/dist/install.yaml");
    let crds: Vec<Object> = parse_file(&file)
        .unwrap()
        .into_iter()
        .filter(|o| o.kind() == "CustomResourceDefinition")
        .collect();
    assert!(
        crds.iter()
            .any(|c| c.name() == "images.openstack.k-orc.cloud"),
        "{} has ORC's Image CRD",
        file.display()
    );
    crds
}

/// A management cluster with the CAPI, CAPO and ORC CRDs and the namespace.
async fn management_cluster() -> (ControlPlane, Discovery) {
    let cp = ControlPlane::start().await;
    let d = Discovery::new(cp.client().await);
    let mut bundle = upstream_crds();
    bundle.extend(orc_crds());
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

/// A managed ORC Image as ORC leaves it once uploaded: its finalizer and an Available status.
async fn image(d: &Discovery, name: &str, id: &str) {
    let now = "2026-01-01T00:00:00Z";
    create(
        d,
        json!({"apiVersion": ORC, "kind": "Image",
            "metadata": {"name": name, "finalizers": [ORC_FINALIZER]},
            "spec": {"cloudCredentialsRef": {"cloudName": "openstack", "secretName": "demo-cloud-credentials"},
                     "managementPolicy": "managed",
                     "resource": {"name": name, "content": {"diskFormat": "qcow2",
                         "download": {"url": format!("https://images.example.com/{name}.qcow2")}}}}}),
        &[],
        Some(json!({"id": id, "downloadAttempts": 1,
            "resource": {"name": name, "status": "active", "protected": false, "visibility": "private"},
            "conditions": [
                {"type": "Available", "status": "True", "reason": "Success", "message": "OpenStack resource is available", "lastTransitionTime": now, "observedGeneration": 1},
                {"type": "Progressing", "status": "False", "reason": "Success", "message": "OpenStack resource is up to date", "lastTransitionTime": now, "observedGeneration": 1}]})),
    )
    .await;
}

/// An OpenStackMachineTemplate of Cluster `cluster` whose machines boot the ORC Image `image`.
async fn template_using(d: &Discovery, cluster: &str, image: &str) {
    let c = api(d, CAPI, "Cluster").await.get(cluster).await.unwrap();
    let uid = c.metadata.uid.unwrap();
    create(
        d,
        json!({"apiVersion": CAPO, "kind": "OpenStackMachineTemplate", "metadata": {"name": format!("{cluster}-orc-1")},
            "spec": {"template": {"spec": {"flavor": "m1.large", "image": {"imageRef": {"name": image}}}}}}),
        &[("Cluster", cluster, uid.as_str(), CAPI)],
        None,
    )
    .await;
}

/// ORC's part, played on one cluster until dropped (see the module's documentation).
struct OrcStandIn {
    /// Images that were, at some moment, being deleted with only ORC's finalizer.
    cloud_deletions: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl OrcStandIn {
    async fn start(d: &Discovery) -> OrcStandIn {
        let images = api(d, ORC, "Image").await;
        let cloud_deletions = Arc::new(Mutex::new(Vec::new()));
        let list = images.list(&ListParams::default()).await.unwrap();
        let version = list.metadata.resource_version.unwrap();
        let seen = cloud_deletions.clone();
        let task = tokio::spawn(async move {
            let mut version = version;
            loop {
                let Ok(events) = images
                    .watch(&WatchParams::default().timeout(60), &version)
                    .await
                else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let mut events = events.boxed();
                while let Some(event) = events.next().await {
                    let o = match event {
                        Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)) => o,
                        Ok(WatchEvent::Deleted(o)) => {
                            version = o.metadata.resource_version.clone().unwrap();
                            continue;
                        }
                        _ => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    version = o.metadata.resource_version.clone().unwrap();
                    react(&images, &o, &seen).await;
                }
            }
        });
        OrcStandIn {
            cloud_deletions,
            task,
        }
    }

    fn cloud_deletions(&self) -> Vec<String> {
        self.cloud_deletions.lock().unwrap().clone()
    }
}

impl Drop for OrcStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn react(images: &Api<DynamicObject>, o: &DynamicObject, seen: &Mutex<Vec<String>>) {
    let name = o.metadata.name.clone().unwrap();
    let finalizers = o.metadata.finalizers.clone().unwrap_or_default();
    if o.metadata.deletion_timestamp.is_some() {
        if finalizers == [ORC_FINALIZER] {
            seen.lock().unwrap().push(name);
        }
        return;
    }
    if !finalizers.iter().any(|f| f == ORC_FINALIZER) {
        // As ORC: server-side apply of its finalizer, guarded by the object's UID. It fails,
        // harmlessly, once the object is being deleted or gone.
        let body = json!({"apiVersion": ORC, "kind": "Image",
            "metadata": {"name": name, "namespace": NS, "uid": o.metadata.uid, "finalizers": [ORC_FINALIZER]}});
        let _ = images
            .patch(
                &name,
                &PatchParams::apply("openstack.k-orc.cloud/image/finalizer").force(),
                &Patch::Apply(body),
            )
            .await;
    }
}

async fn get_image(d: &Discovery, name: &str) -> Option<Value> {
    api(d, ORC, "Image")
        .await
        .get_opt(name)
        .await
        .unwrap()
        .map(|o| serde_json::to_value(o).unwrap())
}

async fn move_all(from: &Discovery, to: &Discovery) -> capi_manage::capi::MoveReport {
    move_objects(
        from,
        to,
        &MoveOptions {
            delete_source: true,
            ..MoveOptions::new(NS)
        },
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

/// Images that should be deleted on `d` are gone within a few seconds (deletion is
/// asynchronous only through finalizers, which the move removes).
async fn assert_gone(d: &Discovery, names: &[&str]) {
    for _ in 0..50 {
        let mut left = Vec::new();
        for n in names {
            if get_image(d, n).await.is_some() {
                left.push(*n);
            }
        }
        if left.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("Images {names:?} are still on the cluster they moved from");
}

#[tokio::test]
async fn orc_images_move_with_their_cluster_and_back_without_deleting_the_cloud_image() {
    let ((_a, src), (_b, dst)) = tokio::join!(management_cluster(), management_cluster());
    let orc_src = OrcStandIn::start(&src).await;
    let orc_dst = OrcStandIn::start(&dst).await;
    for cluster in ["demo", "other"] {
        cluster_graph(&src, cluster).await;
        image(
            &src,
            &format!("{cluster}-image"),
            &format!("{cluster}-0a1b"),
        )
        .await;
        template_using(&src, cluster, &format!("{cluster}-image")).await;
    }
    // An Image no cluster uses.
    image(&src, "spare-image", "spare-0a1b").await;
    let before: Vec<Value> = {
        let mut v = Vec::new();
        for n in ["demo-image", "other-image"] {
            v.push(get_image(&src, n).await.unwrap());
        }
        v
    };

    // The plan names the Images that move and the one that stays, with the reason.
    let planned = plan(&src, NS).await.unwrap();
    let moved: Vec<String> = planned
        .moved()
        .filter(|r| r.kind == "Image")
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(moved.len(), 2, "{moved:?}");
    assert!(
        moved.contains(&"demo-image".to_string()) && moved.contains(&"other-image".to_string())
    );
    let stays = planned
        .skipped
        .iter()
        .find(|s| s.object.kind == "Image")
        .expect("the unused Image is reported");
    assert_eq!(stays.object.name, "spare-image");
    assert!(
        stays.reason.contains("no moved object needs"),
        "{}",
        stays.reason
    );

    move_all(&src, &dst).await;
    for (n, old) in ["demo-image", "other-image"].iter().zip(&before) {
        let new = get_image(&dst, n)
            .await
            .unwrap_or_else(|| panic!("{n} on the target"));
        assert_eq!(new["spec"], old["spec"], "{n}: spec");
        assert_eq!(new["status"], old["status"], "{n}: status restored");
        assert!(
            new["metadata"]["finalizers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == ORC_FINALIZER),
            "{n}: the target's ORC keeps managing it: {}",
            new["metadata"]
        );
    }
    // The template still names the moved Image, on the target.
    let t = api(&dst, CAPO, "OpenStackMachineTemplate")
        .await
        .get("demo-orc-1")
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&t).unwrap()["spec"]["template"]["spec"]["image"]["imageRef"]["name"],
        "demo-image"
    );
    // Give the stand-ins a moment to see the last events.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        orc_src.cloud_deletions(),
        Vec::<String>::new(),
        "ORC would have deleted these images in the cloud"
    );
    assert_gone(&src, &["demo-image", "other-image"]).await;
    // The unused Image stayed, untouched, where it was managed.
    let spare = get_image(&src, "spare-image")
        .await
        .expect("spare-image stays");
    assert!(spare["metadata"]["deletionTimestamp"].is_null());
    assert!(get_image(&dst, "spare-image").await.is_none());

    // And back, as a teardown moves them.
    move_all(&dst, &src).await;
    for (n, old) in ["demo-image", "other-image"].iter().zip(&before) {
        let back = get_image(&src, n)
            .await
            .unwrap_or_else(|| panic!("{n} back on the source"));
        assert_eq!(back["spec"], old["spec"], "{n}: spec");
        assert_eq!(back["status"], old["status"], "{n}: status");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(orc_dst.cloud_deletions(), Vec::<String>::new());
    assert_eq!(orc_src.cloud_deletions(), Vec::<String>::new());
    assert_gone(&dst, &["demo-image", "other-image"]).await;

    // A move stopped between deleting a source copy and releasing it leaves the copy held by
    // the guard finalizer. Two such leftovers on the (now) source side `dst`: one whose copy is
    // on the target, one without.
    for name in ["interrupted", "uncopied"] {
        image(&dst, name, &format!("{name}-0a1b")).await;
        api(&dst, ORC, "Image")
            .await
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"finalizers": [MOVE_GUARD_FINALIZER, ORC_FINALIZER]}}),
                ),
            )
            .await
            .unwrap();
        api(&dst, ORC, "Image")
            .await
            .delete(name, &Default::default())
            .await
            .unwrap();
    }
    image(&src, "interrupted", "interrupted-0a1b").await;
    let report = move_all(&dst, &src).await;
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.object.name == "interrupted" && s.reason.contains("earlier move")),
        "{:?}",
        report.skipped
    );
    assert_gone(&dst, &["interrupted"]).await;
    let uncopied = get_image(&dst, "uncopied")
        .await
        .expect("kept: no copy on the target");
    assert!(uncopied["metadata"]["deletionTimestamp"].is_string());
    assert!(get_image(&src, "interrupted").await.is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(orc_dst.cloud_deletions(), Vec::<String>::new());
}

/// The stand-in does see the dangerous state: deleting an Image the way the CAPI objects'
/// source copies are deleted (finalizers removed, then delete) while ORC puts its finalizer
/// back is exactly what ORC turns into a cloud deletion.
#[tokio::test]
async fn the_stand_in_sees_a_deletion_that_orc_would_carry_out() {
    let (_a, d) = management_cluster().await;
    let orc = OrcStandIn::start(&d).await;
    image(&d, "doomed", "doomed-0a1b").await;
    let images = api(&d, ORC, "Image").await;
    images.delete("doomed", &Default::default()).await.unwrap();
    for _ in 0..50 {
        if !orc.cloud_deletions().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(orc.cloud_deletions(), ["doomed"]);
    // Clean up: nothing runs ORC's cleanup here.
    images
        .patch(
            "doomed",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
}
