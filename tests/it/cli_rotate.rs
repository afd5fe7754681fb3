//! `capi-manage rotate <cluster>` run as a binary in a real work repository cloned from a bare
//! repository: what lands in the remote (one commit, one file, sealed), review branches,
//! re-runs, the certificate fetched through the cluster's kubeconfig from the real
//! sealed-secrets controller, and one-line errors.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::json;

use crate::seal::{assert_one_line_error, keys, our_unseal};
use crate::support::git_server::{self, git, rev_parse};
use crate::support::{capi_manage, project_root};

const CLUSTER: &str = "prod";
const SECRET_VALUE: &str = "app-cred-s3cr3t-4711";
const SEALED: &str = "clusters/prod/credentials-sealed.yaml";

fn clouds_yaml() -> String {
    format!(
        "clouds:\n  openstack:\n    auth:\n      auth_url: https://keystone.example.com:5000/v3\n      application_credential_id: 0a1b2c\n      application_credential_secret: {SECRET_VALUE}\n    region_name: RegionOne\n    interface: public\n    identity_api_version: 3\n    auth_type: v3applicationcredential\n"
    )
}

fn credentials_yaml() -> String {
    let indented: String = clouds_yaml()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: prod-cloud-credentials\n  namespace: capi-self\n  labels:\n    addons.stackhpc.com/watch: \"true\"\n  annotations:\n    sealedsecrets.bitnami.com/managed: \"true\"\ntype: Opaque\nstringData:\n  clouds.yaml: |\n{indented}"
    )
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

