//! The preflight on a fresh fork: template credentials, no vendored files, no Docker engine and
//! a remote that does not answer. One `bootstrap` run lists every problem, in under 2 seconds,
//! and creates nothing (checked through the Docker API); then each fix clears its line.
//! Uses the real dockerd: run under `flock /work/docker.lock` with the other Docker tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use capi_manage::bootstrap::{self, CheckStatus, Operation, Options, Preflight};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::docker as sd;
use crate::support::git_server::{self, HttpServer, git};
use crate::support::release_mirror::{Mirror, release_files};
use crate::support::{capi_manage, free_port, project_root};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A fork as it is cloned: clusters/ (the example with the template's credentials) and
/// vendor-manifests/vendor.toml alone, committed on `main`, `origin` at `origin`.
fn fresh_fork(dir: &Path, origin: &str) -> PathBuf {
    let work = git_server::work_repo(dir, "work");
    let root = project_root();
    copy_dir(&root.join("clusters"), &work.join("clusters"));
    std::fs::create_dir_all(work.join("vendor-manifests")).unwrap();
    std::fs::copy(
        root.join("vendor-manifests/vendor.toml"),
        work.join("vendor-manifests/vendor.toml"),
    )
    .unwrap();
    std::fs::copy(root.join(".gitignore"), work.join(".gitignore")).unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "fork"]);
    git(&work, &["remote", "add", "origin", origin]);
    work
}

/// `vendor-manifests/` rendered from a mirror of the releases with the project's pins.
async fn vendor_into(work: &Path) {
    let mirror = Mirror::start(release_files());
    capi_manage::components::vendor(
        work,
        &capi_manage::components::VendorOptions {
            trust_mirror_for_new_assets: true,
            mirror: Some(mirror.base.clone()),
            ..Default::default()
        },
        &capi_manage::observe::Silent,
        &CancellationToken::new(),
    )
    .await
    .expect("vendor from the mirror");
}

fn problems(p: &Preflight) -> BTreeSet<&'static str> {
    p.problems().map(|c| c.id).collect()
}

