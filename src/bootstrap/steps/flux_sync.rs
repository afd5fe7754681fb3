//! `flux-sync`: apply Flux's source Secret, GitRepository and Kustomizations on the cluster.

use std::path::PathBuf;

use futures::future::LocalBoxFuture;

use super::Step;
use super::deploy_key::{flux_url, load_or_generate_key};
use crate::bootstrap::context::Context;
use crate::bootstrap::{Side, StepError};
use crate::flux::{SourceAuth, SyncOptions};
use crate::observe::ObserverExt;

/// Points Flux at the repository.
pub(super) struct FluxSync;

impl Step for FluxSync {
    fn id(&self) -> &'static str {
        "flux-sync"
    }

    fn description(&self) -> &'static str {
        "point Flux at the repository"
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let target = ctx.target().await?;
            let so = sync_options(ctx).await?;
            let objects = crate::flux::sync_objects(&so);
            crate::kube::apply(
                &target,
                &objects,
                &Default::default(),
                ctx.observer,
                ctx.cancel,
            )
            .await
            .map_err(|source| StepError::Kube {
                side: Side::Cluster,
                source: Box::new(source),
            })?;
            Ok(())
        })
    }
}

/// The Flux objects that sync the cluster from git.
async fn sync_options(ctx: &Context<'_>) -> Result<SyncOptions, StepError> {
    let (o, observer, cancel) = (ctx.o, ctx.observer, ctx.cancel);
    let branch = ctx.state.branch.clone().unwrap_or_default();
    let url = flux_url(o)?;
    let mut so = SyncOptions::new(&o.cluster, &url, &branch);
    so.namespace = o.flux_namespace.clone();
    so.auth = if url.starts_with("ssh://") {
        let (private, public) = load_or_generate_key(&ctx.dir)?;
        let (host, port) =
            ssh_host_port(&url).ok_or_else(|| StepError::NoHost { url: url.clone() })?;
        let scanned = crate::git::scan_host_keys(
            &crate::git::HostKeyScanOptions::new(host.clone(), port),
            observer,
            cancel,
        )
        .await
        .map_err(StepError::HostKeys)?;
        // The scan proves nothing: Flux trusts only the keys the push's known_hosts lists (for
        // Flux's host, which may differ from the push's).
        let known_hosts = o.git.ssh.known_hosts.clone().unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".ssh/known_hosts")
        });
        let keys = scanned
            .verified_by(&known_hosts, &host, port)
            .map_err(StepError::HostKeys)?;
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
