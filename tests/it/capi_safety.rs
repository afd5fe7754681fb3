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