fn set(ids: &[&'static str]) -> BTreeSet<&'static str> {
    ids.iter().copied().collect()
}

async fn run(o: &Options) -> Preflight {
    bootstrap::preflight(o, Operation::Bootstrap, true, &CancellationToken::new())
        .await
        .unwrap()
}

/// Names of the containers (all states) whose name holds `part`.
async fn containers_named(docker: &bollard::Docker, part: &str) -> Vec<String> {
    let mut filters = std::collections::HashMap::new();
    filters.insert("name".to_string(), vec![part.to_string()]);
    docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap()
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn a_fresh_fork_gets_every_problem_at_once_and_each_fix_clears_its_line() {
    let _serial = crate::kind::SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let remote = format!("http://127.0.0.1:{}/config.git", free_port());
    let no_docker = format!("tcp://127.0.0.1:{}", free_port());
    let work = fresh_fork(dir, &remote);
    let kind_name = format!("capi-preflight-{}", std::process::id());

    // One run of the binary: every problem, each with its fix, nothing created.
    let started = Instant::now();
    let out = capi_manage()
        .args(["bootstrap", "example", "--yes", "-o", "json", "--kind-name"])
        .arg(&kind_name)
        .arg("--docker-host")
        .arg(&no_docker)
        .current_dir(&work)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("CAPI_MANAGE_GIT_TOKEN")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        elapsed < Duration::from_secs(2),
        "{elapsed:?}\n{stdout}\n{stderr}"
    );
    let checks: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "preflight")
        .collect();
    let with = |status: &str| -> BTreeSet<String> {
        checks
            .iter()
            .filter(|c| c["status"] == status)
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    let want: BTreeSet<String> = ["components", "credentials", "docker", "git-remote"]
        .map(String::from)
        .into();
    assert_eq!(with("problem"), want, "{stdout}");
    assert!(with("ok").contains("config"), "{stdout}");
    for c in checks.iter().filter(|c| c["status"] == "problem") {
        assert!(
            c["fix"].as_str().is_some_and(|f| !f.is_empty()),
            "no fix: {c}"
        );
    }
    let by_id = |id: &str| checks.iter().find(|c| c["id"] == id).unwrap().clone();
    assert!(
        by_id("components")["detail"]
            .as_str()
            .unwrap()
            .contains("vendor.lock"),
        "{stdout}"
    );
    assert!(
        by_id("credentials")["detail"]
            .as_str()
            .unwrap()
            .contains("REPLACE_ME"),
        "{stdout}"
    );
    assert!(
        by_id("docker")["detail"]
            .as_str()
            .unwrap()
            .contains(&no_docker),
        "{stdout}"
    );
    assert!(
        by_id("git-remote")["detail"]
            .as_str()
            .unwrap()
            .contains(&remote),
        "{stdout}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("the preflight found 4 problem(s), nothing was created"),
        "{stderr}"
    );
    assert!(!work.join("clusters/example/.capi-manage").exists());
    let docker = sd::engine().await;
    assert_eq!(
        sd::containers_labelled(&docker, capi_manage::kind::CLUSTER_LABEL, &kind_name).await,
        Vec::<String>::new()
    );
    assert_eq!(
        containers_named(&docker, &kind_name).await,
        Vec::<String>::new()
    );

    // `plan` shows the same checks offline: the remote is not asked, and plan only reports.
    let out = capi_manage()
        .args(["plan", "example", "-o", "json", "--docker-host", &no_docker])
        .current_dir(&work)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let plan_problems: BTreeSet<String> = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["event"] == "preflight" && v["status"] == "problem")
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        plan_problems,
        ["components", "credentials", "docker"]
            .map(String::from)
            .into(),
        "{stdout}"
    );

    // The same checks through the library; each fix clears its line.
    let mut o = Options::new(&work, "example");
    o.kind.name = kind_name.clone();
    o.kind.docker_host = Some(no_docker.clone());
    // Pulls stay on loopback: a registry that is not there.
    o.kind.image = format!("127.0.0.1:{}/kindest/node:v1.35.0", free_port());
    let p = run(&o).await;
    assert_eq!(
        problems(&p),
        set(&["components", "credentials", "docker", "git-remote"]),
        "{p:#?}"
    );
    // inotify: what the kernel says, against kind's numbers (a warning: it does not stop
    // the run).
    let inotify = p.checks.iter().find(|c| c.id == "inotify").unwrap();
    assert_eq!(
        inotify,
        &bootstrap::inotify_from(Path::new("/proc/sys/fs/inotify"))
    );
    assert_ne!(inotify.status, CheckStatus::Problem);

    vendor_into(&work).await;
    assert_eq!(
        problems(&run(&o).await),
        set(&["credentials", "docker", "git-remote"])
    );

    let creds = work.join("clusters/example/credentials.yaml");
    let text = std::fs::read_to_string(&creds).unwrap();
    std::fs::write(
        &creds,
        text.replace("https://REPLACE_ME:5000/v3", "https://127.0.0.1:5000/v3")
            .replace("REPLACE_ME", "0a1b2c3d"),
    )
    .unwrap();
    // The cloud is checked now that the credentials are filled in; it is not here.
    o.cloud_preflight = None;
    assert_eq!(problems(&run(&o).await), set(&["docker", "git-remote"]));

    // A Docker engine: the node image it lacks shows up (its registry does not answer).
    o.kind.docker_host = Some(sd::docker_host());
    let p = run(&o).await;
    assert_eq!(problems(&p), set(&["node-image", "git-remote"]), "{p:#?}");
    let image_line = p.problems().find(|c| c.id == "node-image").unwrap();
    assert!(image_line.detail.contains(&o.kind.image), "{image_line}");
    let stand_in = sd::build_stand_in(&docker, &sd::StandIn::default()).await;
    o.kind.image = stand_in.image.clone();
    let p = run(&o).await;
    assert_eq!(problems(&p), set(&["git-remote"]), "{p:#?}");

    // A git server that answers and lets us push.
    let served = dir.join("served");
    git_server::bare_repo(&served, "config.git");
    let http = HttpServer::start(&served, None);
    git(
        &work,
        &["remote", "set-url", "origin", &http.url("config.git")],
    );
    let p = run(&o).await;
    assert!(p.is_ok(), "{p:#?}");
    let remote_line = p.checks.iter().find(|c| c.id == "git-remote").unwrap();
    assert_eq!(remote_line.status, CheckStatus::Ok);
    assert!(remote_line.detail.contains("new there"), "{remote_line}");
    // The handshake updated nothing there.
    assert_eq!(
        git_server::rev_parse(&served.join("config.git"), "main"),
        None
    );
    assert!(!work.join("clusters/example/.capi-manage").exists());
    assert_eq!(
        containers_named(&docker, &kind_name).await,
        Vec::<String>::new()
    );
}

