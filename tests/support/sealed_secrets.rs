//! The REAL sealed-secrets controller (built from its Go module) against a test control plane.
//!
//! The controller only runs in-cluster: it reads the service-account token and CA from the
//! path client-go hard-codes, so each controller runs in a private mount namespace
//! (`unshare -m`) where its own directory is bind-mounted there; parallel tests do not clash.

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use super::{ControlPlane, Process, free_port, test_bin};

const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Starts the controller for namespace `ns` (which must exist) and waits until its key Secret
/// exists and its HTTP server answers on loopback.
pub async fn start_controller(cp: &ControlPlane, ns: &str) -> Process {
    let sa = cp.dir().join(format!("serviceaccount-{ns}"));
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::write(sa.join("token"), cp.admin_token()).unwrap();
    std::fs::write(sa.join("ca.crt"), cp.ca_pem()).unwrap();
    std::fs::write(sa.join("namespace"), ns).unwrap();

    // Loopback only: tests send no traffic to any other address.
    let ip = IpAddr::from([127, 0, 0, 1]);
    let port = free_port();
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mkdir -p {SA_DIR} && mount --bind \"$0\" {SA_DIR} && exec \"$@\""
        ))
        .arg(&sa)
        .arg(test_bin("sealed-secrets-controller"))
        .arg(format!("--listen-addr={ip}:{port}"))
        .arg(format!("--listen-metrics-addr=127.0.0.1:{}", free_port()))
        .arg("--key-renew-period=0")
        // 2048 bits: generating the default 4096-bit key takes long on a loaded machine.
        .arg("--key-size=2048")
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", cp.port().to_string())
        .env("POD_NAMESPACE", ns);
    let mut process = Process::spawn(
        "sealed-secrets-controller",
        cmd,
        &cp.dir().join(format!("sealed-secrets-controller-{ns}.log")),
    );

    let secrets: Api<Secret> = Api::namespaced(cp.client().await, ns);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        process.assert_running();
        let keys = secrets
            .list(
                &kube::api::ListParams::default()
                    .labels("sealedsecrets.bitnami.com/sealed-secrets-key=active"),
            )
            .await
            .map(|l| l.items.len())
            .unwrap_or(0);
        let serving = std::net::TcpStream::connect((ip, port)).is_ok();
        if keys > 0 && serving {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the controller did not become ready; log:\n{}",
            process.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    process
}
