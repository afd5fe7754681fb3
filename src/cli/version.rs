//! `capi-manage version`: the binary's version, the components pinned in
//! `vendor-manifests/vendor.toml` and the charts the HelmReleases of `clusters/bases` pin.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use capi_manage::components::{ChartPin, PINS_FILE, Pins, VENDOR_DIR, chart_pins};
use capi_manage::repo::Repo;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The config repository (default: found from the working directory; outside one only
    /// the binary's version is printed).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Output: text or json.
    #[arg(long, short = 'o', default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

/// What `version` reports.
struct Versions {
    components: Vec<(String, String)>,
    charts: Vec<ChartPin>,
}

/// The pins of the repository at `root`: the components of its vendor.toml and the charts of
/// every kustomization folder under clusters/bases, in folder order.
fn pins(root: &Path) -> anyhow::Result<Versions> {
    let pins = Pins::read(&root.join(VENDOR_DIR).join(PINS_FILE))?;
    let components = pins
        .versions()
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let bases = root.join("clusters/bases");
    let mut folders: Vec<PathBuf> = match std::fs::read_dir(&bases) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && capi_manage::render::is_kustomization_dir(p))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", bases.display())),
    };
    folders.sort();
    let mut charts = Vec::new();
    for folder in folders {
        let objects = capi_manage::render::render(&folder)?;
        charts.extend(chart_pins(&objects));
    }
    Ok(Versions { components, charts })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let repo = match &args.repo {
        Some(dir) => Some(Repo::at(dir)),
        None => Repo::discover(&std::env::current_dir().context("working directory")?).ok(),
    };
    let versions = repo.as_ref().map(|r| pins(r.root())).transpose()?;
    let version = env!("CARGO_PKG_VERSION");
    let mut out = std::io::stdout().lock();
    if args.output == "json" {
        let (components, charts) = match &versions {
            Some(v) => (
                v.components
                    .iter()
                    .map(|(name, version)| serde_json::json!({"name": name, "version": version}))
                    .collect(),
                v.charts
                    .iter()
                    .map(|c| {
                        serde_json::json!({"release": c.release, "chart": c.chart, "version": c.version})
                    })
                    .collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let doc = serde_json::json!({
            "version": version,
            "repository": repo.as_ref().map(|r| r.root().display().to_string()),
            "components": components,
            "charts": charts,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        writeln!(out, "capi-manage {version}")?;
        if let Some(v) = &versions {
            let width = v
                .components
                .iter()
                .map(|(n, _)| n.len())
                .chain(v.charts.iter().map(|c| c.release.len()))
                .max()
                .unwrap_or(0);
            writeln!(out, "components ({VENDOR_DIR}/{PINS_FILE}):")?;
            for (name, version) in &v.components {
                writeln!(out, "  {name:<width$}  {version}")?;
            }
            writeln!(out, "charts (clusters/bases):")?;
            for c in &v.charts {
                writeln!(out, "  {:<width$}  {} {}", c.release, c.chart, c.version)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
