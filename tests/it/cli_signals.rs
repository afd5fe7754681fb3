//! Ctrl-C reaches the real binary while a request is in flight: `move`, `rotate` and
//! `bootstrap` each talk to a peer on loopback that accepts the connection and never answers;
//! SIGINT then ends the run within seconds with exit 130 and the command that resumes it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::git_server::{self, git};
use crate::support::{capi_manage, project_root};

/// A TCP server on 127.0.0.1 that accepts every connection, reads nothing and answers nothing.
/// Each accepted connection is announced on the receiver and kept open until the test ends.
struct Silent {
    port: u16,
    accepted: mpsc::Receiver<()>,
}

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, accepted) = mpsc::channel();
        std::thread::spawn(move || {
            let mut open: Vec<TcpStream> = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                open.push(stream);
                if tx.send(()).is_err() {
                    return;
                }
            }
        });
        Silent { port, accepted }
    }
}

/// A kubeconfig whose only cluster is `server`, with no credentials to send.
fn kubeconfig(dir: &Path, name: &str, server: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    path
}

/// Sends SIGINT to `child` once `silent` saw its connection, then waits at most 10 s for it to
/// exit. Returns its exit code, stderr and how long it took after the signal.
fn interrupt(mut child: Child, silent: &Silent) -> (Option<i32>, String, Duration) {
    if silent
        .accepted
        .recv_timeout(Duration::from_secs(30))
        .is_err()
    {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "the binary never connected to 127.0.0.1:{}: {}",
            silent.port,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Give the request time to be on the wire, not just connected.
    std::thread::sleep(Duration::from_millis(300));
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on the pid of a child we have not reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let signalled = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if signalled.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running 10 s after SIGINT: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = signalled.elapsed();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
    )
}

/// Exit 130 within a few seconds, and the last line of stderr is the error naming the command
/// that resumes the run.
fn assert_interrupted((code, stderr, elapsed): (Option<i32>, String, Duration), resume: &str) {
    assert_eq!(code, Some(130), "{stderr}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}: {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{stderr}");
    assert!(last.contains(&format!("`{resume}")), "{resume}: {stderr}");
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn ctrl_c_ends_a_move_whose_apiserver_never_answers() {
    let dir = tempfile::tempdir().unwrap();
    let silent = Silent::start();
    let server = format!("https://127.0.0.1:{}", silent.port);
    let from = kubeconfig(dir.path(), "from", &server);
    let to = kubeconfig(dir.path(), "to", &server);
    let child = spawn(
        capi_manage()
            .arg("move")
            .arg("--from-kubeconfig")
            .arg(&from)
            .arg("--to-kubeconfig")
            .arg(&to)
            .args(["-n", "capi-self"]),
    );
    let result = interrupt(child, &silent);
    assert_interrupted(result, "capi-manage move --from-kubeconfig");
}

#[test]
fn ctrl_c_ends_a_dry_run_move_and_a_plain_http_apiserver_too() {
    let dir = tempfile::tempdir().unwrap();
    let silent = Silent::start();
    let from = kubeconfig(
        dir.path(),
        "from",
        &format!("http://127.0.0.1:{}", silent.port),
    );
    let child = spawn(
        capi_manage()
            .args(["move", "--dry-run", "--from-kubeconfig"])
            .arg(&from),
    );
    assert_interrupted(interrupt(child, &silent), "capi-manage move --dry-run");
}

/// Runs `cmd` to its end, killing it after 20 s. Returns exit code, stderr and duration.
fn run_bounded(cmd: &mut Command) -> (Option<i32>, String, Duration) {
    let start = Instant::now();
    let mut child = spawn(cmd);
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after 20 s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = start.elapsed();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
    )
}

