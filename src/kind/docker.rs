//! The Docker Engine connection and the few engine calls every operation shares: connecting
//! with a clear diagnosis, running a command in the node with its exit code and output, and
//! copying files in.

use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{InspectContainerOptions, UploadToContainerOptionsBuilder};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::observe::{Observer, ObserverExt};

/// The socket Docker listens on when `DOCKER_HOST` is not set.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Why the Docker engine could not be used. Each reads as one line naming the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerError {
    /// Nothing answers at the address: Docker is not installed, not running, or elsewhere.
    #[error(
        "no Docker engine at {host}: start dockerd (or Docker Desktop), or set DOCKER_HOST to where it listens"
    )]
    NotRunning {
        /// The address tried.
        host: String,
        /// The connection error.
        #[source]
        source: std::io::Error,
    },
    /// The socket exists but this user may not open it.
    #[error(
        "permission denied on the Docker socket {host}: add this user to the `docker` group (then log in again) or run as root"
    )]
    PermissionDenied {
        /// The address tried.
        host: String,
        /// The connection error.
        #[source]
        source: std::io::Error,
    },
    /// `DOCKER_HOST` names something this build cannot talk to.
    #[error("unsupported DOCKER_HOST {host}: use unix:///path/to/docker.sock or tcp://host:port")]
    UnsupportedHost {
        /// The address given.
        host: String,
    },
    /// The engine answered with an error, or the connection broke.
    #[error("Docker engine request failed: {what}")]
    Api {
        /// The request, e.g. `create container kind-control-plane`.
        what: String,
        /// The engine's error.
        #[source]
        source: bollard::errors::Error,
    },
}

impl DockerError {
    pub(crate) fn api(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Self {
        let what = what.into();
        move |source| DockerError::Api { what, source }
    }

    /// The engine's HTTP status and message, when it answered with an error.
    pub fn server_error(&self) -> Option<(u16, &str)> {
        match self {
            DockerError::Api {
                source:
                    bollard::errors::Error::DockerResponseServerError {
                        status_code,
                        message,
                    },
                ..
            } => Some((*status_code, message.as_str())),
            _ => None,
        }
    }

    /// Whether the engine said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self.server_error(), Some((404, _)))
    }
}

/// Where to find Docker: `explicit`, else `DOCKER_HOST`, else the default socket.
pub fn docker_host(explicit: Option<&str>) -> String {
    explicit
        .map(str::to_string)
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string())
}

/// Connects to the engine at `host` and agrees on an API version with it (so older engines, down
/// to API 1.41 which kind's settings need, work). A unix socket is probed first so that a missing
/// daemon and a permission problem each get their own error.
pub async fn connect(host: &str) -> Result<Docker, DockerError> {
    connect_with_timeout(host, DEFAULT_TIMEOUT).await
}

/// How long one request to the engine may take by default (bollard's own default).
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// [`connect`], with `timeout` as the longest wait for the engine's answer to one request
/// (connecting included).
pub async fn connect_with_timeout(
    host: &str,
    timeout: std::time::Duration,
) -> Result<Docker, DockerError> {
    if let Some(path) = host.strip_prefix("unix://") {
        if let Err(source) = tokio::net::UnixStream::connect(path).await {
            return Err(match source.kind() {
                std::io::ErrorKind::PermissionDenied => DockerError::PermissionDenied {
                    host: host.to_string(),
                    source,
                },
                _ => DockerError::NotRunning {
                    host: host.to_string(),
                    source,
                },
            });
        }
    } else if !(host.starts_with("tcp://") || host.starts_with("http://")) {
        return Err(DockerError::UnsupportedHost {
            host: host.to_string(),
        });
    }
    let docker = Docker::connect_with_host(host)
        .map_err(|_| DockerError::UnsupportedHost {
            host: host.to_string(),
        })?
        .with_timeout(timeout);
    docker.negotiate_version().await.map_err(|source| {
        // A TCP engine that is not there only shows up here.
        match io_cause(&source) {
            Some(io) => DockerError::NotRunning {
                host: host.to_string(),
                source: std::io::Error::new(io, source.to_string()),
            },
            None => DockerError::Api {
                what: format!("negotiate the API version with {host}"),
                source,
            },
        }
    })
}

fn io_cause(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = err.source();
    }
    None
}

/// What a command run in the node did.
#[derive(Debug, Clone)]
pub(crate) struct ExecOutput {
    pub exit_code: i64,
    /// stdout and stderr interleaved as they came.
    pub output: String,
    /// stdout alone.
    pub stdout: String,
    /// stderr alone.
    pub stderr: String,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    /// The last lines of the output for an error message. The engine relays stdout and stderr
    /// separately, so their interleaving is not exact: the last lines of stderr, where failing
    /// commands explain themselves, are added when the combined tail missed them.
    pub fn failure_tail(&self) -> String {
        let mut lines: Vec<String> = super::config::tail(&self.output, 20)
            .lines()
            .map(str::to_string)
            .collect();
        let err = super::config::tail(&self.stderr, 5);
        for line in err.lines() {
            if !lines.iter().any(|l| l == line) {
                lines.push(line.to_string());
            }
        }
        lines.join("\n")
    }
}

