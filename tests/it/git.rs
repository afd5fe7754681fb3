//! `capi_manage::git` against real servers on loopback (a bare repository on disk,
//! `git http-backend`, OpenSSH's sshd), checked with the real git on the server side.

use std::path::{Path, PathBuf};

use capi_manage::git::{
    self, CommitError, CommitOptions, CommitOutcome, HostKeyScanOptions, HttpCredentials,
    PushError, PushOptions, PushOutcome,
};
use capi_manage::observe::Silent;
use tokio_util::sync::CancellationToken;

use crate::support::git_server::{self, HttpServer, Sshd, fsck_strict, rev_parse};

fn write(repo: &Path, rela: &str, content: &str) {
    let path = repo.join(rela);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

const SEALED: &str = "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: cloud-config\n  namespace: kube-system\nspec:\n  encryptedData:\n    clouds.yaml: AgBy3i4OJSWK+PiTySYZZA==\n";

/// A work repository with one commit made by `git::commit` (root commit, unborn branch).
fn repo_with_our_commit(dir: &Path) -> (PathBuf, String) {
    let repo = git_server::work_repo(dir, "work");
    write(&repo, "clusters/prod/credentials-sealed.yaml", SEALED);
    write(
        &repo,
        "clusters/prod/kustomization.yaml",
        "resources:\n- credentials-sealed.yaml\n",
    );
    let outcome = git::commit(
        &repo,
        &CommitOptions::new(
            [
                "clusters/prod/credentials-sealed.yaml",
                "clusters/prod/kustomization.yaml",
            ],
            "Bootstrap cluster - prod",
        ),
        &Silent,
    )
    .expect("commit");
    let CommitOutcome::Committed { id, branch } = outcome else {
        panic!("expected a commit, got {outcome:?}")
    };
    assert_eq!(branch, "main");
    (repo, id)
}

async fn push(repo: &Path, options: &PushOptions) -> Result<PushOutcome, PushError> {
    git::push(repo, options, &Silent, &CancellationToken::new()).await
}

/// The remote has exactly our commit, passes `git fsck --strict`, and the work tree is clean.
fn assert_remote_has_exactly(remote: &Path, work: &Path, commit: &str) {
    fsck_strict(remote);
    let log = git_server::git(remote, &["log", "--format=%H %s", "main"]);
    assert_eq!(log, format!("{commit} Bootstrap cluster - prod\n"));
    let files = git_server::git(remote, &["ls-tree", "-r", "--name-only", "main"]);
    assert_eq!(
        files,
        "clusters/prod/credentials-sealed.yaml\nclusters/prod/kustomization.yaml\n"
    );
    // Our index update keeps `git status` clean after the commit.
    assert_eq!(git_server::git(work, &["status", "--porcelain"]), "");
}

fn ssh_options(sshd: &Sshd) -> git::SshOptions {
    let mut ssh = git::SshOptions::default();
    ssh.identity_files = vec![sshd.client_key.clone()];
    ssh.no_agent = true;
    ssh.known_hosts = Some(sshd.known_hosts.clone());
    ssh
}

fn one_line(err: &PushError) -> String {
    let text = err.to_string();
    assert!(!text.contains('\n'), "not one line: {text}");
    text
}

/// A bare `remote.git` under `dir/srv`, served over HTTP (with Basic `auth` when given).
fn http_remote(dir: &Path, auth: Option<(&str, &str)>) -> (PathBuf, HttpServer) {
    let root = dir.join("srv");
    std::fs::create_dir(&root).unwrap();
    let remote = git_server::bare_repo(&root, "remote.git");
    (remote, HttpServer::start(&root, auth))
}

#[tokio::test]
async fn push_over_file_url_and_path() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, id) = repo_with_our_commit(tmp.path());
    let remote = git_server::bare_repo(tmp.path(), "remote.git");
    let url = format!("file://{}", remote.display());
    let outcome = push(&work, &PushOptions::new(&url, "main")).await.unwrap();
    assert_eq!(
        (outcome.new.as_str(), outcome.old.as_deref()),
        (id.as_str(), None)
    );
    assert_eq!(outcome.objects, 6, "commit + 3 trees + 2 blobs");
    assert_remote_has_exactly(&remote, &work, &id);

    // Again: up to date, nothing sent. And a plain path works as a URL too.
    let again = push(&work, &PushOptions::new(remote.to_str().unwrap(), "main"))
        .await
        .unwrap();
    assert!(again.up_to_date && again.objects == 0);
}

