//! Loading image archives into a kind node's containerd: a `docker save` archive, or files
//! (an OCI image layout) archived as they stream.

use std::time::Instant;

use tokio::io::AsyncRead;
use tokio_util::sync::CancellationToken;

use super::archive::{ArchiveError, ArchiveFile, write_tar};
use super::docker::{self, DockerError, docker_host};
use super::{DEFAULT_CLUSTER_NAME, config, control_plane_name, node};
use crate::observe::{Observer, ObserverExt};

/// Options for [`load_image_archive`].
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The cluster name.
    pub name: String,
    /// The Docker engine address; `None` uses `DOCKER_HOST` or [`DEFAULT_DOCKER_HOST`](super::DEFAULT_DOCKER_HOST).
    pub docker_host: Option<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            name: DEFAULT_CLUSTER_NAME.to_string(),
            docker_host: None,
        }
    }
}

/// What [`load_image_archive`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The node the archive went into.
    pub node: String,
    /// The bytes streamed.
    pub bytes: u64,
    /// The snapshotter the import used.
    pub snapshotter: String,
}

/// What went wrong loading an image archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The Docker engine could not be reached or refused a request.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// The cluster has no running control-plane node.
    #[error("kind cluster {name} has no running node {container}: create it first")]
    NoNode {
        /// The cluster.
        name: String,
        /// The container looked for.
        container: String,
    },
    /// `ctr images import` (or reading containerd's config) failed in the node.
    #[error("{step} failed in node {container} (exit code {exit_code}); last output:\n{tail}")]
    Step {
        /// The step.
        step: String,
        /// The node.
        container: String,
        /// Its exit code.
        exit_code: i64,
        /// The last lines of its output.
        tail: String,
    },
    /// A file of the archive could not be read.
    #[error("cannot read {} for the image archive", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file of the archive is not what its name or descriptor says.
    #[error("{}: {problem}", path.display())]
    Content {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong (size or digest).
        problem: String,
    },
    /// A member name the archive cannot hold.
    #[error("archive member name {name:?} is longer than 100 bytes")]
    Name {
        /// The name.
        name: String,
    },
    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl From<ArchiveError> for LoadError {
    fn from(e: ArchiveError) -> Self {
        match e {
            ArchiveError::Name { name } => LoadError::Name { name },
            ArchiveError::Read { path, source } => LoadError::File { path, source },
            ArchiveError::Size {
                path,
                expected,
                actual,
            } => LoadError::Content {
                path,
                problem: format!("holds {actual} bytes, not the {expected} its descriptor gives"),
            },
            ArchiveError::Digest {
                path,
                expected,
                actual,
            } => LoadError::Content {
                path,
                problem: format!(
                    "does not match its digest {expected} (its content hashes to {actual})"
                ),
            },
            ArchiveError::Write(source) => LoadError::Docker(DockerError::Api {
                what: "stream the image archive".into(),
                source: bollard::errors::Error::IOError { err: source },
            }),
        }
    }
}

/// Streams `files` into the node's containerd as one tar archive, through
/// [`load_image_archive`]: what `ctr images import` takes for an OCI image layout (`oci-layout`,
/// `index.json`, `blobs/sha256/...`). The archive is written while it is read, a chunk at a
/// time; each file is checked against its size and digest as it streams, and one that does not
/// match stops the load with [`LoadError::Content`] (the import fails on the cut archive).
pub async fn load_image_files(
    options: &LoadOptions,
    files: &[ArchiveFile],
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Loaded, LoadError> {
    let (reader, mut writer) = tokio::io::duplex(1 << 16);
    let produce = async move {
        let r = write_tar(files, &mut writer).await;
        drop(writer);
        r
    };
    let consume = async move {
        let mut reader = reader;
        let r = load_image_archive(options, &mut reader, observer, cancel).await;
        // Closing the reader ends a producer blocked on a full pipe.
        drop(reader);
        r
    };
    let (produced, loaded) = tokio::join!(produce, consume);
    match (produced, loaded) {
        // The import stopped first (no node, ctr failed): its error says why.
        (Err(ArchiveError::Write(_)), Err(e)) => Err(e),
        (Err(e), _) => Err(e.into()),
        (Ok(()), r) => r,
    }
}

/// Streams an image archive (`docker save` output) into the node's containerd, as
/// `kind load image-archive` does: `ctr --namespace=k8s.io images import --all-platforms
/// --digests --snapshotter=<the CRI plugin's snapshotter> -`, the archive on its stdin. The
/// archive is never held in memory whole.
pub async fn load_image_archive<R: AsyncRead + Unpin>(
    options: &LoadOptions,
    archive: &mut R,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Loaded, LoadError> {
    let host = docker_host(options.docker_host.as_deref());
    let docker = docker::connect(&host).await?;
    let node = control_plane_name(&options.name);
    let start = Instant::now();
    let running = node::find(&docker, &node)
        .await?
        .is_some_and(|n| n.running && n.cluster.as_deref() == Some(options.name.as_str()));
    if !running {
        return Err(LoadError::NoNode {
            name: options.name.clone(),
            container: node,
        });
    }
    let dump = docker::exec(&docker, &node, &["containerd", "config", "dump"], None).await?;
    if !dump.success() {
        return Err(LoadError::Step {
            step: "containerd config dump".into(),
            container: node,
            exit_code: dump.exit_code,
            tail: dump.failure_tail(),
        });
    }
    let snapshotter =
        config::containerd_snapshotter(&dump.stdout).unwrap_or_else(|| "overlayfs".to_string());
    observer.action(format!("loading image archive into {node} ({snapshotter})"));
    let snapshotter_flag = format!("--snapshotter={snapshotter}");
    let cmd = [
        "ctr",
        "--namespace=k8s.io",
        "images",
        "import",
        "--all-platforms",
        "--digests",
        snapshotter_flag.as_str(),
        "-",
    ];
    let counted = &mut CountingReader {
        inner: archive,
        count: 0,
    };
    let out = docker::exec_streaming(
        &docker,
        &node,
        &cmd,
        Some(counted),
        Some((observer, "image archive bytes sent")),
        cancel,
    )
    .await;
    if cancel.is_cancelled() {
        return Err(LoadError::Cancelled);
    }
    let out = out?;
    if !out.success() {
        return Err(LoadError::Step {
            step: "ctr images import".into(),
            container: node,
            exit_code: out.exit_code,
            tail: out.failure_tail(),
        });
    }
    let bytes = counted.count;
    observer.success(
        format!("loaded {bytes} bytes of images into {node}"),
        Some(start.elapsed()),
    );
    Ok(Loaded {
        node,
        bytes,
        snapshotter,
    })
}

struct CountingReader<'a, R> {
    inner: &'a mut R,
    count: u64,
}

impl<R: AsyncRead + Unpin> AsyncRead for CountingReader<'_, R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = std::pin::Pin::new(&mut *this.inner).poll_read(cx, buf);
        this.count += (buf.filled().len() - before) as u64;
        poll
    }
}
