use std::path::PathBuf;

use anyhow::Context;
use capi_manage::kube::{ApplyOptions, Discovery, apply, connect};
use capi_manage::manifest::parse_file;

use super::{KubeArgs, Terminal};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files or folders (their *.yaml and *.yml files, sorted, not recursive).
    #[arg(short = 'f', long = "filename", required = true, value_name = "PATH")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Objects applied at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

pub async fn run(args: Args, observer: &Terminal) -> anyhow::Result<()> {
    let mut objects = Vec::new();
    for path in &args.files {
        for file in manifest_files(path)? {
            objects.extend(parse_file(&file)?);
        }
    }
    let client = connect(&args.kube.options()).await?;
    let discovery = Discovery::new(client);
    let cancel = super::cancel_on_ctrl_c();
    let options = ApplyOptions {
        concurrency: args.concurrency,
        ..Default::default()
    };
    apply(&discovery, &objects, &options, observer, &cancel).await?;
    Ok(())
}

fn manifest_files(path: &PathBuf) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.clone()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read folder {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}
