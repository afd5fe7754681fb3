//! `seal`: seal `credentials.yaml` with the new cluster's sealed-secrets certificate into
//! `credentials-sealed.yaml`, listed in the cluster's kustomization. Reading the credentials,
//! fetching the certificate and writing the sealed file are shared with `rotate`.

use std::path::{Path, PathBuf};

use futures::future::LocalBoxFuture;

use super::Step;
use crate::bootstrap::StepError;
use crate::bootstrap::context::Context;
use crate::observe::{Observer, ObserverExt};
use crate::repo::{ClusterDir, SEALED_CREDENTIALS};
use crate::seal::{CertSource, SealOptions, SealingKey, Secret};

/// Seals the credentials for the self-managed cluster's controller.
pub(super) struct Seal;

impl Step for Seal {
    fn id(&self) -> &'static str {
        "seal"
    }

    fn description(&self) -> &'static str {
        "seal the credentials with the new cluster's certificate"
    }

    fn run<'a>(&'a self, ctx: &'a mut Context<'_>) -> LocalBoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let o = ctx.o;
            let target = ctx.target().await?;
            let source = CertSource::Cluster {
                namespace: o.sealed_secrets_namespace.clone(),
                name: o.sealed_secrets_name.clone(),
            };
            let (key, from) = sealing_key(&source, Some(target.client()), ctx.observer).await?;
            ctx.observer.action(format!(
                "sealing with certificate {from}: subject {}, SHA-256 fingerprint {}",
                key.subject(),
                key.fingerprint_sha256()
            ));
            let dir = &ctx.dir;
            let secret = read_credentials(&dir.credentials())?;
            let out = write_sealed(dir, &sealed_yaml(dir, &secret, &key)?)?;
            crate::repo::list_resource(&dir.kustomization(), SEALED_CREDENTIALS)
                .map_err(StepError::Repo)?;
            ctx.observer.success(
                format!(
                    "sealed {} into {}",
                    dir.relative(&dir.credentials()).display(),
                    dir.relative(&out).display()
                ),
                None,
            );
            Ok(())
        })
    }
}

/// The one Secret of the credentials file at `path`.
pub(in crate::bootstrap) fn read_credentials(path: &Path) -> Result<Secret, StepError> {
    let text =
        zeroize::Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| StepError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            })?,
        );
    let mut secrets = Secret::parse(&text, Some(path)).map_err(|source| StepError::Seal {
        path: path.to_path_buf(),
        source: Box::new(source),
    })?;
    if secrets.len() != 1 {
        return Err(StepError::CredentialsCount {
            path: path.to_path_buf(),
            found: secrets.len(),
        });
    }
    Ok(secrets.remove(0))
}

/// The sealing key of `source` and where it came from (a cluster source fetches the
/// controller's certificate through `client`, as kubeseal does).
pub(in crate::bootstrap) async fn sealing_key(
    source: &CertSource,
    client: Option<&::kube::Client>,
    observer: &dyn Observer,
) -> Result<(SealingKey, String), StepError> {
    // A cluster source waits on the controller (through the API server's service proxy, or
    // its key Secret when the proxy fails): reported as waiting, not as work.
    let what = match (source, client) {
        (CertSource::Cluster { namespace, name }, Some(_)) => Some(format!(
            "the certificate of the controller {namespace}/{name}"
        )),
        _ => None,
    };
    if let Some(what) = &what {
        observer.waiting(what.clone(), None);
    }
    let resolved = source
        .resolve(client, observer)
        .await
        .map_err(|e| StepError::Certificate {
            source_of: Box::new(source.clone()),
            source: Box::new(e),
        })?;
    if let Some(what) = what {
        observer.success(what, None);
    }
    Ok(resolved)
}

/// `secret` sealed with `key`, as the text of the cluster's `credentials-sealed.yaml`.
pub(in crate::bootstrap) fn sealed_yaml(
    dir: &ClusterDir,
    secret: &Secret,
    key: &SealingKey,
) -> Result<String, StepError> {
    let sealed = crate::seal::seal(secret, key, &SealOptions::default()).map_err(|source| {
        StepError::Seal {
            path: dir.credentials(),
            source: Box::new(source),
        }
    })?;
    Ok(format!(
        "# The cluster's OpenStack credentials, sealed by capi-manage for the cluster's\n# sealed-secrets controller. Re-seal with `capi-manage rotate {}`.\n{}",
        dir.name(),
        crate::seal::to_yaml(&sealed)
    ))
}

/// Writes the cluster's `credentials-sealed.yaml` whole, in one rename; returns the file.
pub(in crate::bootstrap) fn write_sealed(
    dir: &ClusterDir,
    yaml: &str,
) -> Result<PathBuf, StepError> {
    let out = dir.sealed_credentials();
    crate::fs::write_atomic(&out, yaml.as_bytes(), crate::fs::Access::Keep).map_err(|source| {
        StepError::Io {
            action: "write",
            path: out.clone(),
            source,
        }
    })?;
    Ok(out)
}
