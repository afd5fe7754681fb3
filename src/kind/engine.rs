//! What a preflight asks the Docker engine before anything is created: who it is, and whether
//! the node image is there or can be pulled. Read-only calls.

use std::time::Duration;

use bollard::Docker;

use super::docker::{DockerError, connect_with_timeout};

/// The engine's own description.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineVersion {
    /// The engine's version, e.g. `26.1.5+dfsg1`.
    pub version: String,
    /// The newest API version it speaks.
    pub api_version: String,
    /// Its OS and architecture, e.g. `linux/amd64`.
    pub platform: String,
}

/// Connects to the engine at `host` (each request bounded by `timeout`) and reads its version.
///
/// # Errors
///
/// The errors of connecting to the engine (a `DockerError` naming its address), and [`DockerError::Api`] when `/version` fails.
pub async fn engine_version(
    host: &str,
    timeout: Duration,
) -> Result<(Docker, EngineVersion), DockerError> {
    let docker = connect_with_timeout(host, timeout).await?;
    let v = docker
        .version()
        .await
        .map_err(DockerError::api(format!("read the version of {host}")))?;
    let version = EngineVersion {
        version: v.version.unwrap_or_else(|| "unknown".into()),
        api_version: v.api_version.unwrap_or_else(|| "unknown".into()),
        platform: format!(
            "{}/{}",
            v.os.unwrap_or_default(),
            v.arch.unwrap_or_default()
        ),
    };
    Ok((docker, version))
}

/// Where the node image is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageAvailability {
    /// The engine has it (its id).
    Present(String),
    /// The engine lacks it, and its registry has it (the manifest's digest).
    Pullable(String),
    /// The engine lacks it; the registry was not asked.
    Missing,
}

/// Whether the engine has `image`; when it does not and `ask_registry`, whether its registry
/// serves it (the engine asks the registry for the manifest: nothing is pulled).
///
/// # Errors
///
/// [`DockerError::Api`] when the engine fails the inspection, or when the registry does not
/// serve the image (or cannot be reached).
pub async fn image_availability(
    docker: &Docker,
    image: &str,
    ask_registry: bool,
) -> Result<ImageAvailability, DockerError> {
    match docker.inspect_image(image).await {
        Ok(i) => return Ok(ImageAvailability::Present(i.id.unwrap_or_default())),
        Err(e) => {
            let e = DockerError::api(format!("inspect image {image}"))(e);
            if !e.is_not_found() {
                return Err(e);
            }
        }
    }
    if !ask_registry {
        return Ok(ImageAvailability::Missing);
    }
    let d = docker
        .inspect_registry_image(image, None)
        .await
        .map_err(DockerError::api(format!(
            "ask the registry of {image} for its manifest"
        )))?;
    Ok(ImageAvailability::Pullable(
        d.descriptor.digest.unwrap_or_default(),
    ))
}

/// A log of the node, by name (`docker-logs.txt`, `journal-kubelet.txt`, ...).
pub type NodeLog = (String, String);

/// The logs of kind cluster `cluster`'s control-plane node, as `kind export logs` gathers them:
/// the container's own output, and the journal (all of it, kubelet's and containerd's) and
/// the kubelet and containerd versions when the node answers `docker exec`. A command the node
/// fails is recorded with its exit code; only a missing node or engine is an error.
///
/// # Errors
///
/// The errors of connecting to the engine (a `DockerError` naming its address); [`DockerError::Api`] when the container's logs
/// cannot be read (it does not exist, for one).
pub async fn node_logs(
    host: &str,
    timeout: Duration,
    cluster: &str,
) -> Result<Vec<NodeLog>, DockerError> {
    use futures::StreamExt;
    let docker = connect_with_timeout(host, timeout).await?;
    let node = super::control_plane_name(cluster);
    let mut logs = Vec::new();
    let mut stream = docker.logs(
        &node,
        Some(
            bollard::query_parameters::LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .timestamps(true)
                .build(),
        ),
    );
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(DockerError::api(format!("read the logs of {node}")))?;
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    logs.push(("docker-logs.txt".to_string(), text));
    let commands: [(&str, &[&str]); 5] = [
        ("journal.txt", &["journalctl", "--no-pager"]),
        (
            "journal-kubelet.txt",
            &["journalctl", "--no-pager", "-u", "kubelet.service"],
        ),
        (
            "journal-containerd.txt",
            &["journalctl", "--no-pager", "-u", "containerd.service"],
        ),
        ("kubelet-version.txt", &["kubelet", "--version"]),
        ("containerd-version.txt", &["containerd", "--version"]),
    ];
    for (name, cmd) in commands {
        let out =
            tokio::time::timeout(timeout, super::docker::exec(&docker, &node, cmd, None)).await;
        let text = match out {
            Ok(Ok(o)) if o.exit_code == 0 => o.output,
            Ok(Ok(o)) => format!("`{}` exited {}:\n{}", cmd.join(" "), o.exit_code, o.output),
            Ok(Err(e)) => format!("`{}` could not run: {e}", cmd.join(" ")),
            Err(_) => format!("`{}` did not finish in {timeout:?}", cmd.join(" ")),
        };
        logs.push((name.to_string(), text));
    }
    Ok(logs)
}