#[tokio::test]
async fn cancelled_push_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, _) = repo_with_our_commit(tmp.path());
    let remote = git_server::bare_repo(tmp.path(), "remote.git");
    let cancel = CancellationToken::new();
    cancel.cancel();
    let err = git::push(
        &work,
        &PushOptions::new(remote.to_str().unwrap(), "main"),
        &Silent,
        &cancel,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, PushError::Cancelled { .. }), "{err:?}");
    assert_eq!(rev_parse(&remote, "main"), None);
}

#[tokio::test]
async fn push_over_http_with_basic_auth() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, id) = repo_with_our_commit(tmp.path());
    let (remote, server) = http_remote(tmp.path(), Some(("tester", "s3cret-token")));
    let url = server.url("remote.git");

    // Wrong token: one line, nothing changed.
    let mut options = PushOptions::new(&url, "main");
    options.http_credentials = Some(HttpCredentials::token("wrong"));
    let err = push(&work, &options).await.unwrap_err();
    assert!(matches!(err, PushError::AuthFailed { .. }), "{err:?}");
    assert!(one_line(&err).contains("authentication"), "{err}");
    assert_eq!(rev_parse(&remote, "main"), None);

    options.http_credentials = Some(HttpCredentials {
        username: "tester".into(),
        password: "s3cret-token".into(),
    });
    let outcome = push(&work, &options).await.unwrap();
    assert_eq!(outcome.new, id);
    assert_remote_has_exactly(&remote, &work, &id);
}

#[tokio::test]
async fn push_over_ssh_and_the_ssh_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, id) = repo_with_our_commit(tmp.path());
    let remote = git_server::bare_repo(tmp.path(), "remote.git");
    let sshd = Sshd::start(tmp.path());
    let mut options = PushOptions::new(sshd.url(&remote), "main");

    // Unknown host key: an empty known_hosts; the error names the fingerprint.
    let empty_known_hosts = tmp.path().join("known_hosts_empty");
    std::fs::write(&empty_known_hosts, "").unwrap();
    options.ssh = ssh_options(&sshd);
    options.ssh.known_hosts = Some(empty_known_hosts.clone());
    let err = push(&work, &options).await.unwrap_err();
    let PushError::UnknownHostKey {
        fingerprint, host, ..
    } = &err
    else {
        panic!("expected UnknownHostKey, got {err:?}")
    };
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    assert_eq!(host, &format!("[127.0.0.1]:{}", sshd.port));
    assert!(one_line(&err).contains(&empty_known_hosts.display().to_string()));
    assert_eq!(rev_parse(&remote, "main"), None);

    // Wrong key: authentication fails, one line, nothing changed.
    let other_key = tmp.path().join("other_key");
    let key = git::generate_deploy_key("not-authorized").unwrap();
    std::fs::write(&other_key, key.private_openssh.as_bytes()).unwrap();
    options.ssh = ssh_options(&sshd);
    options.ssh.identity_files = vec![other_key];
    let err = push(&work, &options).await.unwrap_err();
    assert!(matches!(err, PushError::AuthFailed { .. }), "{err:?}");
    assert!(one_line(&err).contains("authentication"), "{err}");
    assert_eq!(rev_parse(&remote, "main"), None);

    // The right key and a known host.
    options.ssh = ssh_options(&sshd);
    let outcome = push(&work, &options).await.unwrap();
    assert_eq!(outcome.new, id);
    assert_remote_has_exactly(&remote, &work, &id);

    // accept-new records the key and then pushes (up to date here).
    options.ssh.known_hosts = Some(empty_known_hosts.clone());
    options.ssh.accept_new_host_key = true;
    let again = push(&work, &options).await.unwrap();
    assert!(again.up_to_date);
    let learned = std::fs::read_to_string(&empty_known_hosts).unwrap();
    assert!(
        learned
            .trim_start()
            .starts_with(&format!("[127.0.0.1]:{} ", sshd.port)),
        "{learned}"
    );
}

