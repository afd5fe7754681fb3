//! What the steps do with the other modules: vendored components, git and Flux.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::state::write_private;
use super::{DeployKeyNotice, Error, Options, relative};
use crate::components::{InstallOptions, Unit};
use crate::flux::Suspendable;
use crate::flux::generate::{SourceAuth, SyncOptions};
use crate::git::{CommitOptions, CommitOutcome, PushOptions};
use crate::kube::Discovery;
use crate::kube::wait::WaitOptions;
use crate::observe::{Observer, ObserverExt};

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn other(message: String) -> BoxError {
    Box::new(std::io::Error::other(message))
}

/// What [`commit_and_push`] left on the remote.
pub(super) struct Pushed {
    pub commit: String,
    pub branch: String,
}

/// The URL the bootstrap pushes to: `--git-url`, else `origin`.
pub(super) fn push_url(o: &Options) -> Result<(String, String), BoxError> {
    let facts = crate::git::open(&o.root)?;
    let url = match (&o.git.push_url, &facts.origin_url) {
        (Some(u), _) | (None, Some(u)) => u.clone(),
        (None, None) => {
            return Err(other(format!(
                "{}: the repository has no remote `origin`; add one (`git remote add origin <url>`) or pass --git-url",
                o.root.display()
            )));
        }
    };
    Ok((url, facts.branch))
}

/// The URL Flux clones.
pub(super) fn flux_url(o: &Options) -> Result<String, BoxError> {
    // Never a credential in the GitRepository: Flux's go in its source Secret.
    let url = match &o.git.flux_url {
        Some(u) => u.clone(),
        None => crate::git::flux_url(&push_url(o)?.0)?,
    };
    Ok(crate::git::split_credentials(&url).0)
}

