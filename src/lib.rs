//! capi-manage: bootstrap a self-managed Cluster API cluster on OpenStack and hand it to Flux,
//! with no external command-line tool.
//!
//! The library is what the `capi-manage` binary runs; Rust programs can embed it. It never
//! prints, exits or keeps global state: long operations take an [`observe::Observer`] and a
//! cancellation token, and every module reports failures through its own `Error` type.
//!
//! Modules, leaves first:
//! - [`observe`]: progress events.
//! - [`manifest`]: Kubernetes objects as data (YAML in and out, GVKs, apply order).
//! - [`git`]: commit and push without the git CLI (gix, own receive-pack client), deploy keys
//!   and SSH host keys for Flux.
//! - [`kube`]: kubeconfig, client, cached discovery, server-side apply and wait conditions.
//! - [`seal`]: sealing Secrets for sealed-secrets, interchangeably with kubeseal.
//! - [`kind`]: the ephemeral kind cluster through the Docker Engine API (returns its kubeconfig).
//! - [`capi`]: Cluster API object graphs, move order and the mover.
//! - [`render`]: kustomize-compatible rendering of a kustomization folder (pure).
//! - [`repo`]: the config repository: its root, `clusters/<name>`, credentials and values.
//! - [`bootstrap`]: `bootstrap` and `teardown` as resumable plans of steps.
//! - [`flux`]: Flux's GitOps objects (pure), component install with health gates, sync health,
//!   suspend and resume.
//! - [`vendor`]: pinned, checksummed component manifests (download, verify, render, load).
#![deny(missing_docs)]

#[cfg(feature = "bootstrap")]
pub mod bootstrap;
#[cfg(feature = "capi")]
pub mod capi;
#[cfg(feature = "flux")]
pub mod flux;
pub mod fs;
#[cfg(feature = "git")]
pub mod git;
#[cfg(feature = "kind")]
pub mod kind;
#[cfg(feature = "kube")]
pub mod kube;
pub mod manifest;
pub mod observe;
#[cfg(feature = "render")]
pub mod render;
#[cfg(feature = "repo")]
pub mod repo;
#[cfg(feature = "seal")]
pub mod seal;
#[cfg(feature = "vendor")]
pub mod vendor;
