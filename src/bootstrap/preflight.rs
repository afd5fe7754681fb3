//! The preflight: every check `bootstrap` and `teardown` make before anything is created, run
//! all at once so that every problem is listed in one run, one line each with its fix.
//!
//! The verdicts are pure functions of what was read (unit-tested below); each read is a small
//! function of its own. Offline checks read files and the local Docker engine; online checks
//! talk to the git remote, the registry, the cluster and the cloud. Nothing is written.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::Options;
use crate::git::{PushAccess, PushError, PushOptions};
use crate::kind::{EngineVersion, ImageAvailability};
use crate::observe::Silent;
use crate::repo::{Cluster, Credentials, PLACEHOLDER, Repo};

/// The inotify watches per user kind's known issues ask for.
pub const MIN_INOTIFY_WATCHES: u64 = 524_288;
/// The inotify instances per user kind's known issues ask for.
pub const MIN_INOTIFY_INSTANCES: u64 = 512;
/// Where the kernel shows the inotify limits.
pub const INOTIFY_DIR: &str = "/proc/sys/fs/inotify";

/// Which run the preflight is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Operation {
    /// `bootstrap`: creates a kind cluster, renders, pushes.
    Bootstrap,
    /// `teardown`: moves back to a kind cluster through the cluster's kubeconfig.
    Teardown,
}

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Must be fixed before the run can succeed.
    Problem,
    /// A risk the run may survive (listed with its fix; it does not stop the run).
    Warning,
    /// Not checked (offline, not applicable, or an earlier problem hides it).
    Skipped,
}

/// One check: what it looked at, what it found and, for a problem, the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Check {
    /// Stable id: `components`, `config`, `credentials`, `docker`, `inotify`, `node-image`,
    /// `images` (with `--images`), `git-remote`, `host-key`, `branch`, `kubeconfig`, `cloud`.
    pub id: &'static str,
    /// The verdict.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub(super) fn ok(id: &'static str, detail: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    pub(super) fn problem(
        id: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            id,
            status: Status::Problem,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn skipped(id: &'static str, detail: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Skipped,
            detail: detail.into(),
            fix: None,
        }
    }
}

impl Check {
    /// The check as one line without its verdict: `id: detail; fix: fix`.
    pub fn line(&self) -> String {
        match &self.fix {
            Some(fix) => format!("{}: {}; fix: {fix}", self.id, self.detail),
            None => format!("{}: {}", self.id, self.detail),
        }
    }
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match self.status {
            Status::Ok => "ok",
            Status::Problem => "PROBLEM",
            Status::Warning => "WARNING",
            Status::Skipped => "skipped",
        };
        write!(f, "{status} {}: {}", self.id, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "; fix: {fix}")?;
        }
        Ok(())
    }
}

/// Every check of a preflight, in a fixed order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Preflight {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Preflight {
    /// The checks that found a problem.
    pub fn problems(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Problem)
    }

    /// No problem found.
    pub fn is_ok(&self) -> bool {
        self.problems().next().is_none()
    }
}

/// An error and its causes on one line.
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}

// --- verdicts (pure) -------------------------------------------------------------------------

/// `vendor-manifests/` against its lock.
pub fn components_check(loaded: Result<usize, &crate::components::Error>) -> Check {
    match loaded {
        Ok(n) => Check::ok(
            "components",
            format!("{n} components in vendor-manifests/ match vendor.lock"),
        ),
        Err(e) => Check::problem(
            "components",
            chain(e),
            "run `capi-manage vendor` (renders vendor-manifests/ from vendor.toml and writes vendor.lock), then commit it",
        ),
    }
}

/// The cluster's credentials: every placeholder filled in.
pub fn credentials_check(path: &Path, placeholders: &[String]) -> Check {
    if placeholders.is_empty() {
        return Check::ok("credentials", format!("{} is filled in", path.display()));
    }
    Check::problem(
        "credentials",
        format!(
            "{} still holds {PLACEHOLDER} in {}",
            path.display(),
            placeholders.join(", ")
        ),
        "put the OpenStack application credential (auth_url, id, secret) in place of the placeholders",
    )
}

