//! Moves that would harm a cluster are refused before anything changes: a move onto the same
//! cluster, a backup into a folder that holds other files. Real kube-apiserver.

use capi_manage::capi::{Error, MoveOptions, backup, move_objects};
use capi_manage::kube::Discovery;
use capi_manage::observe::Silent;
use tokio_util::sync::CancellationToken;

use crate::support::ControlPlane;

#[tokio::test]
async fn a_move_onto_the_same_cluster_is_refused_and_a_backup_never_takes_over_a_used_folder() {
    let cp = ControlPlane::start().await;
    let d = Discovery::new(cp.client().await);
    // The same cluster through a second client: what two kubeconfigs for one cluster give.
    let again = Discovery::new(cp.client().await);
    let mut options = MoveOptions::new("capi-self");
    options.delete_source = true;
    let e = move_objects(&d, &again, &options, &Silent, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::SameCluster { .. }), "{e}");
    assert!(e.to_string().contains("same cluster"), "{e}");

    // A folder that holds files (think /tmp) is neither used nor chmodded.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("someone-elses-file"), "x").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let e = backup(&d, dir.path(), &options, &Silent, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DirectoryNotEmpty { .. }), "{e}");
    let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o1777, "the folder's permissions are untouched");
}

#[tokio::test]
async fn a_second_run_of_a_finished_move_leaves_no_cluster_paused_on_the_target() {
    use crate::support::capi::{CAPI, api, cluster_graph, management_cluster};
    let ((_src_cp, src), (_dst_cp, dst)) = tokio::join!(management_cluster(), management_cluster());
    cluster_graph(&src, "c1").await;
    let cancel = CancellationToken::new();
    // No journal, no deletion: the source stays paused after the move.
    let options = MoveOptions::new(crate::support::capi::NS);
    move_objects(&src, &dst, &options, &Silent, &cancel)
        .await
        .unwrap();
    let paused = |o: &::kube::api::DynamicObject| o.data["spec"]["paused"] == true;
    let marked = |o: &::kube::api::DynamicObject| {
        o.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(capi_manage::capi::PAUSED_BY_MOVE))
    };
    let source_cluster = api(&src, CAPI, "Cluster").await.get("c1").await.unwrap();
    assert!(paused(&source_cluster) && marked(&source_cluster));

    // The same move again, unchanged: the source's pause is recognised as the tool's own.
    move_objects(&src, &dst, &options, &Silent, &cancel)
        .await
        .unwrap();
    let target_cluster = api(&dst, CAPI, "Cluster").await.get("c1").await.unwrap();
    assert!(
        !paused(&target_cluster),
        "the target's Cluster is left unpaused"
    );
    assert!(!marked(&target_cluster), "and carries no pause mark");
}
