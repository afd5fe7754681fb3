//! `capi-manage apply`: server-side apply as kubectl takes it (`-f`, `-R`, `-k`,
//! `--field-manager`, `--force-conflicts`, `--dry-run=server`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use capi_manage::kube::{ApplyOptions, Discovery, FIELD_MANAGER, apply, connect};
use capi_manage::manifest::parse_file;

use super::{KubeArgs, Terminal};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files or folders (their *.yaml, *.yml and *.json files, sorted).
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "PATH",
        required_unless_present = "kustomize"
    )]
    pub files: Vec<PathBuf>,
    /// Also the files of the folders' subfolders.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Render this kustomization folder (as `capi-manage render` does), then apply the result.
    #[arg(short = 'k', long, value_name = "DIR", conflicts_with = "files")]
    pub kustomize: Option<PathBuf>,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// The field manager that owns what is applied.
    #[arg(long, value_name = "NAME", default_value = FIELD_MANAGER)]
    pub field_manager: String,
    /// Take over fields another manager owns (on, as bootstrap does; `--force-conflicts=false`
    /// makes a conflict an error).
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub force_conflicts: bool,
    /// `server`: the server validates and admits every object and stores nothing; `none`:
    /// apply.
    #[arg(
        long,
        value_name = "MODE",
        num_args = 0..=1,
        require_equals = true,
        default_value = "none",
        default_missing_value = "server",
        value_parser = ["none", "server"]
    )]
    pub dry_run: String,
    /// Objects applied at once (the library's default, as the bootstrap applies).
    #[arg(long, default_value_t = capi_manage::kube::ApplyOptions::default().concurrency)]
    pub concurrency: usize,
}

pub async fn run(args: Args, observer: &Terminal) -> anyhow::Result<()> {
    let mut objects = Vec::new();
    if let Some(dir) = &args.kustomize {
        objects = capi_manage::render::render(dir)?;
    }
    for path in &args.files {
        for file in manifest_files(path, args.recursive)? {
            objects.extend(parse_file(&file)?);
        }
    }
    let client = connect(&args.kube.options()).await?;
    let discovery = Discovery::new(client);
    let cancel = super::cancel_on_ctrl_c();
    let options = ApplyOptions {
        concurrency: args.concurrency,
        field_manager: args.field_manager.clone(),
        force: args.force_conflicts,
        dry_run: args.dry_run == "server",
        ..Default::default()
    };
    apply(&discovery, &objects, &options, observer, &cancel).await?;
    Ok(())
}

fn is_manifest(p: &Path) -> bool {
    p.extension()
        .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
}

/// A file as is; a folder's manifest files, sorted, with `recursive` its subfolders' too (each
/// folder's files, then its subfolders in name order).
fn manifest_files(path: &Path, recursive: bool) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read folder {}", path.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read folder {}", path.display()))?;
    entries.sort();
    let mut files: Vec<PathBuf> = entries
        .iter()
        .filter(|p| p.is_file() && is_manifest(p))
        .cloned()
        .collect();
    if recursive {
        for dir in entries.iter().filter(|p| p.is_dir()) {
            files.extend(manifest_files(dir, true)?);
        }
    }
    Ok(files)
}
