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
//! - [`cloud`]: the preflight against the OpenStack cloud (login, catalog, what the values
//!   name, quotas), one line per problem.
//! - [`bootstrap`]: `bootstrap` and `teardown` as resumable plans of steps.
//! - [`flux`]: Flux's GitOps objects (pure), sync health, suspend and resume.
//! - [`components`]: pinned, checksummed component manifests (download, verify, render, load;
//!   the `vendor` command and `vendor-manifests/`) and their install with health gates.
//! - [`images`]: the images and charts of an air-gapped bootstrap: inventory and lock, pull
//!   into an OCI image layout, push into an internal registry (own OCI distribution client).
//!
//! # Features
//!
//! Each module above except `observe`, `manifest` and `fs` is a feature of the same name that
//! pulls in only the crates it needs (Cargo.toml says which): `render` and `seal` are offline
//! and need no async runtime, `kube`, `kind` and `git` bring the Kubernetes client, the Docker
//! client and the git transports, and `bootstrap` enables all of them. The default feature,
//! `cli`, is the binary: `bootstrap` plus clap, indicatif, tracing-subscriber and tokio's
//! signal handling. An embedding program turns it off:
//!
//! ```toml
//! capi-manage = { version = "0.1", default-features = false, features = ["render", "seal"] }
//! ```
//!
//! # Quick start
//!
//! Render a cluster folder and seal its credentials with the sealed-secrets controller's
//! certificate, offline (features `render` and `seal`):
//!
//! ```no_run
//! use std::path::Path;
//! use capi_manage::{render, seal};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = Path::new("clusters/example");
//! for object in render::render(dir)? {
//!     println!("{object}");
//! }
//! let key = seal::SealingKey::from_pem(&std::fs::read("cert.pem")?, "cert.pem")?;
//! let file = dir.join("credentials.yaml");
//! for secret in seal::Secret::parse(&std::fs::read_to_string(&file)?, Some(&file))? {
//!     let sealed = seal::seal(&secret, &key, &seal::SealOptions::default())?;
//!     print!("{}", seal::to_yaml(&sealed));
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Run a whole bootstrap, with progress through a closure (any `Fn(Event) + Send + Sync` is an
//! [`observe::Observer`]) and a cancellation token (feature `bootstrap`; it needs Docker,
//! OpenStack credentials and a git remote):
//!
//! ```no_run
//! use capi_manage::bootstrap::{self, Options};
//! use capi_manage::observe::Event;
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn run() -> Result<(), capi_manage::bootstrap::Error> {
//! let options = Options::new("/srv/config-repo", "example");
//! let observer = |event: Event| eprintln!("{event}");
//! let cancel = CancellationToken::new(); // cancel() it from a Ctrl-C handler, say
//! let report = bootstrap::bootstrap(&options, &observer, &cancel).await?;
//! println!("kubeconfig: {}", report.kubeconfig.display());
//! # Ok(())
//! # }
//! ```
//!
//! `examples/` has both as programs, and a Cluster API move that prints its plan first.
#![deny(missing_docs)]

#[cfg(feature = "bootstrap")]
pub mod bootstrap;
#[cfg(feature = "capi")]
pub mod capi;
#[cfg(feature = "cloud")]
pub mod cloud;
#[cfg(feature = "components")]
pub mod components;
#[cfg(feature = "flux")]
pub mod flux;
pub mod fs;
#[cfg(feature = "git")]
pub mod git;
#[cfg(feature = "images")]
pub mod images;
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
