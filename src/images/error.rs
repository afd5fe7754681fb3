//! The errors of [`crate::images`].

use std::path::PathBuf;

/// Why an images operation failed. Each variant names the image, registry or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An image reference does not parse.
    #[error("{from}: bad image reference")]
    Reference {
        /// Where the reference came from (a file, a flag).
        from: String,
        /// What is wrong.
        #[source]
        source: super::ParseError,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the registry client")]
    Client {
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A request failed after retries.
    #[error("{method} {url} failed after {attempts} attempts")]
    Request {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// How often it was tried.
        attempts: u32,
        /// The last failure.
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an unexpected status.
    #[error("{method} {url}: the registry answered {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body (the registry's error codes).
        body: String,
    },
    /// The registry refused the credentials, or asked for some and none were given.
    #[error("{registry}: access to {repository} refused ({problem})")]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// What happened.
        problem: String,
    },
    /// A manifest or index is not usable.
    #[error("{reference}: bad manifest: {problem}")]
    Manifest {
        /// The image.
        reference: String,
        /// What is wrong.
        problem: String,
    },
    /// Content does not match its digest: a corrupted or substituted blob or manifest.
    #[error(
        "{what} of {reference} does not match its digest {expected}: got {actual} ({bytes} bytes)"
    )]
    Digest {
        /// `blob`, `manifest` or a file.
        what: String,
        /// The image.
        reference: String,
        /// The digest it must have.
        expected: String,
        /// The digest it has.
        actual: String,
        /// Its size.
        bytes: u64,
    },
    /// A blob is larger than its descriptor says.
    #[error("{what} of {reference} is larger than the {size} bytes its descriptor gives")]
    TooLarge {
        /// What.
        what: String,
        /// The image.
        reference: String,
        /// The size the descriptor gives.
        size: u64,
    },
    /// The image has no manifest for the platform asked for.
    #[error("{reference} has no {platform} image (it has: {available})")]
    NoPlatform {
        /// The image.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// What the index lists.
        available: String,
    },
    /// The registry serves a different digest than `images.lock` records.
    #[error("{reference}: the registry serves {actual} but {lock} records {locked}")]
    Locked {
        /// The image.
        reference: String,
        /// The lock file.
        lock: PathBuf,
        /// The recorded digest.
        locked: String,
        /// What the registry serves.
        actual: String,
    },
    /// An OCI image layout is not usable.
    #[error("{dir}: not a usable OCI image layout: {problem}")]
    Layout {
        /// The layout's folder.
        dir: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// `images.lock` is not usable.
    #[error("{file}: {problem}")]
    Lock {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A chart archive is not usable.
    #[error("{file}: not a Helm chart archive: {problem}")]
    Chart {
        /// The archive.
        file: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: I/O failed")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The vendored manifests could not be read for the inventory.
    #[error("cannot read the vendored components for the image inventory")]
    Components {
        /// The cause.
        #[source]
        source: Box<crate::components::Error>,
    },
    /// The cluster's folder could not be rendered for the inventory.
    #[error("cannot render {dir} for the image inventory")]
    Render {
        /// The folder.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: Box<crate::render::Error>,
    },
    /// The cancellation token fired.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