#[tokio::test]
async fn non_fast_forward_and_hook_rejection_leave_the_remote_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, _) = repo_with_our_commit(tmp.path());
    let (remote, server) = http_remote(tmp.path(), None);
    let options = PushOptions::new(server.url("remote.git"), "main");
    push(&work, &options).await.unwrap();

    // Someone else pushes first (with the real git).
    let other = tmp.path().join("other");
    git_server::git(
        tmp.path(),
        &["clone", "-q", remote.to_str().unwrap(), "other"],
    );
    write(&other, "README.md", "theirs\n");
    git_server::git(&other, &["add", "README.md"]);
    git_server::git(&other, &["commit", "-qm", "theirs"]);
    git_server::git(&other, &["push", "-q", "origin", "main"]);
    let before = rev_parse(&remote, "main").unwrap();

    write(&work, "clusters/prod/kustomization.yaml", "resources: []\n");
    let mut commit = CommitOptions::new(["clusters/prod/kustomization.yaml"], "ours");
    commit.author = Some(git::Author {
        name: "A".into(),
        email: "a@example.com".into(),
    });
    git::commit(&work, &commit, &Silent).unwrap();
    let err = push(&work, &options).await.unwrap_err();
    assert!(matches!(err, PushError::NonFastForward { .. }), "{err:?}");
    assert!(one_line(&err).contains("pull"), "{err}");
    assert_eq!(rev_parse(&remote, "main").unwrap(), before);

    // A pre-receive hook refuses; its message reaches the user.
    let (work2, _) = repo_with_our_commit(&tmp.path().join("second"));
    let remote2 = git_server::bare_repo(&tmp.path().join("srv"), "hooked.git");
    let hook = remote2.join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'policy: pushes need a signed-off review' >&2\nexit 1\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x", hook.to_str().unwrap()])
        .status()
        .unwrap();
    let err = push(&work2, &PushOptions::new(server.url("hooked.git"), "main"))
        .await
        .unwrap_err();
    let text = one_line(&err);
    assert!(matches!(err, PushError::HookRejected { .. }), "{err:?}");
    assert!(
        text.contains("pre-receive hook declined")
            && text.contains("policy: pushes need a signed-off review"),
        "{text}"
    );
    assert_eq!(rev_parse(&remote2, "main"), None);
    fsck_strict(&remote2);
}

#[tokio::test]
async fn second_push_of_a_large_repository_sends_only_new_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let work = git_server::work_repo(tmp.path(), "work");
    git_server::fill_large(&work, 100, 99); // 9,900 blobs + 100 trees + root tree + commit
    let objects = git_server::git(&work, &["count-objects", "-v"]);
    let (remote, server) = http_remote(tmp.path(), None);
    let options = PushOptions::new(server.url("remote.git"), "main");

    let first = push(&work, &options).await.unwrap();
    assert_eq!(first.objects, 10_002, "{objects}");
    let first_wire = server
        .last_push_body
        .load(std::sync::atomic::Ordering::Relaxed);

    write(&work, "dir042/file007.txt", "changed\n");
    let outcome = git::commit(
        &work,
        &CommitOptions::new(["dir042/file007.txt"], "Bootstrap cluster - big"),
        &Silent,
    )
    .unwrap();
    let CommitOutcome::Committed { id, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let second = push(&work, &options).await.unwrap();
    let second_wire = server
        .last_push_body
        .load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "first push: {} objects, pack {} bytes, request {} bytes; second push: {} objects, pack {} bytes, request {} bytes",
        first.objects, first.pack_bytes, first_wire, second.objects, second.pack_bytes, second_wire
    );
    // Exactly: the commit, the root tree, dir042's tree and the new blob.
    assert_eq!(second.objects, 4);
    // The pack holds those four objects and nothing else: at most their raw size plus pack
    // entry headers (12-byte pack header, 20-byte trailer).
    let raw: u64 = [
        "main".to_owned(),
        "main^{tree}".to_owned(),
        "main:dir042".to_owned(),
        "main:dir042/file007.txt".to_owned(),
    ]
    .iter()
    .map(|rev| {
        git_server::git(&work, &["cat-file", "-s", rev])
            .trim()
            .parse::<u64>()
            .unwrap()
    })
    .sum();
    assert!(
        second.pack_bytes <= raw + 4 * 16 + 32,
        "pack {} bytes for {raw} bytes of objects",
        second.pack_bytes
    );
    assert!(second_wire < second.pack_bytes + 300, "{second_wire}");
    assert!(first.pack_bytes > 100 * second.pack_bytes);
    fsck_strict(&remote);
    let log = git_server::git(&remote, &["log", "--format=%H", "main"]);
    assert_eq!(log.lines().next(), Some(id.as_str()));
    assert_eq!(log.lines().count(), 2);
}

