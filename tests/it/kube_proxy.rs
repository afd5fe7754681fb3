//! Proxies, as kubectl uses them: the real binary against a real kube-apiserver, with a dead
//! `HTTPS_PROXY` (loopback and `NO_PROXY` servers are reached directly), and with a kubeconfig
//! `proxy-url` naming an HTTP CONNECT proxy on loopback (every connection goes through it).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::support::{self, ControlPlane, Options};

/// An HTTP CONNECT proxy on loopback that records the targets it was asked for.
struct ConnectProxy {
    port: u16,
    targets: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let seen = targets.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || tunnel(client, &seen));
            }
        });
        ConnectProxy { port, targets }
    }
}

fn tunnel(client: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["CONNECT", target, _] => target.to_string(),
        _ => return,
    };
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    seen.lock().unwrap().push(target.clone());
    let Ok(upstream) = TcpStream::connect(&target) else {
        let _ = (&client).write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    (&client)
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .unwrap();
    let (mut c_read, mut u_write) = (reader, upstream.try_clone().unwrap());
    let (mut u_read, mut c_write) = (upstream, client);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

/// `capi-manage apply` of one ConfigMap with `env`; its exit status and stderr.
fn apply(kubeconfig: &Path, manifest: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = support::capi_manage();
    cmd.args(["apply", "-f"])
        .arg(manifest)
        .arg("--kubeconfig")
        .arg(kubeconfig);
    for v in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_dead_https_proxy_is_not_used_for_loopback_and_a_kubeconfig_proxy_url_is() {
    let cp = ControlPlane::start_with(Options::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: proxied\n  namespace: default\ndata:\n  a: \"1\"\n",
    )
    .unwrap();
    let dead = "http://127.0.0.1:9";

    // A dead proxy in the environment: the loopback server is reached directly, with or
    // without NO_PROXY (kube's own reading would refuse the proxy, or use it).
    for no_proxy in [Some("127.0.0.1,localhost"), None] {
        let mut env = vec![("HTTPS_PROXY", dead), ("HTTP_PROXY", dead)];
        env.extend(no_proxy.map(|n| ("NO_PROXY", n)));
        let (ok, err) = apply(cp.kubeconfig_path(), &manifest, &env);
        assert!(ok, "NO_PROXY {no_proxy:?}: {err}");
    }

    // The kubeconfig's proxy-url wins over the environment and loopback: every connection
    // goes through the CONNECT proxy.
    let text = std::fs::read_to_string(cp.kubeconfig_path()).unwrap();
    let server_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("server:"))
        .unwrap()
        .to_string();
    let server = server_line.split("://").nth(1).unwrap().trim().to_string();
    let with_proxy = |url: &str| {
        let indent = &server_line[..server_line.len() - server_line.trim_start().len()];
        text.replace(
            &server_line,
            &format!("{server_line}\n{indent}proxy-url: {url}"),
        )
    };
    let proxy = ConnectProxy::start();
    let kc = tmp.path().join("proxied-kubeconfig");
    std::fs::write(&kc, with_proxy(&format!("http://127.0.0.1:{}", proxy.port))).unwrap();
    let (ok, err) = apply(&kc, &manifest, &[("NO_PROXY", "*")]);
    assert!(ok, "{err}");
    let targets = proxy.targets.lock().unwrap().clone();
    assert!(!targets.is_empty(), "no connection went through the proxy");
    assert!(
        targets.iter().all(|t| *t == server),
        "{targets:?} vs {server}"
    );

    // A dead proxy-url: the command fails at the proxy.
    std::fs::write(&kc, with_proxy(dead)).unwrap();
    let (ok, err) = apply(&kc, &manifest, &[]);
    assert!(!ok, "applied through a dead proxy");
    assert!(err.contains("tunnel"), "{err}");
}