/// The inotify limits (`None`: unreadable) against kind's known issues.
pub fn inotify_check(watches: Option<u64>, instances: Option<u64>) -> Check {
    let (Some(w), Some(i)) = (watches, instances) else {
        return Check::skipped(
            "inotify",
            format!("{INOTIFY_DIR} cannot be read (not Linux?): the limits are not checked"),
        );
    };
    let mut low = Vec::new();
    if w < MIN_INOTIFY_WATCHES {
        low.push(format!("fs.inotify.max_user_watches={MIN_INOTIFY_WATCHES}"));
    }
    if i < MIN_INOTIFY_INSTANCES {
        low.push(format!(
            "fs.inotify.max_user_instances={MIN_INOTIFY_INSTANCES}"
        ));
    }
    let detail = format!("max_user_watches {w}, max_user_instances {i}");
    if low.is_empty() {
        return Check::ok("inotify", detail);
    }
    Check {
        status: Status::Warning,
        ..Check::problem(
            "inotify",
            format!(
                "{detail}: below kind's {MIN_INOTIFY_WATCHES} and {MIN_INOTIFY_INSTANCES} (pods in the kind node fail with \"too many open files\")"
            ),
            format!(
                "`sudo sysctl {}` (and in /etc/sysctl.d/ to keep it)",
                low.join(" ")
            ),
        )
    }
}

/// The Docker engine.
pub fn docker_check(host: &str, r: &Result<EngineVersion, crate::kind::DockerError>) -> Check {
    match r {
        Ok(v) => Check::ok(
            "docker",
            format!(
                "Docker Engine {} (API {}, {}) at {host}",
                v.version, v.api_version, v.platform
            ),
        ),
        Err(e) => Check::problem(
            "docker",
            chain(e),
            "start the Docker engine, or pass --docker-host (or set DOCKER_HOST) to where one listens",
        ),
    }
}

/// The node image.
pub fn image_check(
    image: &str,
    r: Option<&Result<ImageAvailability, crate::kind::DockerError>>,
) -> Check {
    let id = "node-image";
    match r {
        None => Check::skipped(id, format!("{image}: the Docker engine did not answer")),
        Some(Ok(ImageAvailability::Present(_))) => Check::ok(id, format!("{image} is present")),
        Some(Ok(ImageAvailability::Pullable(digest))) => Check::ok(
            id,
            format!("{image} is not present; its registry serves it ({digest}): it will be pulled"),
        ),
        Some(Ok(ImageAvailability::Missing)) => Check {
            status: Status::Warning,
            ..Check::problem(
                id,
                format!(
                    "{image} is missing from Docker; whether its registry serves it needs the network (--online)"
                ),
                format!(
                    "`docker pull {image}` (or `docker load` it on an air-gapped host), or pass --node-image with an image the engine has"
                ),
            )
        },
        Some(Err(e)) => Check::problem(
            id,
            format!(
                "{image} is missing from Docker and cannot be pulled: {}",
                chain(e)
            ),
            format!(
                "`docker pull {image}` (or `docker load` it on an air-gapped host), or pass --node-image with an image the engine has (on an air-gapped host: the node image pushed to the internal registry by `capi-manage images push`)"
            ),
        ),
    }
}