/// Runs `cmd` in `container` as the image's default user, feeding it `stdin` (then closing it)
/// and collecting its output and exit code.
pub(crate) async fn exec(
    docker: &Docker,
    container: &str,
    cmd: &[&str],
    stdin: Option<&[u8]>,
) -> Result<ExecOutput, DockerError> {
    match stdin {
        Some(bytes) => {
            exec_streaming(
                docker,
                container,
                cmd,
                Some(&mut &bytes[..]),
                None,
                &CancellationToken::new(),
            )
            .await
        }
        None => {
            exec_streaming::<&[u8]>(
                docker,
                container,
                cmd,
                None,
                None,
                &CancellationToken::new(),
            )
            .await
        }
    }
}

/// Progress reporting for a stdin stream: the observer and what to call the count.
pub(crate) type StdinProgress<'a> = (&'a dyn Observer, &'a str);

/// [`exec`] with stdin streamed from a reader in chunks, reporting bytes sent; cancelling stops
/// feeding and returns an error.
pub(crate) async fn exec_streaming<R: AsyncRead + Unpin>(
    docker: &Docker,
    container: &str,
    cmd: &[&str],
    stdin: Option<&mut R>,
    progress: Option<StdinProgress<'_>>,
    cancel: &CancellationToken,
) -> Result<ExecOutput, DockerError> {
    let what = || format!("run `{}` in {container}", cmd.join(" "));
    // kind runs every command in a node with `docker exec --privileged`; a node that is not
    // privileged itself (the test-only setting) cannot grant that, so follow the node.
    let privileged = docker
        .inspect_container(container, None::<InspectContainerOptions>)
        .await
        .map_err(DockerError::api(what()))?
        .host_config
        .and_then(|h| h.privileged)
        .unwrap_or(false);
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdin: Some(stdin.is_some()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(cmd.to_vec()),
                privileged: Some(privileged),
                ..Default::default()
            },
        )
        .await
        .map_err(DockerError::api(what()))?;
    let started = docker
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty: false,
                output_capacity: None,
            }),
        )
        .await
        .map_err(DockerError::api(what()))?;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    else {
        unreachable!("started attached")
    };

    let collect = async {
        let mut all = String::new();
        let mut stdout = String::new();
        let mut stderr = String::new();
        while let Some(chunk) = output.next().await {
            match chunk.map_err(DockerError::api(what()))? {
                bollard::container::LogOutput::StdOut { message } => {
                    let s = String::from_utf8_lossy(&message);
                    stdout.push_str(&s);
                    all.push_str(&s);
                }
                bollard::container::LogOutput::StdErr { message } => {
                    let s = String::from_utf8_lossy(&message);
                    stderr.push_str(&s);
                    all.push_str(&s);
                }
                bollard::container::LogOutput::Console { message } => {
                    all.push_str(&String::from_utf8_lossy(&message));
                }
                bollard::container::LogOutput::StdIn { .. } => {}
            }
        }
        Ok::<_, DockerError>((all, stdout, stderr))
    };
    let feed = async {
        if let Some(reader) = stdin {
            let mut buf = vec![0u8; 256 * 1024];
            let mut sent: u64 = 0;
            loop {
                let n = reader
                    .read(&mut buf)
                    .await
                    .map_err(|e| stdin_error(what(), e))?;
                if n == 0 {
                    break;
                }
                input
                    .write_all(&buf[..n])
                    .await
                    .map_err(|e| stdin_error(what(), e))?;
                sent += n as u64;
                if let Some((observer, label)) = progress {
                    observer.progress(label, sent, None);
                }
            }
            input.flush().await.map_err(|e| stdin_error(what(), e))?;
        }
        // Closing our side is how the command sees the end of its stdin.
        let _ = input.shutdown().await;
        Ok::<_, DockerError>(())
    };
    let both = async {
        let (fed, collected) = tokio::join!(feed, collect);
        fed?;
        collected
    };
    let (all, stdout, stderr) = tokio::select! {
        r = both => r?,
        _ = cancel.cancelled() => {
            return Err(DockerError::Api {
                what: what(),
                source: bollard::errors::Error::IOError {
                    err: std::io::Error::new(std::io::ErrorKind::Interrupted, "cancelled"),
                },
            })
        }
    };
    // The exit code is recorded a moment after the output ends.
    let mut exit_code = None;
    for _ in 0..50 {
        let inspected = docker
            .inspect_exec(&created.id)
            .await
            .map_err(DockerError::api(what()))?;
        if inspected.running != Some(true) {
            exit_code = inspected.exit_code;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(ExecOutput {
        exit_code: exit_code.unwrap_or(-1),
        output: all,
        stdout,
        stderr,
    })
}

fn stdin_error(what: String, e: std::io::Error) -> DockerError {
    DockerError::Api {
        what,
        source: bollard::errors::Error::IOError { err: e },
    }
}

/// Writes files into `dir` in the container through the engine's archive upload.
pub(crate) async fn copy_files(
    docker: &Docker,
    container: &str,
    dir: &str,
    files: &[(&str, &[u8], u32)],
) -> Result<(), DockerError> {
    let tar = super::config::tar_files(files);
    let options = UploadToContainerOptionsBuilder::default().path(dir).build();
    docker
        .upload_to_container(container, Some(options), bollard::body_full(tar.into()))
        .await
        .map_err(DockerError::api(format!("copy files to {container}:{dir}")))
}