/// A bootstrap whose first step fails on purpose (the kind node comes up, but its kubeconfig
/// names a CA that is no certificate: the step cannot connect to its API server) writes a support bundle named in the error, with
/// the node's logs, the state file and the error, and without the credentials' secret.
#[tokio::test]
async fn a_failed_step_leaves_a_support_bundle_without_secrets() {
    let _serial = crate::kind::SERIAL.lock().await;
    let kind_name = "capi-bundle";
    let _cleanup = crate::kind::clean(kind_name).await;
    let docker = sd::engine().await;
    let stand_in = sd::build_stand_in(&docker, &sd::StandIn::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let served = dir.join("served");
    git_server::bare_repo(&served, "config.git");
    let http = HttpServer::start(&served, None);
    let work = fresh_fork(dir, &http.url("config.git"));
    vendor_into(&work).await;
    let secret = format!("app-cred-secret-{}", std::process::id());
    let creds = work.join("clusters/example/credentials.yaml");
    let text = std::fs::read_to_string(&creds).unwrap();
    std::fs::write(
        &creds,
        text.replace("https://REPLACE_ME:5000/v3", "https://127.0.0.1:5000/v3")
            .replace(
                "application_credential_secret: REPLACE_ME",
                &format!("application_credential_secret: {secret}"),
            )
            .replace("REPLACE_ME", "0a1b2c3d"),
    )
    .unwrap();

    let out = capi_manage()
        .args(["bootstrap", "example", "--yes", "--skip-cloud-preflight"])
        .args(["--kind-name", kind_name, "--node-image", &stand_in.image])
        .args(["--docker-host", &sd::docker_host()])
        .arg("--test-only-node-capabilities")
        .arg(sd::test_capabilities().join(","))
        .args([
            "--timeout",
            "20",
            "--connect-timeout",
            "3s",
            "--request-timeout",
            "5s",
        ])
        .current_dir(&work)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    let state_dir = work.join("clusters/example/.capi-manage");
    let bundles: Vec<PathBuf> = std::fs::read_dir(&state_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("support-")
        })
        .collect();
    assert_eq!(bundles.len(), 1, "{stderr}");
    let bundle = &bundles[0];
    assert!(
        last.contains("step kind-cluster") && last.contains(&bundle.display().to_string()),
        "{stderr}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(bundle).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let files = crate::support::untar(bundle);
    let names: Vec<&String> = files.keys().collect();
    for want in [
        "README.txt",
        "error.txt",
        "state.json",
        "node/docker-logs.txt",
    ] {
        assert!(files.contains_key(want), "{want} not in {names:?}");
    }
    // The node's own output: the stand-in's boot line, as systemd prints it in a real node.
    assert!(
        files["node/docker-logs.txt"]
            .lines()
            .any(capi_manage_boot_line),
        "{}",
        files["node/docker-logs.txt"]
    );
    let state: Value = serde_json::from_str(&files["state.json"]).unwrap();
    assert_eq!(
        state,
        serde_json::from_slice::<Value>(&std::fs::read(state_dir.join("state.json")).unwrap())
            .unwrap()
    );
    assert!(
        files["error.txt"].contains("step kind-cluster") && files["error.txt"].contains("PEM"),
        "{}",
        files["error.txt"]
    );
    // What could not be gathered is said, not hidden.
    assert!(
        files["README.txt"].contains("not gathered: kind:"),
        "{}",
        files["README.txt"]
    );
    for (name, text) in &files {
        assert!(!text.contains(&secret), "{name} holds the secret");
    }
    let raw = std::fs::read(bundle).unwrap();
    let mut all = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut all).unwrap();
    assert!(!all.windows(secret.len()).any(|w| w == secret.as_bytes()));
    drop(stand_in);
}

/// A line systemd prints once the node has booted (what kind waits for).
fn capi_manage_boot_line(line: &str) -> bool {
    line.contains("Reached target") || line.contains("multi-user")
}