/// Several commits at once (a rename within a folder, a folder moved under another, a deleted
/// file, a side branch merged back, a deleted file's content re-added elsewhere): the objects are
/// enumerated from each commit's difference to its parents, and the remote's receive-pack (its
/// connectivity check) and `git fsck --strict` must find nothing missing.
#[tokio::test]
async fn push_of_renames_moves_deletes_and_a_merge_is_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let work = git_server::work_repo(tmp.path(), "work");
    git_server::fill_large(&work, 6, 5);
    let (remote, server) = http_remote(tmp.path(), None);
    let options = PushOptions::new(server.url("remote.git"), "main");
    push(&work, &options).await.unwrap();
    let old = rev_parse(&work, "main").unwrap();

    let g = |args: &[&str]| git_server::git(&work, args);
    g(&["mv", "dir001/file000.txt", "dir001/renamed.txt"]);
    g(&["commit", "-qm", "rename within a folder"]);
    std::fs::create_dir(work.join("moved")).unwrap();
    g(&["mv", "dir002", "moved/dir002"]);
    g(&["commit", "-qm", "move a folder under another"]);
    let deleted = std::fs::read_to_string(work.join("dir003/file001.txt")).unwrap();
    g(&["rm", "-q", "dir003/file001.txt"]);
    g(&["commit", "-qm", "delete a file"]);
    g(&["checkout", "-q", "-b", "side", "HEAD~2"]);
    write(&work, "dir004/side.txt", "from the side branch\n");
    write(&work, "dir000/file000.txt", "changed on the side\n");
    g(&["add", "-A"]);
    g(&["commit", "-qm", "side change"]);
    g(&["checkout", "-q", "main"]);
    g(&["merge", "-q", "--no-ff", "-m", "merge side", "side"]);
    write(&work, "new/again.txt", &deleted);
    g(&["add", "-A"]);
    g(&["commit", "-qm", "re-add a deleted content elsewhere"]);
    let tip = rev_parse(&work, "main").unwrap();

    let outcome = push(&work, &options).await.unwrap();
    fsck_strict(&remote);
    assert_eq!(rev_parse(&remote, "main").as_deref(), Some(tip.as_str()));
    // git's own count of what the remote lacks. Ours resends what the remote has under another
    // folder only: the moved folder (its tree and five blobs) and the re-added blob. Never less.
    let exact = g(&["rev-list", "--objects", "main", "--not", &old])
        .lines()
        .count();
    assert!(
        outcome.objects == exact + 7,
        "{} objects sent, {exact} missing on the remote",
        outcome.objects
    );
}

