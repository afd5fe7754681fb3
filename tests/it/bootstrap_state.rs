//! What a resumed bootstrap checks before it trusts its state file: a kubeconfig that now
//! reaches another cluster, a kubeconfig gone after the move, a corrupt or newer state file.
//! The real binary against a real kube-apiserver.

use std::path::Path;

use crate::support::{ControlPlane, capi_manage, project_root};

/// A repository with cluster `prod` made from `clusters/example`, credentials filled in.
fn repo(dir: &Path) -> std::path::PathBuf {
    let work = dir.join("repo");
    let src = project_root().join("clusters");
    for (from, to) in [("bases", "bases"), ("example", "prod")] {
        copy(&src.join(from), &work.join("clusters").join(to));
    }
    let prod = work.join("clusters/prod");
    for f in ["kustomization.yaml", "values.yaml", "credentials.yaml"] {
        let text = std::fs::read_to_string(prod.join(f)).unwrap();
        let text = text
            .replace("example", "prod")
            .replace(
                "https://REPLACE_ME:5000/v3",
                "https://keystone.invalid:5000/v3",
            )
            .replace("REPLACE_ME", "filled-in");
        std::fs::write(prod.join(f), text).unwrap();
    }
    work
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn bootstrap(work: &Path) -> std::process::Output {
    capi_manage()
        .args([
            "bootstrap",
            "prod",
            "--repo",
            &work.display().to_string(),
            "--yes",
            // These tests are about the state: the credentials name no cloud, the repository
            // has no vendored components and no git remote.
            "--skip-cloud-preflight",
            "--ignore-preflight-errors=all",
        ])
        .output()
        .unwrap()
}

fn one_line_error(out: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(needle), "`{needle}` in {stderr}");
}

const BEFORE_TARGET_READY: &str = r#""kind-cluster", "kind-components", "apply-cluster", "cluster-ready", "kubeconfig", "target-components", "move""#;

#[tokio::test]
async fn a_resumed_bootstrap_refuses_a_kubeconfig_that_reaches_another_cluster() {
    let cp = ControlPlane::start().await;
    let dir = tempfile::tempdir().unwrap();
    let work = repo(dir.path());
    let state_dir = work.join("clusters/prod/.capi-manage");
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::copy(cp.kubeconfig_path(), work.join("clusters/prod/kubeconfig")).unwrap();
    std::fs::write(
        state_dir.join("state.json"),
        format!(r#"{{"version": 1, "done": [{BEFORE_TARGET_READY}], "target_cluster_uid": "uid-of-another-cluster"}}"#),
    )
    .unwrap();
    let out = bootstrap(&work);
    one_line_error(
        &out,
        "reaches a different cluster than the one this bootstrap ran on",
    );
    one_line_error(&out, "recorded uid-of-another-cluster");
}

#[test]
fn a_resumed_bootstrap_says_what_to_do_with_a_bad_state_file_or_a_lost_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let work = repo(dir.path());
    let state_dir = work.join("clusters/prod/.capi-manage");
    std::fs::create_dir_all(&state_dir).unwrap();
    let state = state_dir.join("state.json");

    std::fs::write(&state, "{\"done\": [\"kind-clu").unwrap();
    one_line_error(
        &bootstrap(&work),
        "not a capi-manage state file; move it aside",
    );

    std::fs::write(&state, r#"{"version": 99, "done": []}"#).unwrap();
    one_line_error(
        &bootstrap(&work),
        "state format 99 was written by a newer capi-manage",
    );

    std::fs::write(&state, format!(r#"{{"done": [{BEFORE_TARGET_READY}]}}"#)).unwrap();
    one_line_error(
        &bootstrap(&work),
        "kubeconfig is missing, and the cluster already moved off the kind cluster",
    );
}