/// The remote's answer to a receive-pack handshake: the `git-remote` and `host-key` checks.
pub fn push_checks(
    url: &str,
    ssh: bool,
    accept_new_host_key: bool,
    r: &Result<PushAccess, PushError>,
) -> [Check; 2] {
    let not_ssh = || Check::skipped("host-key", format!("{url} is not an SSH remote"));
    let host_ok = || {
        if ssh {
            Check::ok("host-key", format!("the host key of {url} is known"))
        } else {
            not_ssh()
        }
    };
    match r {
        Ok(a) => [
            Check::ok(
                "git-remote",
                format!(
                    "{url} answers and accepts our credentials for a push to {} ({})",
                    a.remote_ref,
                    match &a.remote_commit {
                        Some(c) => format!("now at {}", &c[..c.len().min(12)]),
                        None => "new there".into(),
                    }
                ),
            ),
            host_ok(),
        ],
        Err(PushError::UnknownHostKey {
            host,
            fingerprint,
            known_hosts,
        }) => {
            let host_check = if accept_new_host_key {
                Check::ok(
                    "host-key",
                    format!(
                        "{host} ({fingerprint}) is unknown; --accept-new-host-key records it at the push"
                    ),
                )
            } else {
                Check::problem(
                    "host-key",
                    format!(
                        "{host} presents {fingerprint}, not in {}",
                        known_hosts.display()
                    ),
                    "verify the fingerprint with the git host, then pass --accept-new-host-key (or add it to known_hosts)",
                )
            };
            [
                Check::skipped(
                    "git-remote",
                    format!("{url}: push access is checked once the host key is known"),
                ),
                host_check,
            ]
        }
        Err(e @ (PushError::HostKeyChanged { .. } | PushError::HostKeyRevoked { .. })) => [
            Check::skipped("git-remote", format!("{url}: the host key does not verify")),
            Check::problem(
                "host-key",
                chain(e),
                "ask the git host for its key; if it really changed, remove the old line from known_hosts",
            ),
        ],
        Err(e @ PushError::AuthFailed { .. }) => [
            Check::problem(
                "git-remote",
                chain(e),
                "give credentials that may push: --ssh-identity (or ssh-agent) for SSH, $CAPI_MANAGE_GIT_TOKEN or --git-token-stdin for HTTP(S)",
            ),
            host_ok(),
        ],
        Err(e @ PushError::InvalidUrl { .. }) => [
            Check::problem(
                "git-remote",
                chain(e),
                "set remote `origin` (`git remote set-url origin URL`) or pass --git-url",
            ),
            not_ssh(),
        ],
        Err(e) => [
            Check::problem(
                "git-remote",
                chain(e),
                "check the URL and that the git server runs and is reachable, or pass --git-url",
            ),
            Check::skipped("host-key", format!("{url} did not answer")),
        ],
    }
}

// --- reads (I/O) -----------------------------------------------------------------------------

