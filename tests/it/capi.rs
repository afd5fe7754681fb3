//! `capi_manage::capi` moves between real kube-apiservers holding the real release components of
//! Cluster API, ORC and CAPO (built from upstream's release sources, installed through
//! capi-manage's vendor and apply) with their webhooks served by the real managers, plus the
//! Flux and sealed-secrets CRDs.

use std::collections::BTreeMap;

use capi_manage::capi::{Error as MoveError, MoveOptions, move_objects, plan};
use capi_manage::kube::{ApplyOptions, Discovery, apply};
use capi_manage::manifest::Object;
use capi_manage::observe::Silent;
use kube::api::{Api, DynamicObject};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::ControlPlane;
use crate::support::capi::{
    CAPI, CAPO, MOVED_KINDS, NS, api, clusterctl_management_cluster, demo_graph,
    management_cluster, mark_provisioned_for_clusterctl, snapshot,
};

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

/// Runs the capi-manage binary in `cwd` off the async runtime.
async fn capi_manage_in(cwd: &std::path::Path, args: Vec<String>) -> std::process::Output {
    let cwd = cwd.to_path_buf();
    tokio::task::spawn_blocking(move || {
        crate::support::capi_manage()
            .args(&args)
            .current_dir(cwd)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn cli_journals_next_to_the_cluster_config_by_default() {
    let ((src_cp, src), (dst_cp, dst)) = tokio::join!(management_cluster(), management_cluster());
    demo_graph(&src).await;
    let repo = tempfile::tempdir().unwrap();
    let cluster_dir = repo.path().join("clusters/prod");
    std::fs::create_dir_all(&cluster_dir).unwrap();
    std::fs::write(cluster_dir.join("kustomization.yaml"), "resources: []\n").unwrap();
    let journal = cluster_dir.join(".capi-manage/move-journal.json");
    let args: Vec<String> = [
        "move",
        "--cluster",
        "prod",
        "--from-kubeconfig",
        src_cp.kubeconfig_path().to_str().unwrap(),
        "--to-kubeconfig",
        dst_cp.kubeconfig_path().to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();

    // A failure half-way leaves the journal where the cluster's config is, private.
    inject_write_failure(&dst, "Machine", "demo-md-0-abcde-x1").await;
    let out = capi_manage_in(&cluster_dir, args.clone()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Machine capi-self/demo-md-0-abcde-x1"),
        "{stderr}"
    );
    let recorded: capi_manage::capi::Journal =
        serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    assert!(!recorded.copied.is_empty(), "{recorded:?}");
    assert_eq!(mode(journal.parent().unwrap()), 0o700);
    assert_eq!(mode(&journal), 0o600);
    assert_source_restored(&src, "after the failed CLI move").await;

    // The re-run (from the repository root this time) resumes through the same journal.
    remove_write_failure(&dst).await;
    let out = capi_manage_in(repo.path(), args.clone()).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!journal.exists(), "a finished move removes its journal");
    assert_eq!(
        snapshot(&dst).await.keys().collect::<Vec<_>>(),
        snapshot(&src).await.keys().collect::<Vec<_>>()
    );

    // Outside a config repository --cluster is a one-line error naming the problem.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = capi_manage_in(elsewhere.path(), args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("not inside a config repository"),
        "{stderr}"
    );
}

/// The objects of a snapshot without what each API server assigns (UIDs, versions, times),
/// owner references identified by kind and name.
fn normalized(snapshot: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    snapshot
        .iter()
        .map(|(k, v)| {
            let mut v = v.clone();
            let md = v["metadata"].as_object_mut().unwrap();
            for f in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "managedFields",
                "generation",
            ] {
                md.remove(f);
            }
            if let Some(owners) = md.get_mut("ownerReferences").and_then(Value::as_array_mut) {
                for o in owners {
                    o.as_object_mut().unwrap().remove("uid");
                }
            }
            (k.clone(), v)
        })
        .collect()
}

/// Every owner reference on `d` points at the UID of the object of that kind and name there.
fn assert_owner_uids_resolve(snapshot: &BTreeMap<String, Value>, what: &str) {
    for (key, o) in snapshot {
        for r in o["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let owner = format!(
                "{}/{}",
                r["kind"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            );
            let Some(found) = snapshot.get(&owner) else {
                continue; // an owner of a kind the snapshot does not list
            };
            assert_eq!(
                found["metadata"]["uid"], r["uid"],
                "{what}: {key} -> {owner}"
            );
        }
    }
}

#[tokio::test]
async fn backup_to_a_directory_and_restore_lands_what_a_direct_move_lands() {
    let ((src_cp, src), (b_cp, b), (_c_cp, c)) = tokio::join!(
        management_cluster(),
        management_cluster(),
        management_cluster()
    );
    demo_graph(&src).await;
    let before = snapshot(&src).await;
    let backup_dir = src_cp.dir().join("backup");

    let out = capi_manage_in(
        src_cp.dir(),
        [
            "move",
            "--from-kubeconfig",
            src_cp.kubeconfig_path().to_str().unwrap(),
            "--to-directory",
            backup_dir.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One private file per object, named as clusterctl names them, in a private directory.
    assert_eq!(mode(&backup_dir), 0o700);
    let mut files: Vec<String> = std::fs::read_dir(&backup_dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            assert_eq!(mode(&e.path()), 0o600, "{}", e.path().display());
            e.file_name().to_string_lossy().into_owned()
        })
        .collect();
    files.sort();
    let mut want: Vec<String> = before
        .keys()
        .map(|k| {
            let (kind, name) = k.split_once('/').unwrap();
            format!("{kind}_{NS}_{name}.yaml")
        })
        .collect();
    want.sort();
    assert_eq!(files, want);
    // The backup paused the source only while reading it.
    assert_source_restored(&src, "after the backup").await;
    assert!(
        !std::fs::read_to_string(backup_dir.join("Cluster_capi-self_demo.yaml"))
            .unwrap()
            .contains("paused"),
        "the files hold the cluster as it was, not our pause"
    );

    let restore_args = |journal: &std::path::Path| {
        [
            "move",
            "--from-directory",
            backup_dir.to_str().unwrap(),
            "--to-kubeconfig",
            b_cp.kubeconfig_path().to_str().unwrap(),
            "--journal",
            journal.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let journal = b_cp.dir().join("restore-journal.json");
    let out = capi_manage_in(b_cp.dir(), restore_args(&journal)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!journal.exists());
    // Restoring again converges (objects updated in place, nothing duplicated).
    let first = snapshot(&b).await;
    let out = capi_manage_in(b_cp.dir(), restore_args(&journal)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = snapshot(&b).await;
    assert_eq!(
        restored
            .iter()
            .map(|(k, v)| (k, &v["metadata"]["uid"]))
            .collect::<Vec<_>>(),
        first
            .iter()
            .map(|(k, v)| (k, &v["metadata"]["uid"]))
            .collect::<Vec<_>>()
    );

    move_objects(
        &src,
        &c,
        &MoveOptions::new(NS),
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let direct = snapshot(&c).await;
    assert_eq!(normalized(&restored), normalized(&direct));
    assert_owner_uids_resolve(&restored, "restored");
    assert_eq!(restored.len(), before.len());
    assert!(restored["Cluster/demo"]["spec"].get("paused").is_none());
}

/// Kills the target's apiserver from inside the move, right after group `after` is copied.
struct KillAfter {
    pid: u32,
    at: u64,
    fired: std::sync::atomic::AtomicBool,
}

impl capi_manage::observe::Observer for KillAfter {
    fn event(&self, event: capi_manage::observe::Event) {
        if let capi_manage::observe::Event::Progress { done, .. } = event
            && done == self.at
            && !self.fired.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            // SAFETY: kill(2) on the pid of a child this test started.
            unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        }
    }
}

#[tokio::test]
async fn target_apiserver_killed_after_each_group_then_a_rerun_completes() {
    let ((_src_cp, src), (mut dst_cp, dst)) =
        tokio::join!(management_cluster(), management_cluster());
    demo_graph(&src).await;
    let before = snapshot(&src).await;
    let groups = plan(&src, NS).await.unwrap().groups;
    assert!(groups.len() >= 5);
    let journal = dst_cp.dir().join("journal.json");
    let options = MoveOptions {
        journal: Some(journal.clone()),
        ..MoveOptions::new(NS)
    };
    for n in 0..groups.len() {
        let copied_before: usize = groups[..=n].iter().map(Vec::len).sum();
        let observer = KillAfter {
            pid: dst_cp.apiserver_pid(),
            at: copied_before as u64,
            fired: Default::default(),
        };
        let err = move_objects(&src, &dst, &options, &observer, &CancellationToken::new())
            .await
            .unwrap_err();
        let line = crate::support::error_chain(&err);
        assert!(
            observer.fired.load(std::sync::atomic::Ordering::SeqCst),
            "group {n}: {line}"
        );
        let last = n + 1 == groups.len();
        if last {
            // Everything was copied: the source stays paused (the target holds the cluster
            // now) and the re-run only has to unpause the target.
            assert!(
                line.contains("unpausing Cluster capi-self/demo on the target"),
                "{line}"
            );
        } else {
            assert!(
                matches!(&err, MoveError::Rolledback { copied, .. } if *copied == copied_before),
                "group {n}: {line}"
            );
            assert_source_restored(&src, &format!("group {n}")).await;
        }
        assert!(
            journal.exists(),
            "group {n}: the journal is kept for the re-run"
        );
        assert_eq!(
            snapshot(&src).await.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "group {n}: nothing lost on the source"
        );

        dst_cp.restart_apiserver().await;
        move_objects(&src, &dst, &options, &Silent, &CancellationToken::new())
            .await
            .unwrap_or_else(|e| panic!("group {n}: rerun: {}", crate::support::error_chain(&e)));
        let moved = snapshot(&dst).await;
        assert_eq!(
            moved.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "group {n}: everything on the target after the rerun"
        );
        assert_owner_uids_resolve(&moved, &format!("group {n}"));
        assert!(moved["Cluster/demo"]["spec"].get("paused").is_none());
        assert!(!journal.exists());

        // Reset for the next round: empty the target, unpause and resume the source.
        for key in moved.keys() {
            let (kind, name) = key.split_once('/').unwrap();
            let av = MOVED_KINDS.iter().find(|(_, k)| *k == kind).unwrap().0;
            api(&dst, av, kind)
                .await
                .delete(name, &Default::default())
                .await
                .unwrap();
        }
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

/// Leaf paths (`Kind/name /json/pointer`) where two normalized snapshots differ.
fn differences(ours: &BTreeMap<String, Value>, theirs: &BTreeMap<String, Value>) -> Vec<String> {
    fn walk(path: String, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    walk(
                        format!("{path}/{k}"),
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            _ if a != b => out.push(format!("{path}: ours {a}, clusterctl {b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    for k in keys {
        match (ours.get(k), theirs.get(k)) {
            (Some(a), Some(b)) => walk(format!("{k} "), a, b, &mut out),
            (Some(_), None) => out.push(format!("{k}: only ours")),
            (None, Some(_)) => out.push(format!("{k}: only clusterctl")),
            (None, None) => {}
        }
    }
    out
}

#[tokio::test]
async fn lands_what_clusterctl_move_lands_but_for_a_justified_list() {
    let clusterctl = crate::support::test_bin("clusterctl");
    let ((a_cp, a), (b_cp, b), (_a2_cp, a2), (_b2_cp, b2)) = tokio::join!(
        clusterctl_management_cluster(),
        clusterctl_management_cluster(),
        clusterctl_management_cluster(),
        clusterctl_management_cluster()
    );
    tokio::join!(demo_graph(&a), demo_graph(&a2));
    // clusterctl moves only provisioned clusters: it also wants the v1beta2 conditions the
    // Cluster controller sets once the control plane is up.
    for d in [&a, &a2] {
        mark_provisioned_for_clusterctl(d, "demo").await;
    }

    let args: Vec<String> = [
        "move",
        "--kubeconfig",
        a_cp.kubeconfig_path().to_str().unwrap(),
        "--to-kubeconfig",
        b_cp.kubeconfig_path().to_str().unwrap(),
        "-n",
        NS,
    ]
    .map(String::from)
    .to_vec();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(clusterctl)
            .args(&args)
            .env("CLUSTERCTL_DISABLE_VERSIONCHECK", "true")
            .env("HOME", std::env::temp_dir())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "clusterctl move: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    move_objects(
        &a2,
        &b2,
        &MoveOptions::new(NS),
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap();

    let theirs = snapshot(&b).await;
    let ours = snapshot(&b2).await;
    assert_owner_uids_resolve(&theirs, "clusterctl");
    assert_owner_uids_resolve(&ours, "ours");
    let diff = differences(&normalized(&ours), &normalized(&theirs));
    // Where capi-manage lands something else than clusterctl, and why:
    let expected = [
        // clusterctl moves only objects tied to a Cluster (owner references, the
        // `<cluster>-kubeconfig`-style naming, or the clusterctl move label). We move every
        // Secret and ConfigMap of the cluster's namespace: the namespace is the cluster's, and
        // these three are needed on the new management cluster:
        // - the values ConfigMap the cluster's HelmRelease reads (Flux re-renders from it),
        ("ConfigMap/demo-values", "only ours"),
        // - the cloud credentials CAPO's identityRef names (owned by a SealedSecret, which is
        //   not moved; sealed-secrets re-creates it from git only once it runs there),
        ("Secret/demo-cloud-credentials", "only ours"),
        // - Helm's release record, so helm-controller on the target upgrades the release it
        //   finds instead of installing it a second time over the moved objects.
        ("Secret/sh.helm.release.v1.demo.v1", "only ours"),
        // clusterctl creates objects without status and leaves it to the controllers to
        // recompute; we restore it, so readiness checks on the target (Flux health checks, our
        // own waits) see the cluster as provisioned right after the move, not as new.
        ("Cluster/demo", "/status"),
        ("Machine/demo-md-0-abcde-x1", "/status"),
        ("MachineDeployment/demo-md-0", "/status"),
        ("OpenStackCluster/demo", "/status"),
    ];
    let got: std::collections::BTreeSet<(String, String)> = diff
        .iter()
        .map(|d| {
            let (key, rest) = d.split_once([' ', ':']).unwrap();
            let what = rest
                .trim_start_matches([' ', ':'])
                .split(':')
                .next()
                .unwrap();
            (key.to_string(), what.trim().to_string())
        })
        .collect();
    let want: std::collections::BTreeSet<(String, String)> = expected
        .iter()
        .map(|(k, w)| (k.to_string(), w.to_string()))
        .collect();
    assert_eq!(got, want, "differences:\n{}", diff.join("\n"));
    // Where we differ by restoring status, it is the source's status exactly.
    let source = snapshot(&a2).await;
    for (key, what) in &want {
        if what == "/status" {
            assert_eq!(ours[key]["status"], source[key]["status"], "{key}");
            assert!(
                theirs[key].get("status").is_none_or(Value::is_null),
                "{key}"
            );
        }
    }
    // clusterctl deleted everything it moved from its source; we keep ours (no --delete-source)
    // paused, as the next step of the bootstrap deletes the kind cluster wholesale.
    let left = snapshot(&a).await;
    for key in theirs.keys() {
        assert!(
            !left.contains_key(key),
            "clusterctl left {key} on its source"
        );
    }
    assert_eq!(source.len(), ours.len());
}
