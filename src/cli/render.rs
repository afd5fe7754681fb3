use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A cluster name (clusters/<name>) or a folder with a kustomization.yaml.
    pub target: String,
    /// Output order when the kustomization sets no `sortOptions`, as kustomize's `--reorder`:
    /// `legacy` (kind order, then names) or `none` (the order resources are read in).
    #[arg(long, value_enum)]
    pub reorder: Option<ReorderArg>,
}

/// Values of `--reorder`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReorderArg {
    /// kustomize's legacy order.
    Legacy,
    /// The order the resources are read and generated in.
    None,
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
    let mut options = capi_manage::render::Options::default();
    options.reorder = match args.reorder {
        None => capi_manage::render::Reorder::Unspecified,
        Some(ReorderArg::Legacy) => capi_manage::render::Reorder::Legacy,
        Some(ReorderArg::None) => capi_manage::render::Reorder::None,
    };
    let objects = capi_manage::render::render_with(&dir, &options)?;
    let yaml = capi_manage::manifest::to_yaml(&objects);
    let mut out = std::io::stdout().lock();
    out.write_all(yaml.as_bytes())?;
    out.flush()?;
    Ok(())
}