/// --request-timeout ends a request the server never answers, and --connect-timeout a TLS
/// handshake the server never answers, without Ctrl-C; a bad duration is bad usage.
#[test]
fn timeouts_end_requests_that_are_never_answered() {
    let dir = tempfile::tempdir().unwrap();
    let silent = Silent::start();
    for (scheme, flag) in [
        ("http", "--request-timeout"),
        ("https", "--connect-timeout"),
    ] {
        let kc = kubeconfig(
            dir.path(),
            scheme,
            &format!("{scheme}://127.0.0.1:{}", silent.port),
        );
        let (code, stderr, elapsed) = run_bounded(
            capi_manage()
                .args(["move", "--dry-run", flag, "1s", "--from-kubeconfig"])
                .arg(&kc),
        );
        assert_eq!(code, Some(1), "{flag}: {stderr}");
        assert!(elapsed < Duration::from_secs(10), "{flag}: {elapsed:?}");
        assert!(
            stderr.contains("cannot list CustomResourceDefinitions on the source cluster"),
            "{flag}: {stderr}"
        );
    }
    let out = capi_manage()
        .args(["move", "--dry-run", "--request-timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad duration is bad usage");
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

/// A work repository holding cluster `prod` (from clusters/example, committed) with filled-in
/// credentials, whose `origin` is `origin`.
fn cluster_repo(dir: &Path, origin: &str) -> PathBuf {
    let work = git_server::work_repo(dir, "work");
    let root = project_root();
    copy_dir(&root.join("clusters/bases"), &work.join("clusters/bases"));
    copy_dir(
        &root.join("vendor-manifests"),
        &work.join("vendor-manifests"),
    );
    let prod = work.join("clusters/prod");
    copy_dir(&root.join("clusters/example"), &prod);
    for f in ["kustomization.yaml", "values.yaml"] {
        let text = std::fs::read_to_string(prod.join(f)).unwrap();
        std::fs::write(prod.join(f), text.replace("example", "prod")).unwrap();
    }
    std::fs::copy(root.join(".gitignore"), work.join(".gitignore")).unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "Add cluster prod"]);
    git(&work, &["remote", "add", "origin", origin]);
    std::fs::write(
        prod.join("credentials.yaml"),
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: prod-cloud-credentials\n  namespace: capi-self\n  labels:\n    addons.stackhpc.com/watch: \"true\"\n  annotations:\n    sealedsecrets.bitnami.com/managed: \"true\"\ntype: Opaque\nstringData:\n  clouds.yaml: |\n    clouds:\n      openstack:\n        auth:\n          auth_url: https://keystone.example.com:5000/v3\n          application_credential_id: 0a1b2c\n          application_credential_secret: s3cr3t\n        region_name: RegionOne\n        interface: public\n        identity_api_version: 3\n        auth_type: v3applicationcredential\n",
    )
    .unwrap();
    work
}

fn in_repo(cmd: &mut Command, home: &Path, work: &Path) {
    cmd.current_dir(work)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("CAPI_MANAGE_GIT_TOKEN")
        .env_remove("CAPI_MANAGE_GIT_USERNAME")
        .env_remove("CAPI_MANAGE_GIT_PASSWORD");
}

/// Through origin, then through --remote-url with a token in it: the resume command leaves the
/// token out.
#[test]
fn ctrl_c_ends_a_rotate_whose_git_server_never_answers() {
    let dir = tempfile::tempdir().unwrap();
    let silent = Silent::start();
    let url = format!("http://127.0.0.1:{}/config.git", silent.port);
    let work = cluster_repo(dir.path(), &url);
    let cert = crate::seal::keys().cert.clone();
    let mut cmd = capi_manage();
    cmd.args(["rotate", "prod", "--cert"]).arg(&cert);
    in_repo(&mut cmd, dir.path(), &work);
    let child = spawn(&mut cmd);
    assert_interrupted(interrupt(child, &silent), "capi-manage rotate prod");

    let with_token = url.replace("http://", "http://capi:t0ken-s3cret@");
    let mut cmd = capi_manage();
    cmd.args(["rotate", "prod", "--cert"])
        .arg(&cert)
        .arg(format!("--remote-url={with_token}"));
    in_repo(&mut cmd, dir.path(), &work);
    let result = interrupt(spawn(&mut cmd), &silent);
    let stderr = result.1.clone();
    assert_interrupted(result, "capi-manage rotate prod");
    assert!(stderr.contains(&format!("--remote-url={url}")), "{stderr}");
    assert!(!stderr.contains("t0ken"), "{stderr}");
}

/// --request-timeout also bounds the wait for the Docker engine.
#[test]
fn request_timeout_ends_a_bootstrap_whose_docker_engine_never_answers() {
    let dir = tempfile::tempdir().unwrap();
    let silent = Silent::start();
    let work = cluster_repo(dir.path(), "git@git.example.com:org/config.git");
    let mut cmd = capi_manage();
    cmd.args([
        "bootstrap",
        "prod",
        "--yes",
        "--skip-cloud-preflight",
        "--request-timeout",
        "1s",
        "--docker-host",
    ])
    .arg(format!("tcp://127.0.0.1:{}", silent.port));
    in_repo(&mut cmd, dir.path(), &work);
    let (code, stderr, elapsed) = run_bounded(&mut cmd);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}: {stderr}");
    assert!(
        stderr.contains(&format!(
            "negotiate the API version with tcp://127.0.0.1:{}",
            silent.port
        )),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_ends_a_bootstrap_whose_docker_engine_never_answers() {
    let dir = tempfile::tempdir().unwrap();
    let silent = Silent::start();
    let work = cluster_repo(dir.path(), "git@git.example.com:org/config.git");
    let mut cmd = capi_manage();
    cmd.args([
        "bootstrap",
        "prod",
        "--yes",
        "--skip-cloud-preflight",
        "--docker-host",
    ])
    .arg(format!("tcp://127.0.0.1:{}", silent.port));
    in_repo(&mut cmd, dir.path(), &work);
    let child = spawn(&mut cmd);
    assert_interrupted(interrupt(child, &silent), "capi-manage bootstrap prod");
}
