//! `capi-manage images`: the images and charts of an air-gapped bootstrap.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use capi_manage::images::{
    self, ClientOptions, Credentials, IMAGES_LOCK, Layout, PullOptions, PushOptions, Reference,
};

use super::Terminal;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// List every image a bootstrap runs, with the digests vendor-manifests/images.lock records.
    List(ListArgs),
    /// Copy images (default: the inventory) and charts into an OCI image layout folder.
    Pull(PullArgs),
    /// Copy every image and chart of an OCI image layout into a registry, at the paths
    /// `vendor --image-registry` rewrites the manifests to.
    Push(PushArgs),
}

#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// User name for the registries of this run (Basic auth, or for their token service).
    #[arg(long, value_name = "USER", requires = "password")]
    pub username: Option<String>,
    /// Its password (better from the environment).
    #[arg(
        long,
        env = "CAPI_MANAGE_REGISTRY_PASSWORD",
        hide_env_values = true,
        requires = "username"
    )]
    pub password: Option<String>,
    /// Speak plain HTTP to this registry host (loopback hosts always are); repeatable.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub plain_http: Vec<String>,
    /// Trust this CA certificate (PEM) for HTTPS registries; repeatable.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Vec<PathBuf>,
}

impl RegistryArgs {
    fn options(&self, hosts: &[String]) -> ClientOptions {
        let t = super::timeouts();
        let mut credentials = BTreeMap::new();
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            for h in hosts {
                credentials.insert(
                    h.clone(),
                    Credentials {
                        username: u.clone(),
                        password: p.clone(),
                    },
                );
            }
        }
        ClientOptions {
            credentials,
            plain_http: self.plain_http.clone(),
            ca_files: self.ca_file.clone(),
            connect_timeout: t.connect,
            read_timeout: t.request,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Also the images of clusters/<CLUSTER>'s rendered folder.
    pub cluster: Option<String>,
    /// Ask the registries for every image's digest and record them in images.lock (online).
    #[arg(long)]
    pub resolve: bool,
    /// With --resolve: ask this registry (host/path) instead, at the rewritten paths.
    #[arg(long, value_name = "REGISTRY", requires = "resolve")]
    pub source_registry: Option<String>,
    /// Output: text or json.
    #[arg(long, short = 'o', default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
    /// The repository (default: the nearest parent holding vendor-manifests/vendor.toml).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The OCI image layout folder (created when missing; a resumed pull keeps what it has).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Images to copy (default: the inventory of `images list`).
    pub images: Vec<String>,
    /// Copy every platform of multi-platform images (default: linux/amd64 only).
    #[arg(long)]
    pub all_platforms: bool,
    /// Fetch the images from this registry (host/path) at the rewritten paths.
    #[arg(long, value_name = "REGISTRY")]
    pub source_registry: Option<String>,
    /// A Helm chart archive to add as an OCI artifact named <REPO>/<name>:<version>, e.g.
    /// openstack-cluster-0.27.0.tgz=azimuth-cloud.github.io/capi-helm-charts; repeatable.
    #[arg(long, value_name = "FILE=REPO", value_parser = parse_chart)]
    pub chart: Vec<(PathBuf, String)>,
    /// The repository whose images.lock pins the digests (default: found from the folder).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The OCI image layout folder `images pull` wrote.
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// The registry (host and optional path), as given to `vendor --image-registry`.
    #[arg(long, value_name = "REGISTRY")]
    pub registry: String,
    #[command(flatten)]
    pub auth: RegistryArgs,
}

fn parse_chart(s: &str) -> Result<(PathBuf, String), String> {
    match s.split_once('=') {
        Some((f, r)) if !f.is_empty() && !r.is_empty() => Ok((f.into(), r.to_string())),
        _ => Err(format!("`{s}` is not FILE=REPO")),
    }
}

fn repo_root(arg: Option<PathBuf>) -> anyhow::Result<Option<PathBuf>> {
    use capi_manage::components::{PINS_FILE, VENDOR_DIR};
    let pins = PathBuf::from(VENDOR_DIR).join(PINS_FILE);
    if let Some(dir) = arg {
        if !dir.join(&pins).is_file() {
            bail!(
                "{} does not exist: --repo must name the repository root",
                dir.join(&pins).display()
            );
        }
        return Ok(Some(dir));
    }
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    Ok(cwd
        .ancestors()
        .find(|d| d.join(&pins).is_file())
        .map(PathBuf::from))
}

fn parse_refs(texts: &[String]) -> anyhow::Result<Vec<Reference>> {
    texts
        .iter()
        .map(|t| Reference::parse(t).map_err(anyhow::Error::from))
        .collect()
}

pub async fn run(args: Args, observer: &Terminal) -> anyhow::Result<()> {
    match args.command {
        Sub::List(a) => list(a, observer).await,
        Sub::Pull(a) => pull(a, observer).await,
        Sub::Push(a) => push(a, observer).await,
    }
}

async fn list(args: ListArgs, observer: &Terminal) -> anyhow::Result<()> {
    use capi_manage::observe::ObserverExt as _;
    let root = repo_root(args.repo)?.context(
        "no vendor-manifests/vendor.toml in this folder or its parents: run inside the repository or pass --repo DIR",
    )?;
    let mut inv = images::inventory(&root, args.cluster.as_deref())?;
    for n in &inv.notes {
        observer.warning(n.clone());
    }
    if args.resolve {
        let refs = parse_refs(
            &inv.images
                .iter()
                .map(|i| i.reference.clone())
                .collect::<Vec<_>>(),
        )?;
        let hosts = match &args.source_registry {
            Some(r) => vec![r.split('/').next().unwrap_or(r).to_string()],
            None => refs.iter().map(|r| r.registry.clone()).collect(),
        };
        let options = PullOptions {
            client: args.registry.options(&hosts),
            source_registry: args.source_registry.clone(),
            ..Default::default()
        };
        let cancel = super::cancel_on_ctrl_c();
        let digests = images::resolve(&refs, &options, observer, &cancel).await?;
        for (i, d) in inv.images.iter_mut().zip(digests) {
            if let Some(pinned) = &i.digest
                && *pinned != d
            {
                bail!(
                    "{}: the registry serves {d} but {} records {pinned}",
                    i.reference,
                    IMAGES_LOCK
                );
            }
            i.digest = Some(d);
        }
        images::write_lock(&root, &inv.images)?;
    }
    let mut out = String::new();
    if args.output == "json" {
        let doc = serde_json::json!({
            "images": inv.images.iter().map(|i| serde_json::json!({
                "reference": i.reference, "digest": i.digest, "sources": i.sources,
            })).collect::<Vec<_>>(),
            "notes": inv.notes,
        });
        out = serde_json::to_string_pretty(&doc)? + "\n";
    } else {
        for i in &inv.images {
            out.push_str(&format!(
                "{}\t{}\t{}\n",
                i.reference,
                i.digest.as_deref().unwrap_or("-"),
                i.sources.join(",")
            ));
        }
    }
    print!("{out}");
    Ok(())
}

async fn pull(args: PullArgs, observer: &Terminal) -> anyhow::Result<()> {
    let root = repo_root(args.repo)?;
    let (refs, locked, lock) = match &root {
        Some(root) => {
            let lock = root
                .join(capi_manage::components::VENDOR_DIR)
                .join(IMAGES_LOCK);
            let recorded = images::read_lock(root)?;
            let locked: BTreeMap<String, String> = recorded
                .iter()
                .filter_map(|i| i.digest.clone().map(|d| (i.reference.clone(), d)))
                .collect();
            let refs = if args.images.is_empty() && args.chart.is_empty() {
                let inv = images::inventory(root, None)?;
                inv.images.iter().map(|i| i.reference.clone()).collect()
            } else {
                args.images.clone()
            };
            (refs, locked, Some(lock))
        }
        None => (args.images.clone(), BTreeMap::new(), None),
    };
    let refs = parse_refs(&refs)?;
    let hosts = match &args.source_registry {
        Some(r) => vec![r.split('/').next().unwrap_or(r).to_string()],
        None => refs.iter().map(|r| r.registry.clone()).collect(),
    };
    let options = PullOptions {
        client: args.registry.options(&hosts),
        all_platforms: args.all_platforms,
        platform: None,
        source_registry: args.source_registry.clone(),
        locked,
        lock,
    };
    let cancel = super::cancel_on_ctrl_c();
    let report = images::pull(&refs, &args.to, &options, observer, &cancel).await?;
    let mut out = String::new();
    for i in &report.images {
        out.push_str(&format!(
            "{}\t{}\t{} blobs fetched\t{} present\n",
            i.reference, i.digest, i.blobs_copied, i.blobs_present
        ));
    }
    if !args.chart.is_empty() {
        let layout = Layout::create(&args.to)?;
        for (file, repo) in &args.chart {
            let r = images::add_chart(&layout, file, repo)?;
            out.push_str(&format!("{r}\tchart {}\n", file.display()));
        }
    }
    print!("{out}");
    Ok(())
}

async fn push(args: PushArgs, observer: &Terminal) -> anyhow::Result<()> {
    let host = args
        .registry
        .split('/')
        .next()
        .unwrap_or(&args.registry)
        .to_string();
    let options = PushOptions {
        client: args.auth.options(&[host]),
        registry: args.registry.clone(),
    };
    let cancel = super::cancel_on_ctrl_c();
    let report = images::push(&args.from, &options, observer, &cancel).await?;
    let mut out = String::new();
    for i in &report.images {
        out.push_str(&format!(
            "{}\t{}\t{}\t{} blobs uploaded\t{} present\n",
            i.reference, i.location, i.digest, i.blobs_copied, i.blobs_present
        ));
    }
    print!("{out}");
    Ok(())
}
