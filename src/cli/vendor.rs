use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use capi_manage::components::{
    ChartSource, ChecksumStatus, FileStatus, PINS_FILE, VENDOR_DIR, VendorOptions, chart_sources,
};

use super::Terminal;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Fetch every asset from this mirror instead of upstream: an upstream URL
    /// https://HOST/PATH is fetched as <URL>/HOST/PATH.
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// With --mirror: accept assets that have no sha256 in vendor.toml and no vendor.lock entry
    /// yet, recording the mirror's bytes as the truth. Without it such assets are refused.
    #[arg(long, requires = "mirror")]
    pub trust_mirror: bool,
    /// Point every container image at this registry, keeping repository paths and tags
    /// (registry.k8s.io/cluster-api/x:v1 becomes <REGISTRY>/cluster-api/x:v1).
    #[arg(long, value_name = "REGISTRY")]
    pub image_registry: Option<String>,
    /// A variable for the providers' ${NAME} references; repeatable. Variables are also read
    /// from the environment, as clusterctl does; --var wins.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// The repository holding vendor-manifests/ (default: the current folder or the nearest
    /// parent holding vendor-manifests/vendor.toml).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
}

/// The charts of every cluster folder (`clusters/*/` with a kustomization, `bases` left out),
/// each with the URL of the HelmRepository its release takes it from.
fn cluster_charts(root: &std::path::Path) -> anyhow::Result<Vec<ChartSource>> {
    let clusters = root.join("clusters");
    let mut dirs: Vec<PathBuf> = match std::fs::read_dir(&clusters) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().is_some_and(|n| n != "bases")
                    && capi_manage::render::is_kustomization_dir(p)
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", clusters.display())),
    };
    dirs.sort();
    let mut charts = Vec::new();
    for dir in dirs {
        let objects = capi_manage::render::render(&dir)
            .with_context(|| format!("cannot render {} for its charts", dir.display()))?;
        charts.extend(chart_sources(&objects));
    }
    charts.sort();
    charts.dedup();
    Ok(charts)
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.is_empty() => Ok((n.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not NAME=VALUE")),
    }
}

fn repo_root(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let pins = PathBuf::from(VENDOR_DIR).join(PINS_FILE);
    if let Some(dir) = arg {
        if !dir.join(&pins).is_file() {
            bail!(
                "{} does not exist: --repo must name the repository root",
                dir.join(&pins).display()
            );
        }
        return Ok(dir);
    }
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    cwd.ancestors()
        .find(|d| d.join(&pins).is_file())
        .map(PathBuf::from)
        .with_context(|| {
            format!(
                "no {} in {} or its parents: run inside the repository or pass --repo DIR",
                pins.display(),
                cwd.display()
            )
        })
}

pub async fn run(args: Args, observer: &Terminal) -> anyhow::Result<()> {
    if let Some(m) = &args.mirror
        && !(m.starts_with("http://") || m.starts_with("https://"))
    {
        bail!("--mirror {m}: expected an http:// or https:// URL");
    }
    let root = repo_root(args.repo)?;
    let charts = cluster_charts(&root)?;
    let options = VendorOptions {
        charts,
        mirror: args.mirror,
        image_registry: args.image_registry,
        variables: args.vars.into_iter().collect::<BTreeMap<_, _>>(),
        use_env: true,
        trust_mirror_for_new_assets: args.trust_mirror,
    };
    let cancel = super::cancel_on_ctrl_c();
    let report = capi_manage::components::vendor(&root, &options, observer, &cancel).await?;
    let mut out = String::new();
    for a in &report.assets {
        let checksum = match a.checksum {
            ChecksumStatus::Recorded => "recorded",
            ChecksumStatus::Verified => "verified",
        };
        let file = match a.file_status {
            FileStatus::Written => "written",
            FileStatus::Unchanged => "unchanged",
        };
        out.push_str(&format!(
            "{}\t{}\tsha256 {} {checksum}\t{} bytes\t{} {file}\n",
            a.component,
            a.url,
            a.sha256,
            a.bytes,
            a.file.display()
        ));
    }
    for c in &report.charts {
        let checksum = match c.checksum {
            ChecksumStatus::Recorded => "recorded",
            ChecksumStatus::Verified => "verified",
        };
        out.push_str(&format!(
            "chart {} {}\t{}\tsha256 {} {checksum}\t{} bytes\t{}\n",
            c.name, c.version, c.url, c.sha256, c.bytes, c.file
        ));
    }
    for r in &report.removed {
        out.push_str(&format!("removed\t{}\n", r.display()));
    }
    print!("{out}");
    Ok(())
}