#[test]
fn tree_scan_blocks_plaintext_secrets_credentials_and_kubeconfigs() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, id) = repo_with_our_commit(tmp.path());
    let cases = [
        (
            "clusters/prod/cloud.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cloud\nstringData:\n  clouds.yaml: password\n",
            "plaintext Secret \"cloud\"",
        ),
        (
            "clusters/prod/credentials.yaml",
            "application_credential_secret: x\n",
            "unsealed credentials",
        ),
        (
            "clusters/prod/kubeconfig",
            "apiVersion: v1\nkind: Config\n",
            "kubeconfig",
        ),
    ];
    for (file, content, why) in cases {
        write(&work, file, content);
        let err = git::commit(&work, &CommitOptions::new([file], "leak"), &Silent).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, CommitError::Refused { .. }), "{err:?}");
        assert!(text.contains(file) && text.contains(why), "{text}");
        assert_eq!(rev_parse(&work, "HEAD").unwrap(), id, "nothing committed");
        std::fs::remove_file(work.join(file)).unwrap();
    }
    // A plaintext secret committed earlier by someone else is not our commit's business: the
    // push scans every commit it sends (push_refuses_a_secret_committed_then_deleted_...).
    write(&work, "old/secret.yaml", cases[0].1);
    git_server::git(&work, &["add", "old/secret.yaml"]);
    git_server::git(&work, &["commit", "-qm", "oops"]);
    write(&work, "clusters/prod/kustomization.yaml", "resources: []\n");
    git::commit(
        &work,
        &CommitOptions::new(["clusters/prod/kustomization.yaml"], "ours"),
        &Silent,
    )
    .expect("only the files to commit are scanned");
    // The example cluster's template is allowed while it holds only placeholders; filled in,
    // it is refused like any credentials.yaml.
    git_server::git(&work, &["rm", "-q", "old/secret.yaml"]);
    git_server::git(&work, &["commit", "-qm", "fix"]);
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("clusters/example/credentials.yaml"),
    )
    .unwrap();
    let example = "clusters/example/credentials.yaml";
    write(
        &work,
        example,
        &template.replace(
            "application_credential_secret: REPLACE_ME",
            "application_credential_secret: real-secret-value",
        ),
    );
    let err = git::commit(&work, &CommitOptions::new([example], "filled"), &Silent).unwrap_err();
    assert!(
        err.to_string().contains(example) && err.to_string().contains("unsealed credentials"),
        "{err}"
    );
    write(&work, example, &template);
    let ok = git::commit(&work, &CommitOptions::new([example], "ok"), &Silent).unwrap();
    assert!(matches!(ok, CommitOutcome::Committed { .. }));
}

#[tokio::test]
async fn push_refuses_a_secret_committed_then_deleted_in_unpushed_history() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, id) = repo_with_our_commit(tmp.path());
    let (remote, server) = http_remote(tmp.path(), None);
    let options = PushOptions::new(server.url("remote.git"), "main");
    push(&work, &options).await.unwrap();

    // A plaintext Secret committed, then deleted in a later local commit: the final tree is
    // clean, but the pack would carry the Secret's blob.
    write(
        &work,
        "clusters/prod/db.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n",
    );
    git_server::git(&work, &["add", "clusters/prod/db.yaml"]);
    git_server::git(&work, &["commit", "-qm", "add db"]);
    let leaking = rev_parse(&work, "HEAD").unwrap();
    git_server::git(&work, &["rm", "-q", "clusters/prod/db.yaml"]);
    git_server::git(&work, &["commit", "-qm", "remove db"]);
    write(&work, "clusters/prod/kustomization.yaml", "resources: []\n");
    git::commit(
        &work,
        &CommitOptions::new(["clusters/prod/kustomization.yaml"], "ours"),
        &Silent,
    )
    .expect("the final tree is clean");

    let err = push(&work, &options).await.unwrap_err();
    let text = one_line(&err);
    let PushError::Refused { commit, path, .. } = &err else {
        panic!("expected Refused, got {err:?}")
    };
    assert_eq!(
        (commit.as_str(), path.as_str()),
        (leaking.as_str(), "clusters/prod/db.yaml")
    );
    assert!(
        text.contains(&leaking)
            && text.contains("clusters/prod/db.yaml")
            && text.contains("rebase"),
        "{text}"
    );
    assert_eq!(rev_parse(&remote, "main").unwrap(), id, "remote unchanged");
    let objects = git_server::git(
        &remote,
        &["cat-file", "--batch-all-objects", "--batch-check"],
    );
    assert_eq!(
        objects.lines().count(),
        6,
        "no object of the refused push arrived: {objects}"
    );
    fsck_strict(&remote);
}