/// Over SSH (OpenSSH's sshd on loopback): an unknown host key is its own problem, with its
/// fingerprint and fix; `--accept-new-host-key` records it and the receive-pack handshake then
/// proves push access, pushing nothing; a key the server refuses is a `git-remote` problem.
#[tokio::test]
async fn over_ssh_the_host_key_and_push_access_are_checked_without_pushing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let sshd = git_server::Sshd::start(dir);
    let bare = git_server::bare_repo(dir, "config.git");
    let work = fresh_fork(dir, &sshd.url(&bare));
    let known_hosts = dir.join("known_hosts");
    std::fs::write(&known_hosts, "").unwrap();
    let mut o = Options::new(&work, "example");
    o.cloud_preflight = None;
    o.kind.docker_host = Some(format!("tcp://127.0.0.1:{}", free_port()));
    o.git.ssh.identity_files = vec![sshd.client_key.clone()];
    o.git.ssh.no_agent = true;
    o.git.ssh.known_hosts = Some(known_hosts.clone());
    let check = |p: &Preflight, id: &str| p.checks.iter().find(|c| c.id == id).unwrap().clone();

    let p = run(&o).await;
    let host = check(&p, "host-key");
    assert_eq!(host.status, CheckStatus::Problem, "{p:#?}");
    assert!(host.detail.contains("SHA256:"), "{host}");
    assert!(
        host.fix
            .as_deref()
            .unwrap()
            .contains("--accept-new-host-key"),
        "{host}"
    );
    assert_eq!(check(&p, "git-remote").status, CheckStatus::Skipped);
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), "");

    o.git.ssh.accept_new_host_key = true;
    let p = run(&o).await;
    assert_eq!(check(&p, "host-key").status, CheckStatus::Ok, "{p:#?}");
    let remote = check(&p, "git-remote");
    assert_eq!(remote.status, CheckStatus::Ok, "{p:#?}");
    assert!(remote.detail.contains("refs/heads/main"), "{remote}");
    assert!(
        std::fs::read_to_string(&known_hosts)
            .unwrap()
            .contains(&format!("[127.0.0.1]:{}", sshd.port))
    );
    assert_eq!(git_server::rev_parse(&bare, "main"), None);

    // A key the server does not know.
    let other = dir.join("other_key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    o.git.ssh.identity_files = vec![other];
    let p = run(&o).await;
    assert_eq!(check(&p, "host-key").status, CheckStatus::Ok, "{p:#?}");
    let remote = check(&p, "git-remote");
    assert_eq!(remote.status, CheckStatus::Problem, "{p:#?}");
    assert!(
        remote.fix.as_deref().unwrap().contains("--ssh-identity"),
        "{remote}"
    );
}

/// Teardown needs the cluster's kubeconfig: missing, it is a problem; one that reaches a real
/// API server passes; one whose server is gone is a problem again.
#[tokio::test]
async fn teardown_checks_that_the_kubeconfig_exists_and_connects() {
    let tmp = tempfile::tempdir().unwrap();
    let work = fresh_fork(
        tmp.path(),
        &format!("http://127.0.0.1:{}/c.git", free_port()),
    );
    let mut o = Options::new(&work, "example");
    o.cloud_preflight = None;
    o.kind.docker_host = Some(format!("tcp://127.0.0.1:{}", free_port()));
    let kubeconfig_check =
        |p: Preflight| p.checks.into_iter().find(|c| c.id == "kubeconfig").unwrap();
    let teardown = |o: Options| async move {
        bootstrap::preflight(&o, Operation::Teardown, true, &CancellationToken::new())
            .await
            .unwrap()
    };
    let c = kubeconfig_check(teardown(o.clone()).await);
    assert_eq!(c.status, CheckStatus::Problem, "{c}");
    assert!(
        c.detail.contains("clusters/example/kubeconfig is missing"),
        "{c}"
    );

    let mut cp = crate::support::ControlPlane::start().await;
    let path = work.join("clusters/example/kubeconfig");
    std::fs::copy(cp.kubeconfig_path(), &path).unwrap();
    let c = kubeconfig_check(teardown(o.clone()).await);
    assert_eq!(c.status, CheckStatus::Ok, "{c}");
    assert!(c.detail.contains("reaches Kubernetes v"), "{c}");

    cp.kill_apiserver();
    o.timeouts.connect = Some(Duration::from_secs(2));
    o.timeouts.request = Some(Duration::from_secs(2));
    let c = kubeconfig_check(teardown(o).await);
    assert_eq!(c.status, CheckStatus::Problem, "{c}");
}