/// Commits the sealed credentials and the kustomization listing them, and pushes the branch.
pub(super) async fn commit_and_push(
    o: &Options,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Pushed, BoxError> {
    let (url, branch) = push_url(o)?;
    let dir = relative(&o.root, &o.cluster_dir());
    let files: Vec<PathBuf> = vec![
        dir.join(super::run::SEALED_CREDENTIALS),
        dir.join("kustomization.yaml"),
    ];
    let message = o
        .git
        .message
        .clone()
        .unwrap_or_else(|| crate::git::bootstrap_message(&o.cluster));
    let mut co = CommitOptions::new(files, message);
    co.author = o.git.author.clone();
    let root = o.root.clone();
    let obs: &dyn Observer = observer;
    let outcome = crate::git::commit(&root, &co, obs)?;
    match &outcome {
        CommitOutcome::Committed { id, .. } => observer.success(format!("committed {id}"), None),
        CommitOutcome::Unchanged { head } => {
            observer.success(format!("nothing new to commit (at {head})"), None)
        }
    }
    let mut po = PushOptions::new(url, &branch);
    if let Some(c) = &o.git.http_credentials {
        po.http_credentials = Some(c.clone());
    }
    po.ssh = o.git.ssh.clone();
    let pushed = crate::git::push(&o.root, &po, observer, cancel).await?;
    Ok(Pushed {
        commit: pushed.new,
        branch,
    })
}

/// Flux's deploy key: generated once (kept in the state folder, 0600), shown, and confirmed.
/// Nothing to do for HTTP(S) remotes.
pub(super) async fn deploy_key(o: &Options, observer: &dyn Observer) -> Result<(), BoxError> {
    let url = flux_url(o)?;
    if !url.starts_with("ssh://") {
        observer.success(format!("{url} is not SSH: no deploy key needed"), None);
        return Ok(());
    }
    let (_, public) = load_or_generate_key(o)?;
    let fingerprint = ssh_key::PublicKey::from_openssh(public.trim())
        .map(|k| k.fingerprint(ssh_key::HashAlg::Sha256).to_string())
        .map_err(|e| other(format!("deploy key {}: {e}", pub_path(o).display())))?;
    let notice = DeployKeyNotice {
        url: url.clone(),
        public_line: public.trim().to_string(),
        fingerprint: fingerprint.clone(),
        path: pub_path(o),
    };
    observer.action(format!(
        "add this deploy key (read access) to {url}: {}",
        notice.public_line
    ));
    if let Some(confirm) = &o.confirm_deploy_key {
        let confirm = confirm.clone();
        let n = notice.clone();
        let added = tokio::task::spawn_blocking(move || confirm(&n))
            .await
            .map_err(|e| other(format!("deploy key prompt: {e}")))?;
        if !added {
            return Err(Box::new(Error::DeployKeyNotAdded {
                url,
                fingerprint,
                path: notice.path,
            }));
        }
    }
    Ok(())
}

fn key_path(o: &Options) -> PathBuf {
    o.state_dir().join("deploy-key")
}

fn pub_path(o: &Options) -> PathBuf {
    o.state_dir().join("deploy-key.pub")
}

/// The deploy key pair (private OpenSSH text, public line), generated on first use.
pub(super) fn load_or_generate_key(
    o: &Options,
) -> Result<(zeroize::Zeroizing<String>, String), BoxError> {
    let (kp, pp) = (key_path(o), pub_path(o));
    if let (Ok(private), Ok(public)) = (std::fs::read_to_string(&kp), std::fs::read_to_string(&pp))
    {
        return Ok((zeroize::Zeroizing::new(private), public));
    }
    let key = crate::git::generate_deploy_key(&format!("flux-{}", o.cluster))?;
    write_private(&kp, key.private_openssh.as_bytes())
        .map_err(|e| other(format!("cannot write {}: {e}", kp.display())))?;
    write_private(&pp, format!("{}\n", key.public_line).as_bytes())
        .map_err(|e| other(format!("cannot write {}: {e}", pp.display())))?;
    Ok((
        key.private_openssh.clone(),
        format!("{}\n", key.public_line),
    ))
}

/// Installs every vendored component (verified against vendor.lock) with health gates.
pub(super) async fn install(
    discovery: &Discovery,
    o: &Options,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), BoxError> {
    let vendored = crate::components::load(&o.root)?;
    let units: Vec<Unit> = vendored
        .components
        .into_iter()
        .map(|c| Unit {
            name: format!("{} {}", c.name, c.version),
            objects: c.objects,
        })
        .collect();
    let io = InstallOptions {
        timeout: o.timeouts.components,
        ..InstallOptions::default()
    };
    crate::components::install(discovery, &units, &io, observer, cancel).await?;
    Ok(())
}

/// The Flux objects that sync the cluster from git.
pub(super) async fn sync_options(
    o: &Options,
    branch: &str,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<SyncOptions, BoxError> {
    let url = flux_url(o)?;
    let mut so = SyncOptions::new(&o.cluster, &url, branch);
    so.namespace = o.flux_namespace.clone();
    so.auth = if url.starts_with("ssh://") {
        let (private, public) = load_or_generate_key(o)?;
        let (host, port) = ssh_host_port(&url).ok_or_else(|| other(format!("{url}: no host")))?;
        let scanned = crate::git::scan_host_keys(
            &crate::git::HostKeyScanOptions::new(host.clone(), port),
            observer,
            cancel,
        )
        .await?;
        // The scan proves nothing: Flux trusts only the keys the push's known_hosts lists (for
        // Flux's host, which may differ from the push's).
        let known_hosts = o.git.ssh.known_hosts.clone().unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".ssh/known_hosts")
        });
        let keys = scanned.verified_by(&known_hosts, &host, port)?;
        if keys.lines.len() < scanned.lines.len() {
            observer.warning(format!(
                "{} of the {} host keys {host} offers are not in {}: Flux is given only the {} that are",
                scanned.lines.len() - keys.lines.len(),
                scanned.lines.len(),
                known_hosts.display(),
                keys.lines.len()
            ));
        }
        SourceAuth::Ssh {
            identity: private.to_string(),
            identity_pub: public.trim().to_string(),
            known_hosts: keys.known_hosts(),
        }
    } else if let Some(c) = o
        .git
        .flux_http_credentials
        .as_ref()
        .or(o.git.http_credentials.as_ref())
    {
        if o.git.flux_http_credentials.is_none() {
            observer.warning(
                "Flux gets the push credentials, which can write to the repository: give it a read-only token of its own"
                    .to_string(),
            );
        }
        SourceAuth::Https {
            username: Some(c.username.clone()),
            password: Some(c.password.clone()),
            bearer_token: None,
            ca_crt: None,
        }
    } else {
        SourceAuth::None
    };
    Ok(so)
}

/// Applies Flux's source Secret, GitRepository and Kustomizations on the cluster.
pub(super) async fn flux_sync(
    target: &Discovery,
    o: &Options,
    branch: &str,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), BoxError> {
    let so = sync_options(o, branch, observer, cancel).await?;
    let objects = crate::flux::generate::sync_objects(&so);
    crate::kube::apply(target, &objects, &Default::default(), observer, cancel).await?;
    Ok(())
}

