use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A cluster name (clusters/<name>) or a folder with a kustomization.yaml.
    pub target: String,
}

/// A name resolves to `clusters/<name>` in the config repository; anything that is a folder
/// with a kustomization is used as is.
pub fn resolve(target: &str) -> anyhow::Result<PathBuf> {
    let as_path = PathBuf::from(target);
    if as_path.is_dir() && capi_manage::render::is_kustomization_dir(&as_path) {
        return Ok(as_path);
    }
    let repo = capi_manage::repo::Repo::discover(&std::env::current_dir()?)
        .with_context(|| format!("{target} is not a folder with a kustomization"))?;
    Ok(repo.cluster_dir(target)?)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = resolve(&args.target)?;
    let objects = capi_manage::render::render(&dir)?;
    let yaml = capi_manage::manifest::to_yaml(&objects);
    let mut out = std::io::stdout().lock();
    out.write_all(yaml.as_bytes())?;
    out.flush()?;
    Ok(())
}