#[tokio::test]
async fn accept_new_trusts_only_unknown_hosts_and_never_revoked_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, id) = repo_with_our_commit(tmp.path());
    let remote = git_server::bare_repo(tmp.path(), "remote.git");
    let sshd = Sshd::start(tmp.path());
    let host = format!("[127.0.0.1]:{}", sshd.port);
    let mut options = PushOptions::new(sshd.url(&remote), "main");
    options.ssh = ssh_options(&sshd);
    options.ssh.accept_new_host_key = true;

    // known_hosts lists the host with a key of an algorithm the server does not offer (as if
    // the real host had an ECDSA P-384 key): the ed25519 key presented is a substitution.
    let other = tmp.path().join("p384");
    let keygen = git_server::require("ssh-keygen");
    assert!(
        std::process::Command::new(keygen)
            .args(["-q", "-N", "", "-t", "ecdsa", "-b", "384", "-f"])
            .arg(&other)
            .status()
            .unwrap()
            .success()
    );
    let p384 = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let substituted = tmp.path().join("known_hosts_other_algorithm");
    let listed = format!("{host} {}\n", p384.trim());
    std::fs::write(&substituted, &listed).unwrap();
    options.ssh.known_hosts = Some(substituted.clone());
    let err = push(&work, &options).await.unwrap_err();
    assert!(
        matches!(err, PushError::HostKeyChanged { line: 1, .. }),
        "{err:?}"
    );
    assert!(one_line(&err).contains("CHANGED"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&substituted).unwrap(),
        listed,
        "nothing learned"
    );
    assert_eq!(rev_parse(&remote, "main"), None);

    // A revoked key is refused even though known_hosts also lists it for the host.
    let revoked = tmp.path().join("known_hosts_revoked");
    let ed25519 = sshd
        .host_keys
        .iter()
        .find(|k| k.starts_with("ssh-ed25519"))
        .unwrap();
    std::fs::write(
        &revoked,
        format!(
            "{}@revoked * {ed25519}\n",
            std::fs::read_to_string(&sshd.known_hosts).unwrap()
        ),
    )
    .unwrap();
    options.ssh.known_hosts = Some(revoked);
    let err = push(&work, &options).await.unwrap_err();
    assert!(matches!(err, PushError::HostKeyRevoked { .. }), "{err:?}");
    assert!(one_line(&err).contains("REVOKED"), "{err}");
    assert_eq!(rev_parse(&remote, "main"), None);

    // A host with no entry at all is learned, into a ~/.ssh created private.
    let fresh = tmp.path().join("home/.ssh/known_hosts");
    options.ssh.known_hosts = Some(fresh.clone());
    let outcome = push(&work, &options).await.unwrap();
    assert_eq!(outcome.new, id);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(fresh.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "~/.ssh mode {mode:o}");
    assert!(
        std::fs::read_to_string(&fresh)
            .unwrap()
            .starts_with(&format!("{host} "))
    );
}

#[test]
fn commit_without_changes_is_a_no_op_and_facts_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, id) = repo_with_our_commit(tmp.path());
    let again = git::commit(
        &work,
        &CommitOptions::new(["clusters/prod/credentials-sealed.yaml"], "again"),
        &Silent,
    )
    .unwrap();
    assert_eq!(again, CommitOutcome::Unchanged { head: id.clone() });
    assert_eq!(rev_parse(&work, "HEAD").unwrap(), id);

    git_server::git(
        &work,
        &["remote", "add", "origin", "git@github.com:org/fleet.git"],
    );
    let facts = git::open(&work.join("clusters/prod")).unwrap();
    assert_eq!(facts.branch, "main");
    assert_eq!(
        facts.origin_url.as_deref(),
        Some("git@github.com:org/fleet.git")
    );
    assert_eq!(
        git::flux_url(facts.origin_url.as_deref().unwrap()).unwrap(),
        "ssh://git@github.com/org/fleet.git"
    );
    git_server::git(&work, &["checkout", "-q", "--detach"]);
    let err = git::open(&work).unwrap_err();
    assert!(err.to_string().contains("detached"), "{err}");
}

