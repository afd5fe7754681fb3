//! What the steps of a run share: the options, the observer and cancellation, the saved state,
//! and the connections to the kind and the self-managed cluster, made on first use.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::state::State;
use super::{Error, Options, Side, StepError};
use crate::capi::readiness::{ClusterRef, helm_releases};
use crate::kube::{Discovery, connect};
use crate::manifest::Object;
use crate::observe::Observer;
use crate::repo::ClusterDir;

/// The run a step is part of. Steps reach the clusters and the saved state through it.
pub struct Context<'a> {
    pub(super) o: &'a Options,
    pub(super) dir: ClusterDir,
    pub(super) observer: &'a dyn Observer,
    pub(super) cancel: &'a CancellationToken,
    pub(super) operation: &'static str,
    pub(super) state_path: PathBuf,
    pub(super) state: State,
    kind: Option<Discovery>,
    target: Option<Discovery>,
    /// The kind cluster was created anew in this run, replacing the one earlier steps used.
    pub(super) kind_replaced: bool,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("cluster", &self.dir.path())
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

/// The uid of the cluster's `kube-system` Namespace: what tells two clusters apart.
pub(super) async fn cluster_uid(d: &Discovery, side: Side) -> Result<String, StepError> {
    let namespaces: ::kube::Api<k8s_openapi::api::core::v1::Namespace> =
        ::kube::Api::all(d.client().clone());
    let ns = namespaces
        .get("kube-system")
        .await
        .map_err(|e| StepError::Request {
            side,
            what: "reading Namespace kube-system".into(),
            source: e.into(),
        })?;
    Ok(ns.metadata.uid.unwrap_or_default())
}

async fn discovery(
    kubeconfig: PathBuf,
    side: Side,
    timeouts: &super::Timeouts,
) -> Result<Discovery, StepError> {
    let client = connect(&timeouts.client(kubeconfig.clone()))
        .await
        .map_err(|source| StepError::Connect {
            side,
            kubeconfig,
            source: Box::new(source),
        })?;
    Ok(Discovery::new(client))
}

impl<'a> Context<'a> {
    /// A run of `operation` whose state is at `state_path`.
    pub(super) fn load(
        o: &'a Options,
        observer: &'a dyn Observer,
        cancel: &'a CancellationToken,
        operation: &'static str,
        state_path: PathBuf,
    ) -> Result<Context<'a>, Error> {
        let state = State::load(&state_path)?;
        Ok(Context {
            o,
            dir: o.dir(),
            observer,
            cancel,
            operation,
            state_path,
            state,
            kind: None,
            target: None,
            kind_replaced: false,
        })
    }

    /// The kind cluster, through the kubeconfig its creation wrote.
    pub(super) async fn kind(&mut self) -> Result<Discovery, StepError> {
        if let Some(d) = &self.kind {
            return Ok(d.clone());
        }
        let d = discovery(self.dir.kind_kubeconfig(), Side::Kind, &self.o.timeouts).await?;
        self.kind = Some(d.clone());
        Ok(d)
    }

    /// Forgets the kind cluster's connection (it was created or deleted).
    pub(super) fn forget_kind(&mut self) {
        self.kind = None;
    }

    /// The self-managed cluster, through `clusters/<name>/kubeconfig`; refused when it is not
    /// the cluster the earlier steps worked on.
    pub(super) async fn target(&mut self) -> Result<Discovery, StepError> {
        if let Some(d) = &self.target {
            return Ok(d.clone());
        }
        let d = discovery(self.dir.kubeconfig(), Side::Cluster, &self.o.timeouts).await?;
        let uid = cluster_uid(&d, Side::Cluster).await?;
        match &self.state.target_cluster_uid {
            Some(recorded) if *recorded != uid => {
                return Err(StepError::OtherCluster {
                    operation: self.operation,
                    kubeconfig: self.dir.kubeconfig(),
                    state: self.state_path.clone(),
                    found: uid,
                    recorded: recorded.clone(),
                });
            }
            Some(_) => {}
            None => {
                self.state.target_cluster_uid = Some(uid);
                self.save_for_step()?;
            }
        }
        self.target = Some(d.clone());
        Ok(d)
    }

    /// Forgets the self-managed cluster's connection (its kubeconfig was written anew).
    pub(super) fn forget_target(&mut self) {
        self.target = None;
    }

    /// The cluster to await: `namespace/cluster`, with the HelmReleases of `objects` when
    /// `with_releases`.
    pub(super) fn cluster_ref(&self, objects: &[Object], with_releases: bool) -> ClusterRef {
        ClusterRef {
            namespace: self.o.namespace.clone(),
            name: self.o.cluster.clone(),
            helm_releases: if with_releases {
                helm_releases(objects)
            } else {
                Vec::new()
            },
        }
    }

    /// Saves the state.
    pub(super) fn save(&self) -> Result<(), Error> {
        self.state.save(&self.state_path)
    }

    /// Saves the state from inside a step.
    fn save_for_step(&self) -> Result<(), StepError> {
        let bytes = self.state.to_bytes();
        crate::fs::write_private(&self.state_path, &bytes).map_err(|source| StepError::Io {
            action: "write",
            path: self.state_path.clone(),
            source,
        })
    }
}