fn read_limit(dir: &Path, name: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The inotify limits under `dir` (normally `/proc/sys/fs/inotify`).
pub fn inotify_from(dir: &Path) -> Check {
    inotify_check(
        read_limit(dir, "max_user_watches"),
        read_limit(dir, "max_user_instances"),
    )
}

fn config_checks(o: &Options) -> (Vec<Check>, Option<Cluster>) {
    let dir = o.dir();
    match Repo::at(&o.root).cluster(&o.cluster) {
        Ok(c) => {
            let config = Check::ok(
                "config",
                format!(
                    "{} renders {} objects",
                    dir.path().display(),
                    c.objects.len()
                ),
            );
            let creds = credentials_check(&dir.credentials(), &c.credentials.placeholders);
            (vec![config, creds], Some(c))
        }
        Err(e) => {
            let config = Check::problem(
                "config",
                chain(&e),
                format!(
                    "fix the file named (`capi-manage render {}` shows the result)",
                    o.cluster
                ),
            );
            // The credentials on their own, so that their problem shows too.
            let creds = match Credentials::load(&dir.credentials()) {
                Ok(c) => credentials_check(&dir.credentials(), &c.placeholders),
                Err(e) => Check::problem(
                    "credentials",
                    chain(&e),
                    "write credentials.yaml from clusters/example/credentials.yaml",
                ),
            };
            (vec![config, creds], None)
        }
    }
}

async fn docker_checks(o: &Options, online: bool) -> Vec<Check> {
    let host = crate::kind::docker_host(o.kind.docker_host.as_deref());
    let mut checks = Vec::new();
    match crate::kind::engine_version(&host, o.kind.docker_timeout).await {
        Ok((docker, v)) => {
            checks.push(docker_check(&host, &Ok(v)));
            let image = &o.kind.image;
            let r = crate::kind::image_availability(&docker, image, online).await;
            checks.push(image_check(image, Some(&r)));
        }
        Err(e) => {
            checks.push(docker_check(&host, &Err(e)));
            checks.push(image_check(&o.kind.image, None));
        }
    }
    checks
}

async fn git_checks(o: &Options, online: bool, cancel: &CancellationToken) -> Vec<Check> {
    let facts = match crate::git::open(&o.root) {
        Ok(f) => f,
        Err(e) => {
            let problem = Check::problem(
                "branch",
                chain(&e),
                "run from a clone of your fork, on the branch Flux should follow",
            );
            return vec![
                Check::skipped("git-remote", "the repository cannot be read"),
                Check::skipped("host-key", "the repository cannot be read"),
                problem,
            ];
        }
    };
    let branch = local_branch_check(&o.root, &facts.branch);
    let url = match (&o.git.push_url, &facts.origin_url) {
        (Some(u), _) | (None, Some(u)) => u.clone(),
        (None, None) => {
            return vec![
                Check::problem(
                    "git-remote",
                    format!("{}: no remote `origin` to push to", o.root.display()),
                    "`git remote add origin URL`, or pass --git-url",
                ),
                Check::skipped("host-key", "no remote"),
                branch,
            ];
        }
    };
    let mut po = PushOptions::new(url, &facts.branch);
    if let Some(c) = &o.git.http_credentials {
        po.http_credentials = Some(c.clone());
    }
    // With --accept-new-host-key an unknown host key is recorded here, as the push would.
    po.ssh = o.git.ssh.clone();
    po.connect_timeout = o.timeouts.connect.unwrap_or(Duration::from_secs(30));
    po.read_timeout = o.timeouts.request.unwrap_or(Duration::from_secs(30));
    let ssh = po.url.starts_with("ssh://")
        || (!po.url.contains("://") && po.url.contains(':') && !Path::new(&po.url).exists());
    if !online {
        return vec![
            Check::skipped(
                "git-remote",
                format!("{}: push access is checked online", po.url),
            ),
            Check::skipped("host-key", "checked online"),
            branch,
        ];
    }
    let r = crate::git::check_push_access(&po, &Silent, cancel).await;
    let [remote, host] = push_checks(&po.url, ssh, o.git.ssh.accept_new_host_key, &r);
    vec![remote, host, branch]
}

/// The branch is checked out and has a commit to push.
fn local_branch_check(root: &Path, branch: &str) -> Check {
    let has_commit = gix::discover(root)
        .ok()
        .and_then(|r| r.head_id().ok().map(|id| id.detach()));
    match has_commit {
        Some(id) => Check::ok(
            "branch",
            format!("{branch} is checked out at {}", id.to_hex_with_len(12)),
        ),
        None => Check::problem(
            "branch",
            format!("{branch} has no commit yet"),
            "commit the repository (`git commit`) before bootstrap",
        ),
    }
}

async fn kubeconfig_check(o: &Options, online: bool) -> Check {
    let path = o.dir().kubeconfig();
    let moved = super::State::load(&o.dir().teardown_state())
        .is_ok_and(|s| s.done.contains(super::steps::MOVE));
    if moved {
        return Check::skipped(
            "kubeconfig",
            "the cluster already moved back to the kind cluster (teardown resumes)",
        );
    }
    if !path.is_file() {
        return Check::problem(
            "kubeconfig",
            format!("{} is missing", path.display()),
            "restore it (bootstrap wrote it; the cluster's <name>-kubeconfig Secret holds it)",
        );
    }
    if !online {
        return Check::ok("kubeconfig", format!("{} exists", path.display()));
    }
    let connected = async {
        let client = crate::kube::connect(&o.timeouts.client(path.clone()))
            .await
            .map_err(|e| chain(&e))?;
        client.apiserver_version().await.map_err(|e| chain(&e))
    };
    match connected.await {
        Ok(v) => Check::ok(
            "kubeconfig",
            format!("{} reaches Kubernetes {}", path.display(), v.git_version),
        ),
        Err(e) => Check::problem(
            "kubeconfig",
            format!("{}: {e}", path.display()),
            "check that the cluster's API server is up and reachable from here",
        ),
    }
}

async fn cloud_checks(
    o: &Options,
    operation: Operation,
    cluster: Option<&Cluster>,
    online: bool,
) -> Vec<Check> {
    let Some(options) = &o.cloud_preflight else {
        return vec![Check::skipped("cloud", "skipped as asked")];
    };
    if !online {
        return vec![Check::skipped("cloud", "checked online")];
    }
    let Some(cluster) = cluster.filter(|c| c.credentials.placeholders.is_empty()) else {
        return vec![Check::skipped(
            "cloud",
            "needs the cluster's config and filled-in credentials",
        )];
    };
    // A cluster that may exist already (teardown, or a bootstrap resuming after a step) is
    // checked for its login and catalog only: its own machines would count against the quotas.
    let existing = operation == Operation::Teardown
        || super::State::load(&cluster.dir.bootstrap_state()).is_ok_and(|s| !s.done.is_empty());
    let options = crate::cloud::Options {
        existing,
        ..options.clone()
    };
    let credentials = cluster.dir.credentials();
    match crate::cloud::preflight_cluster(cluster, &options).await {
        Ok(r) if r.is_ok() => vec![Check::ok(
            "cloud",
            format!(
                "{} logs in and the cloud has what the values need",
                credentials.display()
            ),
        )],
        Ok(r) => r
            .problems
            .iter()
            .map(|p| {
                Check::problem(
                    "cloud",
                    format!("{} cannot hold this cluster: {p}", credentials.display()),
                    "change the values, or create what they name in the project",
                )
            })
            .collect(),
        Err(e) => vec![Check::problem(
            "cloud",
            format!(
                "the preflight against the OpenStack cloud of {} could not run: {}",
                credentials.display(),
                chain(&e)
            ),
            "check clouds.yaml in credentials.yaml (auth_url, application credential, cacert)",
        )],
    }
}

/// Runs every check for `operation` at once and returns them all; `online` adds those that
/// need the network (git remote, registry, cluster, cloud). Reads only: nothing is created.
///
/// # Errors
///
/// [`super::Error::Cancelled`] (step `preflight`) when `cancel` fired; problems are in the
/// returned [`Preflight`], not errors.
pub async fn preflight(
    o: &Options,
    operation: Operation,
    online: bool,
    cancel: &CancellationToken,
) -> Result<Preflight, super::Error> {
    let work = async {
        let mut checks = Vec::new();
        // Both operations create a kind cluster of this name.
        if let Err(e) = crate::kind::validate_name(&o.kind.name) {
            checks.push(Check::problem(
                "config",
                format!("kind cluster: {e}"),
                "choose another kind cluster name",
            ));
        }
        if operation == Operation::Bootstrap {
            let root = o.root.clone();
            let components = tokio::task::spawn_blocking(move || {
                // Each component read and dropped in turn: the check holds one at a time.
                let vendored = crate::components::open(&root)?;
                for c in vendored.iter() {
                    c?;
                }
                Ok(vendored.len())
            });
            let (config, cluster) = {
                let o2 = o.clone();
                tokio::task::spawn_blocking(move || config_checks(&o2))
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            };
            let components = components
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            checks.push(components_check(components.as_ref().copied()));
            checks.extend(config);
            let (docker, git, cloud) = futures::join!(
                docker_checks(o, online),
                git_checks(o, online, cancel),
                cloud_checks(o, operation, cluster.as_ref(), online),
            );
            checks.extend(docker);
            checks.extend(super::airgap::images_check(o, operation).await);
            checks.push(inotify_from(Path::new(INOTIFY_DIR)));
            checks.extend(git);
            checks.extend(cloud);
        } else {
            let cluster = Repo::at(&o.root).cluster(&o.cluster).ok();
            let (docker, kubeconfig, cloud) = futures::join!(
                docker_checks(o, online),
                kubeconfig_check(o, online),
                cloud_checks(o, operation, cluster.as_ref(), online),
            );
            checks.extend(docker);
            checks.extend(super::airgap::images_check(o, operation).await);
            checks.push(inotify_from(Path::new(INOTIFY_DIR)));
            checks.push(kubeconfig);
            checks.extend(cloud);
        }
        Preflight { checks }
    };
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(super::Error::Cancelled { step: "preflight" }),
        p = work => Ok(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inotify_limits_below_kinds_name_each_setting() {
        assert_eq!(inotify_check(Some(524_288), Some(512)).status, Status::Ok);
        let c = inotify_check(Some(8192), Some(512));
        assert_eq!(c.status, Status::Warning);
        let fix = c.fix.unwrap();
        assert!(fix.contains("fs.inotify.max_user_watches=524288"), "{fix}");
        assert!(!fix.contains("max_user_instances"), "{fix}");
        let c = inotify_check(Some(1 << 20), Some(128));
        assert!(c.fix.unwrap().contains("fs.inotify.max_user_instances=512"));
        assert_eq!(inotify_check(None, Some(1)).status, Status::Skipped);
    }

    #[test]
    fn placeholders_are_a_problem_naming_the_fields() {
        let p = Path::new("clusters/a/credentials.yaml");
        assert_eq!(credentials_check(p, &[]).status, Status::Ok);
        let c = credentials_check(p, &["auth_url".into(), "secret".into()]);
        assert_eq!(c.status, Status::Problem);
        assert!(c.detail.contains("auth_url, secret"), "{}", c.detail);
        let line = c.to_string();
        assert!(line.starts_with("PROBLEM credentials: "), "{line}");
        assert!(line.contains("; fix: "), "{line}");
    }

    #[test]
    fn the_remotes_answer_decides_two_checks() {
        let unknown = Err(PushError::UnknownHostKey {
            host: "[127.0.0.1]:2222".into(),
            fingerprint: "SHA256:x".into(),
            known_hosts: "/h/known_hosts".into(),
        });
        let [remote, host] = push_checks("ssh://git@127.0.0.1:2222/r", true, false, &unknown);
        assert_eq!(
            (remote.status, host.status),
            (Status::Skipped, Status::Problem)
        );
        assert!(host.fix.unwrap().contains("--accept-new-host-key"));
        let [_, host] = push_checks("ssh://git@127.0.0.1:2222/r", true, true, &unknown);
        assert_eq!(host.status, Status::Ok);
        let auth = Err(PushError::AuthFailed {
            url: "http://127.0.0.1:1/r".into(),
            detail: "401".into(),
        });
        let [remote, host] = push_checks("http://127.0.0.1:1/r", false, false, &auth);
        assert_eq!(
            (remote.status, host.status),
            (Status::Problem, Status::Skipped)
        );
        let ok = Ok(PushAccess {
            url: "u".into(),
            remote_ref: "refs/heads/main".into(),
            remote_commit: None,
            refs: 0,
        });
        let [remote, _] = push_checks("u", false, false, &ok);
        assert_eq!(remote.status, Status::Ok);
        assert!(remote.detail.contains("new there"), "{}", remote.detail);
    }
}
