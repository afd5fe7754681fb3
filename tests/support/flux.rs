//! The real Flux controllers (source-controller, kustomize-controller and, on request,
//! helm-controller, built from their Go modules by `scripts/test-binaries`) running out of
//! cluster against a test control plane: admin kubeconfig, no leader election, every listener
//! on its own loopback port, and source-controller's artifact server advertised on 127.0.0.1 so
//! kustomize-controller and helm-controller fetch from it directly.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{ControlPlane, Process, free_port, test_bin};

/// The controllers; killed on drop.
pub struct FluxControllers {
    source: Process,
    kustomize: Process,
    /// helm-controller, with [`FluxControllers::start_with_helm`].
    helm: Option<Process>,
    /// source-controller's artifact server port on 127.0.0.1.
    pub storage_port: u16,
    dir: tempfile::TempDir,
}

fn controller(name: &str, cp: &ControlPlane, dir: &Path, extra: &[String]) -> Process {
    let work = dir.join(name);
    std::fs::create_dir_all(&work).unwrap();
    let mut cmd = Command::new(test_bin(name));
    cmd.args([
        "--watch-all-namespaces=true",
        "--enable-leader-election=false",
        "--log-level=debug",
        "--log-encoding=console",
        &format!("--metrics-addr=127.0.0.1:{}", free_port()),
        &format!("--health-addr=127.0.0.1:{}", free_port()),
        // No notification-controller here: events go nowhere.
        "--events-addr=",
    ])
    .args(extra)
    .env("KUBECONFIG", cp.kubeconfig_path())
    .env("RUNTIME_NAMESPACE", "flux-system")
    .env("HOME", &work)
    .env("TMPDIR", &work)
    .current_dir(&work);
    Process::spawn(name, cmd, &dir.join(format!("{name}.log")))
}

impl FluxControllers {
    /// Starts source-controller and kustomize-controller against `cp`. The Flux CRDs must be
    /// installed first (the controllers exit when their kinds are not served).
    pub fn start(cp: &ControlPlane) -> FluxControllers {
        Self::start_controllers(cp, false)
    }

    /// Also starts helm-controller: HelmReleases are installed from the HelmCharts that
    /// source-controller builds out of HelmRepositories.
    pub fn start_with_helm(cp: &ControlPlane) -> FluxControllers {
        Self::start_controllers(cp, true)
    }

    fn start_controllers(cp: &ControlPlane, with_helm: bool) -> FluxControllers {
        let dir = tempfile::Builder::new()
            .prefix("capi-manage-flux-")
            .tempdir()
            .unwrap();
        let storage_port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let source = controller(
            "source-controller",
            cp,
            dir.path(),
            &[
                format!("--storage-path={}", storage.display()),
                format!("--storage-addr=127.0.0.1:{storage_port}"),
                format!("--storage-adv-addr=127.0.0.1:{storage_port}"),
            ],
        );
        // A Kustomization waiting for another is retried after this (default 30s).
        let kustomize = controller(
            "kustomize-controller",
            cp,
            dir.path(),
            &["--requeue-dependency=2s".to_string()],
        );
        // A HelmRelease waiting for another is retried after this (default 30s).
        let helm = with_helm.then(|| {
            controller(
                "helm-controller",
                cp,
                dir.path(),
                &["--requeue-dependency=2s".to_string()],
            )
        });
        let mut c = FluxControllers {
            source,
            kustomize,
            helm,
            storage_port,
            dir,
        };
        // Fail early, with the log, if either exits during start-up (bad flags, no CRDs).
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            c.assert_running();
            std::thread::sleep(Duration::from_millis(200));
        }
        c
    }

    /// Panics with the log tail if a controller has exited.
    pub fn assert_running(&mut self) {
        self.source.assert_running();
        self.kustomize.assert_running();
        if let Some(h) = &mut self.helm {
            h.assert_running();
        }
    }

    /// The last lines of every log, for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut s = format!(
            "--- source-controller ---\n{}\n--- kustomize-controller ---\n{}",
            self.source.log_tail(lines),
            self.kustomize.log_tail(lines)
        );
        if let Some(h) = &self.helm {
            s.push_str(&format!("\n--- helm-controller ---\n{}", h.log_tail(lines)));
        }
        s
    }

    /// Where the logs and storage are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
