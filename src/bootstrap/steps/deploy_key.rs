//! `deploy-key`: Flux's deploy key, generated once (kept in the state folder, 0600), shown,
//! and confirmed as added to the git host. Nothing to do for HTTP(S) remotes.

use futures::future::LocalBoxFuture;

use super::Step;
use crate::bootstrap::context::Context;
use crate::bootstrap::{DeployKeyNotice, Options, StepError};
use crate::fs::write_private;
use crate::observe::ObserverExt;
use crate::repo::ClusterDir;

/// Sets up Flux's deploy key.
pub(super) struct DeployKey;

impl Step for DeployKey {
    fn id(&self) -> &'static str {
        "deploy-key"
    }

    fn description(&self) -> &'static str {
        "set up Flux's deploy key"
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let (o, dir, observer) = (ctx.o, &ctx.dir, ctx.observer);
            let url = flux_url(o)?;
            if !url.starts_with("ssh://") {
                observer.success(format!("{url} is not SSH: no deploy key needed"), None);
                return Ok(());
            }
            let (_, public) = load_or_generate_key(dir)?;
            let path = dir.deploy_key_pub();
            let fingerprint = ssh_key::PublicKey::from_openssh(public.trim())
                .map(|k| k.fingerprint(ssh_key::HashAlg::Sha256).to_string())
                .map_err(|source| StepError::DeployKeyFile {
                    path: path.clone(),
                    source,
                })?;
            let notice = DeployKeyNotice {
                url: url.clone(),
                public_line: public.trim().to_string(),
                fingerprint: fingerprint.clone(),
                path,
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
                    .map_err(StepError::Confirm)?;
                if !added {
                    return Err(StepError::DeployKeyNotAdded {
                        url,
                        fingerprint,
                        path: notice.path,
                    });
                }
            }
            Ok(())
        })
    }
}

/// The URL Flux clones: `flux_url`, else the push URL (scp-like forms turned into `ssh://`),
/// never with credentials (Flux's go in its source Secret).
pub(super) fn flux_url(o: &Options) -> Result<String, StepError> {
    let url = match &o.git.flux_url {
        Some(u) => u.clone(),
        None => {
            let (push, _) = super::push::remote(&o.root, o.git.push_url.as_deref())?;
            crate::git::flux_url(&push).map_err(StepError::GitUrl)?
        }
    };
    Ok(crate::git::split_credentials(&url).0)
}

/// The deploy key pair (private OpenSSH text, public line), generated on first use.
pub(super) fn load_or_generate_key(
    dir: &ClusterDir,
) -> Result<(zeroize::Zeroizing<String>, String), StepError> {
    let (kp, pp) = (dir.deploy_key(), dir.deploy_key_pub());
    if let (Ok(private), Ok(public)) = (std::fs::read_to_string(&kp), std::fs::read_to_string(&pp))
    {
        return Ok((zeroize::Zeroizing::new(private), public));
    }
    let key = crate::git::generate_deploy_key(&format!("flux-{}", dir.name()))
        .map_err(StepError::DeployKey)?;
    let write = |path: &std::path::Path, bytes: &[u8]| {
        write_private(path, bytes).map_err(|source| StepError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })
    };
    write(&kp, key.private_openssh.as_bytes())?;
    write(&pp, format!("{}\n", key.public_line).as_bytes())?;
    Ok((
        key.private_openssh.clone(),
        format!("{}\n", key.public_line),
    ))
}