/// Every host key the test sshd offers, as `scan_host_keys` finds them.
async fn scan(sshd: &Sshd) -> git::HostKeys {
    git::scan_host_keys(
        &HostKeyScanOptions::new("127.0.0.1", sshd.port),
        &Silent,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn scanned_host_keys_satisfy_openssh_strict_checking() {
    let tmp = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(tmp.path());
    let keys = scan(&sshd).await;
    // Every key the server has, not only the negotiated one.
    let mut want: Vec<String> = sshd
        .host_keys
        .iter()
        .map(|k| {
            let mut p = k.split_whitespace();
            format!(
                "[127.0.0.1]:{} {} {}",
                sshd.port,
                p.next().unwrap(),
                p.next().unwrap()
            )
        })
        .collect();
    want.sort();
    let mut got = keys.lines.clone();
    got.sort();
    assert_eq!(got, want);

    let known_hosts = tmp.path().join("scanned_known_hosts");
    std::fs::write(&known_hosts, keys.known_hosts()).unwrap();
    let ssh = git_server::require("ssh");
    for algorithms in [
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "rsa-sha2-512",
        "rsa-sha2-256",
    ] {
        let out = std::process::Command::new(&ssh)
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .arg("-o")
            .arg(format!("HostKeyAlgorithms={algorithms}"))
            .arg("-i")
            .arg(&sshd.client_key)
            .args(["-p", &sshd.port.to_string()])
            .arg(format!("{}@127.0.0.1", sshd.user))
            .arg("echo connected")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "connected",
            "{algorithms}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn deploy_keys_are_valid_openssh_keys() {
    let key = git::generate_deploy_key("flux-prod").unwrap();
    assert!(key.public_line.starts_with("ssh-ed25519 ") && key.public_line.ends_with(" flux-prod"));
    assert!(
        key.private_openssh
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("id");
    std::fs::write(&path, key.private_openssh.as_bytes()).unwrap();
    std::process::Command::new("chmod")
        .args(["600", path.to_str().unwrap()])
        .status()
        .unwrap();
    let out = std::process::Command::new(git_server::require("ssh-keygen"))
        .args(["-y", "-f", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        key.public_line,
        "ssh-keygen derives the same public key"
    );
    assert_ne!(
        key.public_line,
        git::generate_deploy_key("flux-prod").unwrap().public_line
    );
}

#[tokio::test]
async fn flux_gets_only_the_scanned_host_keys_known_hosts_vouches_for() {
    let tmp = tempfile::tempdir().unwrap();
    let sshd = Sshd::start(tmp.path());
    let scanned = scan(&sshd).await;
    assert_eq!(scanned.lines.len(), 3);
    let host = format!("[127.0.0.1]:{}", sshd.port);

    // known_hosts lists one of the host's keys: only that one is handed on.
    let known_hosts = tmp.path().join("known_hosts");
    let ed25519 = sshd
        .host_keys
        .iter()
        .find(|k| k.starts_with("ssh-ed25519"))
        .unwrap();
    std::fs::write(&known_hosts, format!("{host} {ed25519}\n")).unwrap();
    let kept = scanned
        .verified_by(&known_hosts, "127.0.0.1", sshd.port)
        .unwrap();
    assert_eq!(kept.lines.len(), 1);
    assert!(kept.lines[0].contains("ssh-ed25519"), "{:?}", kept.lines);

    // A substituted host (known_hosts lists another key) or an unknown one: nothing, an error
    // that shows the offered fingerprints.
    let other = ssh_key::PrivateKey::random(
        &mut ssh_key::rand_core::UnwrapErr(getrandom::SysRng),
        ssh_key::Algorithm::Ed25519,
    )
    .unwrap();
    std::fs::write(
        &known_hosts,
        format!("{host} {}\n", other.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    for file in [known_hosts.clone(), tmp.path().join("missing")] {
        let e = scanned
            .verified_by(&file, "127.0.0.1", sshd.port)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&scanned.fingerprints[0]), "{e}");
        assert!(e.contains("accept-new"), "{e}");
    }
}

#[tokio::test]
async fn a_server_that_accepts_and_never_answers_times_out() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, _) = repo_with_our_commit(tmp.path());
    // Accepts connections, reads, never writes a byte.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let mut options = PushOptions::new(format!("http://127.0.0.1:{port}/config.git"), "main");
    options.read_timeout = std::time::Duration::from_secs(1);
    let started = std::time::Instant::now();
    let err = push(&repo, &options).await.unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "gave up after {:?}",
        started.elapsed()
    );
    let chain = crate::support::error_chain(&err);
    assert!(chain.contains(&format!("127.0.0.1:{port}")), "{chain}");
}