/// A bare "server" repository and a clone of it holding the project's `clusters/bases`, a
/// cluster `prod` made from `clusters/example` (committed and pushed) and its plaintext
/// `credentials.yaml` (ignored, never committed).
struct Setup {
    dir: tempfile::TempDir,
    bare: PathBuf,
    work: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let bare = git_server::bare_repo(dir.path(), "server.git");
        let work = git_server::work_repo(dir.path(), "work");
        let root = project_root();
        copy_dir(&root.join("clusters/bases"), &work.join("clusters/bases"));
        let prod = work.join("clusters").join(CLUSTER);
        copy_dir(&root.join("clusters/example"), &prod);
        for f in ["kustomization.yaml", "values.yaml"] {
            let text = std::fs::read_to_string(prod.join(f)).unwrap();
            std::fs::write(prod.join(f), text.replace("example", CLUSTER)).unwrap();
        }
        std::fs::copy(root.join(".gitignore"), work.join(".gitignore")).unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "Add cluster prod"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        git(&work, &["push", "-q", "origin", "main"]);
        // Written after the commit: ignored by .gitignore, so `git add -A` never sees it.
        std::fs::write(prod.join("credentials.yaml"), credentials_yaml()).unwrap();
        Setup { dir, bare, work }
    }

    fn rotate(&self, args: &[&str]) -> Output {
        capi_manage()
            .arg("rotate")
            .arg(CLUSTER)
            .args(args)
            .current_dir(&self.work)
            .env("HOME", self.dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env_remove("CAPI_MANAGE_GIT_TOKEN")
            .output()
            .unwrap()
    }

    fn rotate_ok(&self, args: &[&str]) -> String {
        let out = self.rotate(args);
        assert!(
            out.status.success(),
            "rotate {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Commits on `rev` in the bare repository, newest first.
    fn remote_log(&self, rev: &str) -> Vec<String> {
        git(&self.bare, &["log", "--format=%H", rev])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn cert() -> &'static str {
    keys().cert.to_str().unwrap()
}

/// The files `commit` changed relative to its parent.
fn changed_files(repo: &Path, commit: &str) -> Vec<String> {
    git(
        repo,
        &["diff-tree", "--no-commit-id", "--name-only", "-r", commit],
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The sealed file at `rev` in `repo` opens (with the controller's private key) to exactly the
/// credentials' values.
fn assert_unseals_to_credentials(repo: &Path, rev: &str) {
    let sealed = git(repo, &["show", &format!("{rev}:{SEALED}")]);
    assert!(!sealed.contains(SECRET_VALUE), "plaintext in {sealed}");
    let values = our_unseal(&sealed);
    assert_eq!(
        values.keys().collect::<Vec<_>>(),
        ["clouds.yaml"],
        "{values:?}"
    );
    assert_eq!(
        String::from_utf8(values["clouds.yaml"].clone()).unwrap(),
        clouds_yaml()
    );
    let object = capi_manage::manifest::parse_str(&sealed, None)
        .unwrap()
        .remove(0);
    assert_eq!(object.kind(), "SealedSecret");
    assert_eq!(object.name(), "prod-cloud-credentials");
    assert_eq!(object.namespace(), Some("capi-self"));
}

/// Nothing reachable from any ref of `repo` holds the plaintext credential or a
/// `credentials.yaml` outside clusters/example.
fn assert_no_plaintext(repo: &Path, rev: &str) {
    let files = git(repo, &["log", "--all", "--name-only", "--format="]);
    assert!(
        !files.lines().any(|f| f == "clusters/prod/credentials.yaml"),
        "{files}"
    );
    let history = git(repo, &["log", "--all", "-p", "--format=%H"]);
    assert!(!history.contains(SECRET_VALUE), "plaintext in the history");
    let tree = git(repo, &["ls-tree", "-r", "--name-only", rev]);
    assert!(tree.contains(SEALED), "{tree}");
}

#[test]
fn rotate_commits_only_the_sealed_file_pushes_it_and_reruns() {
    let s = Setup::new();
    let before = s.remote_log("main");

    let stdout = s.rotate_ok(&["--cert", cert()]);
    assert!(stdout.contains(SEALED), "{stdout}");
    let after = s.remote_log("main");
    assert_eq!(after.len(), before.len() + 1, "exactly one new commit");
    assert_eq!(after[1..], before[..]);
    assert_eq!(changed_files(&s.bare, &after[0]), [SEALED]);
    assert_eq!(
        git(&s.bare, &["log", "-1", "--format=%s|%an|%ae", "main"]).trim(),
        "Rotate credentials - prod|Capi Tester|capi@example.com"
    );
    assert_unseals_to_credentials(&s.bare, "main");
    assert_eq!(rev_parse(&s.work, "main"), Some(after[0].clone()));
    // The work tree is clean: the sealed file is committed, the plaintext ignored.
    assert_eq!(git(&s.work, &["status", "--porcelain"]), "");
    git_server::fsck_strict(&s.bare);

    // A re-run re-seals (sealing is randomized), commits once more and pushes.
    s.rotate_ok(&[
        "--cert",
        cert(),
        "-m",
        "Rotate again",
        "--author-name",
        "Rota Tor",
        "--author-email",
        "rota@example.com",
    ]);
    let again = s.remote_log("main");
    assert_eq!(again.len(), after.len() + 1);
    assert_eq!(changed_files(&s.bare, &again[0]), [SEALED]);
    assert_eq!(
        git(&s.bare, &["log", "-1", "--format=%s|%an|%ae", "main"]).trim(),
        "Rotate again|Rota Tor|rota@example.com"
    );
    assert_unseals_to_credentials(&s.bare, "main");
    assert_no_plaintext(&s.bare, "main");
}

#[test]
fn rotate_to_a_review_branch_leaves_the_current_branch_alone() {
    let s = Setup::new();
    let main_before = s.remote_log("main");

    s.rotate_ok(&["--cert", cert(), "--branch", "review/rotate"]);
    assert_eq!(s.remote_log("main"), main_before, "remote main untouched");
    assert_eq!(rev_parse(&s.work, "main"), Some(main_before[0].clone()));
    let review = s.remote_log("review/rotate");
    assert_eq!(review.len(), main_before.len() + 1);
    assert_eq!(review[1..], main_before[..]);
    assert_eq!(changed_files(&s.bare, &review[0]), [SEALED]);
    assert_unseals_to_credentials(&s.bare, "review/rotate");
    // HEAD moved to the new branch, as `git switch -c` does; nothing is left uncommitted.
    assert_eq!(
        git(&s.work, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/review/rotate"
    );
    assert_eq!(git(&s.work, &["status", "--porcelain"]), "");

    // Re-run on the review branch: one more commit there, main still untouched.
    s.rotate_ok(&["--cert", cert(), "--branch", "review/rotate"]);
    assert_eq!(s.remote_log("review/rotate").len(), review.len() + 1);
    assert_eq!(s.remote_log("main"), main_before);

    // From main again, an existing review branch is refused, not overwritten.
    git(&s.work, &["switch", "-q", "main"]);
    let out = s.rotate(&["--cert", cert(), "--branch", "review/rotate"]);
    assert_one_line_error(&out, "branch review/rotate already exists");
    assert_no_plaintext(&s.bare, "review/rotate");
}

#[test]
fn rotate_after_a_non_fast_forward_push_converges_once_pulled() {
    let s = Setup::new();
    // Someone else pushes to main first.
    let other = s.dir.path().join("other");
    git(
        s.dir.path(),
        &["clone", "-q", s.bare.to_str().unwrap(), "other"],
    );
    std::fs::write(other.join("README.md"), "someone else\n").unwrap();
    git(&other, &["add", "README.md"]);
    git(&other, &["commit", "-q", "-m", "Other change"]);
    git(&other, &["push", "-q", "origin", "main"]);
    let remote_before = s.remote_log("main");

    let out = s.rotate(&["--cert", cert()]);
    // Progress lines come first (sealed, committed, pushing); the failure is one line.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert_eq!(stderr.lines().last(), Some(errors[0]), "{stderr}");
    assert!(
        errors[0].contains("non-fast-forward") && errors[0].contains("git pull --rebase"),
        "{stderr}"
    );
    assert_eq!(s.remote_log("main"), remote_before, "remote unchanged");
    // The rotation is committed locally; after pulling, a re-run pushes it with a new one.
    let local = git(&s.work, &["log", "-1", "--format=%s"]);
    assert_eq!(local.trim(), "Rotate credentials - prod");
    git(&s.work, &["pull", "-q", "--rebase", "origin", "main"]);
    s.rotate_ok(&["--cert", cert()]);
    let after = s.remote_log("main");
    assert_eq!(after.len(), remote_before.len() + 2);
    for c in &after[..2] {
        assert_eq!(changed_files(&s.bare, c), [SEALED]);
    }
    assert_unseals_to_credentials(&s.bare, "main");
    assert_no_plaintext(&s.bare, "main");
}

#[test]
fn rotate_refuses_bad_state_with_one_line_errors() {
    let s = Setup::new();
    let remote_before = s.remote_log("main");
    let prod = s.work.join("clusters/prod");

    // No kubeconfig and no --cert.
    let out = s.rotate(&[]);
    assert_one_line_error(&out, "clusters/prod/kubeconfig: missing");
    assert_one_line_error(&out, "--cert");

    // A certificate file that is not one.
    let bogus = s.dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate\n").unwrap();
    let out = s.rotate(&["--cert", bogus.to_str().unwrap()]);
    assert_one_line_error(&out, "bogus.pem");

    // Placeholders left in.
    std::fs::write(
        prod.join("credentials.yaml"),
        credentials_yaml().replace(SECRET_VALUE, "REPLACE_ME"),
    )
    .unwrap();
    let out = s.rotate(&["--cert", cert()]);
    assert_one_line_error(
        &out,
        "credentials.yaml: clouds.openstack.auth.application_credential_secret still holds",
    );

    // No credentials.yaml.
    std::fs::remove_file(prod.join("credentials.yaml")).unwrap();
    let out = s.rotate(&["--cert", cert()]);
    assert_one_line_error(&out, "clusters/prod/credentials.yaml");
    assert_one_line_error(&out, "is missing");
    std::fs::write(prod.join("credentials.yaml"), credentials_yaml()).unwrap();

    // An unknown cluster.
    let out = capi_manage()
        .args(["rotate", "nope", "--cert", cert(), "--repo"])
        .arg(&s.work)
        .output()
        .unwrap();
    assert_one_line_error(&out, "clusters/nope: no such cluster");

    // Detached HEAD.
    git(&s.work, &["switch", "-q", "--detach", "main"]);
    let out = s.rotate(&["--cert", cert()]);
    assert_one_line_error(&out, "HEAD is detached");
    git(&s.work, &["switch", "-q", "main"]);

    // No origin and no --remote-url.
    git(&s.work, &["remote", "remove", "origin"]);
    let out = s.rotate(&["--cert", cert()]);
    assert_one_line_error(&out, "no remote `origin`");

    // Nothing was committed or pushed by the failures, and the sealed file was never written.
    assert_eq!(s.remote_log("main"), remote_before);
    assert_eq!(rev_parse(&s.work, "main"), Some(remote_before[0].clone()));
    assert!(!s.work.join(SEALED).exists());

    // --remote-url stands in for origin.
    s.rotate_ok(&["--cert", cert(), "--remote-url", s.bare.to_str().unwrap()]);
    assert_eq!(s.remote_log("main").len(), remote_before.len() + 1);
    assert_unseals_to_credentials(&s.bare, "main");
}

/// The certificate comes through `clusters/prod/kubeconfig` from the real sealed-secrets
/// controller, which then unseals the pushed file into the credentials Secret.
#[tokio::test(flavor = "multi_thread")]
async fn rotate_seals_with_the_certificate_of_the_clusters_controller() {
    let mut controller = crate::seal::controller::start().await;
    controller.expose().await;
    let s = Setup::new();
    std::fs::copy(
        controller.kubeconfig(),
        s.work.join("clusters/prod/kubeconfig"),
    )
    .unwrap();

    let work = s.work.clone();
    let home = s.dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        capi_manage()
            .args(["rotate", CLUSTER])
            .current_dir(&work)
            .env("HOME", home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The kubeconfig stays out of git.
    let files = git(&s.bare, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(!files.contains("kubeconfig"), "{files}");
    assert_eq!(changed_files(&s.bare, "main"), [SEALED]);

    let sealed = git(&s.bare, &["show", &format!("main:{SEALED}")]);
    let namespace = capi_manage::manifest::Object::new(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "capi-self"}}),
    );
    capi_manage::kube::apply(
        &capi_manage::kube::Discovery::new(controller.cp.client().await),
        &[namespace],
        &Default::default(),
        &capi_manage::observe::Silent,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    controller.apply_sealed(&sealed).await;
    let made = controller
        .wait_secret("capi-self", "prod-cloud-credentials")
        .await;
    let data = made.data.unwrap();
    assert_eq!(
        String::from_utf8(data["clouds.yaml"].0.clone()).unwrap(),
        clouds_yaml()
    );
    assert_no_plaintext(&s.bare, "main");
}

#[test]
fn a_second_run_on_the_same_cluster_is_refused_naming_the_holder() {
    let s = Setup::new();
    let state = s.work.join("clusters").join(CLUSTER).join(".capi-manage");
    let held = capi_manage::repo::lock_state_dir(&state).unwrap();
    let before = rev_parse(&s.bare, "main");
    let holder = format!("locked by process {} (", std::process::id());

    let out = s.rotate(&["--cert", cert()]);
    assert_one_line_error(&out, &holder);
    let work = s.work.display().to_string();
    for command in ["bootstrap", "teardown"] {
        let out = capi_manage()
            .args([
                command,
                CLUSTER,
                "--repo",
                &work,
                "--yes",
                "--skip-cloud-preflight",
                "--ignore-preflight-errors=all",
                // No engine: the preflight warns instead of asking a registry.
                "--docker-host",
                "tcp://127.0.0.1:9",
            ])
            .output()
            .unwrap();
        // The preflight's warnings, then the one error line.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ") && last.contains(&holder),
            "{stderr}"
        );
    }
    assert_eq!(rev_parse(&s.bare, "main"), before);
    assert!(
        !s.work
            .join(format!("clusters/{CLUSTER}/credentials-sealed.yaml"))
            .exists()
    );

    // Freed when the holder ends: the run goes through.
    drop(held);
    s.rotate_ok(&["--cert", cert()]);
}

#[test]
fn credentials_in_the_remote_url_are_used_and_never_printed() {
    let s = Setup::new();
    const TOKEN: &str = "tok-9f8e7d6c5b4a";
    let server = git_server::HttpServer::start(s.dir.path(), Some(("deployer", TOKEN)));
    let url = server
        .url("server.git")
        .replacen("http://", &format!("http://deployer:{TOKEN}@"), 1);
    let before = rev_parse(&s.bare, "main");
    let out = s.rotate(&["--cert", cert(), "--remote-url", &url]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{printed}");
    assert_ne!(
        rev_parse(&s.bare, "main"),
        before,
        "pushed with the URL's credentials"
    );
    assert!(!printed.contains(TOKEN), "the token was printed: {printed}");
    assert!(printed.contains(&server.url("server.git")), "{printed}");

    // A wrong token fails, and the message names the URL without it either.
    let wrong = url.replace(TOKEN, "tok-wrong-0000");
    let out = s.rotate(&["--cert", cert(), "--remote-url", &wrong]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(!printed.contains("tok-wrong-0000"), "{printed}");
}