/// Waits until Flux applied `revision` (`<branch>@sha1:<commit>`).
pub(super) async fn wait_synced(
    target: &Discovery,
    o: &Options,
    branch: &str,
    revision: &str,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), BoxError> {
    let mut so = SyncOptions::new(&o.cluster, "", branch);
    so.namespace = o.flux_namespace.clone();
    crate::flux::health::wait_synced(
        target,
        &so.names(),
        revision,
        WaitOptions::timeout(o.timeouts.sync),
        observer,
        cancel,
    )
    .await?;
    Ok(())
}

/// Suspends Flux's Kustomization of the cluster and its HelmReleases (teardown), so Flux does
/// not recreate what is moved away.
pub(super) async fn suspend_sync(
    target: &Discovery,
    o: &Options,
    observer: &dyn Observer,
) -> Result<(), BoxError> {
    match crate::flux::suspend(
        target,
        Suspendable::Kustomization,
        &o.flux_namespace,
        &o.cluster,
    )
    .await
    {
        Ok(()) => observer.success(
            format!("suspended Kustomization {}/{}", o.flux_namespace, o.cluster),
            None,
        ),
        Err(e) if is_not_found(&e) => observer.warning(format!(
            "no Kustomization {}/{} to suspend",
            o.flux_namespace, o.cluster
        )),
        Err(e) => return Err(Box::new(e)),
    }
    Ok(())
}

/// Host and port of an `ssh://[user@]host[:port]/path` URL (IPv6 hosts in brackets).
fn ssh_host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("ssh://")?;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => 22,
    };
    Some((host.to_string(), port))
}

fn is_not_found(e: &crate::flux::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<crate::kube::RequestError>() {
            return r.is_not_found();
        }
        source = s.source();
    }
    false
}

/// What a move from `from` needs on `to` besides the vendored components: the kinds of the
/// add-on provider (`addons.stackhpc.com`, whose objects the chart makes and the move carries),
/// which the provider registers when it starts. So the cluster's own controllers (the rendered
/// objects outside the cluster's namespace: the add-on provider's and janitor's
/// HelmRepositories and HelmReleases) are applied on `to`, and every kind the move will carry
/// is awaited there. Bootstrap does this on the new cluster (Flux applies the same objects from
/// git later), teardown on the kind cluster the cluster moves back to.
pub(super) async fn cluster_controllers(
    from: &Discovery,
    to: &Discovery,
    objects: &[crate::manifest::Object],
    o: &Options,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), BoxError> {
    let controllers: Vec<crate::manifest::Object> = objects
        .iter()
        .filter(|x| x.kind() != "SealedSecret")
        .filter(|x| match x.namespace() {
            Some(ns) => ns != o.namespace,
            None => x.kind() == "Namespace" && x.name() != o.namespace,
        })
        .cloned()
        .collect();
    if !controllers.is_empty() {
        crate::kube::apply(
            to,
            &controllers,
            &crate::kube::ApplyOptions::default(),
            observer,
            cancel,
        )
        .await?;
    }
    let plan = crate::capi::plan(from, &o.namespace).await?;
    let mut needed: Vec<crate::manifest::Gvk> = Vec::new();
    for r in plan.moved() {
        let gvk = crate::manifest::Gvk::from_api_version(&r.api_version, &r.kind);
        if !needed.contains(&gvk) {
            needed.push(gvk);
        }
    }
    let deadline = std::time::Instant::now() + o.timeouts.components;
    loop {
        let mut missing = Vec::new();
        for gvk in &needed {
            to.invalidate(&gvk.api_version()).await;
            if to.resolve(gvk).await?.is_none() {
                missing.push(format!("{} ({})", gvk.kind, gvk.api_version()));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Box::new(Error::TargetLacksKinds {
                missing,
                timeout: o.timeouts.components,
            }));
        }
        observer.waiting(
            "the new cluster to serve the kinds the move carries",
            Some(missing.join(", ")),
        );
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(Box::new(crate::kube::Error::Cancelled)),
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls_give_host_and_port() {
        assert_eq!(
            ssh_host_port("ssh://git@example.com/org/repo.git"),
            Some(("example.com".into(), 22))
        );
        assert_eq!(
            ssh_host_port("ssh://u@127.0.0.1:2222/srv/config.git"),
            Some(("127.0.0.1".into(), 2222))
        );
        assert_eq!(
            ssh_host_port("ssh://[::1]:2200/x"),
            Some(("::1".into(), 2200))
        );
        assert_eq!(ssh_host_port("https://example.com/x"), None);
    }
}
