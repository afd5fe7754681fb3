//! `bootstrap::plan` on a real git repository: the origin it reports (read with gix, also from
//! a linked worktree, without the credentials of its URL) and the steps an earlier run finished.

use std::path::Path;

use capi_manage::bootstrap::{self, State, plan};
use capi_manage::components::Pins;
use capi_manage::repo::Repo;

use crate::support::git_server::{self, git};
use crate::support::project_root;

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

#[test]
fn plan_reads_origin_through_a_linked_worktree_and_hides_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let work = git_server::work_repo(dir.path(), "work");
    let root = project_root();
    for d in ["clusters/bases", "clusters/example", "vendor-manifests"] {
        copy_dir(&root.join(d), &work.join(d));
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "config"]);
    let url = "https://capi:t0ken-s3cret@git.example.com/org/config.git";
    git(&work, &["remote", "add", "origin", url]);
    git(
        &work,
        &[
            "remote",
            "add",
            "mirror",
            "ssh://git@mirror.example.com/config.git",
        ],
    );
    let linked = dir.path().join("linked");
    git(
        &work,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            linked.to_str().unwrap(),
        ],
    );

    // The raw URL as configured, from either checkout; another remote by its name.
    for checkout in [&work, &linked] {
        assert_eq!(
            capi_manage::git::remote_url(checkout, "origin")
                .unwrap()
                .as_deref(),
            Some(url)
        );
    }
    assert_eq!(
        capi_manage::git::remote_url(&linked, "mirror")
            .unwrap()
            .as_deref(),
        Some("ssh://git@mirror.example.com/config.git")
    );
    assert_eq!(
        capi_manage::git::remote_url(&linked, "upstream").unwrap(),
        None
    );
    let not_a_repo = tempfile::tempdir().unwrap();
    assert!(capi_manage::git::remote_url(not_a_repo.path(), "origin").is_err());

    // An earlier run finished the first two steps.
    let repo = Repo::at(&linked);
    let cluster = repo.cluster("example").unwrap();
    let mut state = State::default();
    let steps = bootstrap::bootstrap_steps();
    for s in &steps[..2] {
        state.done.insert(s.id().to_string());
    }
    std::fs::create_dir_all(cluster.dir.state_dir()).unwrap();
    state.save(&cluster.dir.bootstrap_state()).unwrap();
    let pins = Pins::read(&linked.join("vendor-manifests/vendor.toml")).unwrap();

    let p = plan(&repo, &cluster, &pins);
    assert_eq!(
        p.origin_url.as_deref(),
        Some("https://git.example.com/org/config.git")
    );
    assert_eq!(p.cluster, "example");
    assert_eq!(p.objects, cluster.objects.len());
    assert_eq!(
        p.kinds.iter().map(|(_, n)| n).sum::<usize>(),
        cluster.objects.len()
    );
    let ids: Vec<&str> = p.steps.iter().map(|s| s.id).collect();
    let want: Vec<&str> = steps.iter().map(|s| s.id()).collect();
    assert_eq!(ids, want);
    let done: Vec<bool> = p.steps.iter().map(|s| s.done).collect();
    assert_eq!(done[..2], [true, true]);
    assert!(done[2..].iter().all(|d| !d), "{done:?}");
    assert_eq!(
        p.components,
        pins.versions()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    );

    // The binary prints the same origin, without the token.
    let out = crate::support::capi_manage()
        .args(["plan", "example"])
        .current_dir(&linked)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("origin = https://git.example.com/org/config.git"),
        "{stdout}"
    );
    assert!(!stdout.contains("t0ken"), "{stdout}");
}
