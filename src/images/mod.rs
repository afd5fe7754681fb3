//! Container images and charts for air-gapped bootstraps, over the OCI distribution API.
//!
//! - [`inventory`]: every image a bootstrap runs (the kind node image, the vendored
//!   components' images, a cluster's rendered images) with the digests recorded in
//!   `vendor-manifests/images.lock`; offline. [`resolve`] asks the registries for the digests
//!   (online) and [`write_lock`] records them, so air-gapped hosts read the lock and connected
//!   hosts write it.
//! - [`pull`]: images from their registries into an OCI image layout (`oci-layout`,
//!   `index.json` with `org.opencontainers.image.ref.name`, `blobs/sha256/...`), every byte
//!   checked against its digest while it streams; linux/amd64 of a multi-platform image, or
//!   all platforms. [`add_chart`] puts a Helm chart archive in the layout as an OCI artifact.
//! - [`push`]: every image and chart of a layout into an internal registry, at the path
//!   `vendor --image-registry` rewrites the manifests to ([`crate::components::mirror_image`]).
//!
//! Registries are spoken to directly (no docker or skopeo): Bearer tokens from the realm of a
//! `WWW-Authenticate` challenge, or Basic credentials; retries for transport failures and 5xx;
//! blobs already present (in the layout, or in the target registry by HEAD) are skipped, so an
//! interrupted pull or push resumes.

mod chart;
mod client;
mod error;
mod inventory;
mod layout;
pub mod oci;
mod reference;
mod transfer;
mod upload;

pub use chart::add_chart;
pub use client::{ClientOptions, Credentials};
pub use error::Error;
pub use inventory::{
    IMAGES_LOCK, Inventory, InventoryImage, inventory, object_images, read_lock, write_lock,
};
pub use layout::{Layout, file_digest, ref_name};
pub use reference::{DOCKER_HUB, ParseError, Reference};
pub use transfer::{Copied, PullOptions, PushOptions, TransferReport, pull, push, resolve};
