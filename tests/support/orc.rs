//! The real ORC (openstack-resource-controller v2.6.0) manager for a test control plane, built
//! by `scripts/test-binaries orc-manager`, reconciling against the loopback OpenStack. It runs
//! on this host as the cluster's ORC once capi-manage has installed ORC there (its CRDs and its
//! Deployment `orc-controller-manager`), again if it exits; ORC has no webhooks. Leader election
//! is off, metrics off, the health probe on loopback. Dropping [`Orc`] stops it.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::kube::Api;
use ::kube::api::{DynamicObject, ListParams};
use ::kube::core::{ApiResource, GroupVersionKind};
use k8s_openapi::api::apps::v1::Deployment;
use tokio_util::sync::CancellationToken;

use super::webhooks::spawn;
use super::{ControlPlane, free_port, test_bin};

const DEPLOYMENT: &str = "orc-controller-manager";
const CRD: &str = "images.openstack.k-orc.cloud";

/// The ORC manager of one control plane.
pub struct Orc {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    child: Arc<Mutex<Option<Child>>>,
    /// The log of the current (last) start.
    pub log: Arc<Mutex<Option<PathBuf>>>,
}

impl Orc {
    /// Starts the background task for `cp`: nothing runs until ORC is installed there.
    pub async fn start(cp: &ControlPlane) -> Orc {
        let bin = test_bin("orc-manager");
        let client = cp.client().await;
        let kubeconfig = cp.kubeconfig_path().to_path_buf();
        let dir = cp.dir().join("orc");
        std::fs::create_dir_all(&dir).unwrap();
        let cancel = CancellationToken::new();
        let child: Arc<Mutex<Option<Child>>> = Arc::default();
        let log: Arc<Mutex<Option<PathBuf>>> = Arc::default();
        let (c, ch, lg) = (cancel.clone(), child.clone(), log.clone());
        let task = tokio::spawn(async move {
            let crds = Api::<DynamicObject>::all_with(
                client.clone(),
                &ApiResource::from_gvk(&GroupVersionKind::gvk(
                    "apiextensions.k8s.io",
                    "v1",
                    "CustomResourceDefinition",
                )),
            );
            let deployments = Api::<Deployment>::all(client);
            let mut starts = 0;
            while !c.is_cancelled() {
                let running = ch
                    .lock()
                    .unwrap()
                    .as_mut()
                    .is_some_and(|c: &mut Child| matches!(c.try_wait(), Ok(None)));
                if !running {
                    let installed = matches!(crds.get_metadata_opt(CRD).await, Ok(Some(_)))
                        && deployments
                            .list(
                                &ListParams::default()
                                    .fields(&format!("metadata.name={DEPLOYMENT}")),
                            )
                            .await
                            .is_ok_and(|l| !l.items.is_empty());
                    if installed {
                        starts += 1;
                        let path = dir.join(format!("manager-{starts}.log"));
                        let mut cmd = Command::new(&bin);
                        cmd.args([
                            "--leader-elect=false".to_string(),
                            "--metrics-bind-address=0".to_string(),
                            format!("--health-probe-bind-address=127.0.0.1:{}", free_port()),
                        ])
                        .env("KUBECONFIG", &kubeconfig);
                        *ch.lock().unwrap() = Some(spawn(cmd, &path));
                        *lg.lock().unwrap() = Some(path);
                    }
                }
                tokio::select! {
                    _ = c.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        });
        Orc {
            cancel,
            task,
            child,
            log,
        }
    }
}

impl Drop for Orc {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.task.abort();
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
