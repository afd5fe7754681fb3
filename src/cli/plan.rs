//! `capi-manage plan <cluster>`: prints the plan `bootstrap::plan` makes.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use capi_manage::bootstrap::{self, Machines, Plan, plan};
use capi_manage::components::{self, Pins};
use capi_manage::repo::{PLACEHOLDER, Repo};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A cluster name (clusters/<name>) or a folder with a kustomization.yaml.
    pub target: String,
    /// Also check the cloud: log in with credentials.yaml and compare the values with what the
    /// project has (flavors, image, networks, key pair, zones, security groups, quotas).
    #[arg(long)]
    pub online: bool,
    /// Docker engine address the preflight checks (default: $DOCKER_HOST, then the local
    /// socket).
    #[arg(long, value_name = "URL")]
    pub docker_host: Option<String>,
    /// kindest/node image the preflight looks for (default: the pinned one).
    #[arg(long, value_name = "IMAGE")]
    pub node_image: Option<String>,
    /// The remote the preflight checks push access to (default: `origin`).
    #[arg(long, value_name = "URL")]
    pub git_url: Option<String>,
    /// List every host the bootstrap would contact (with the step that contacts it and from
    /// where), to open exactly those in a firewall; nothing else is checked or printed.
    #[arg(long)]
    pub egress: bool,
    /// With --egress: images are pulled from this registry (HOST[:PORT][/PATH]), as after
    /// `vendor --image-registry` and `images push`.
    #[arg(long, value_name = "REGISTRY", requires = "egress")]
    pub image_registry: Option<String>,
    /// With --egress: the kind node has the images loaded from this OCI layout (as
    /// `bootstrap --images DIR`), so it pulls none.
    #[arg(long, value_name = "DIR", requires = "egress")]
    pub images: Option<PathBuf>,
    /// With --egress: the kind node pulls HOST's images through URL (as `bootstrap
    /// --registry-mirror`); repeatable.
    #[arg(long = "registry-mirror", value_name = "HOST=URL", requires = "egress",
          value_parser = crate::cli::bootstrap::parse_mirror)]
    pub registry_mirrors: Vec<capi_manage::kind::RegistryMirror>,
    /// Output: text, or json (the plan's preflight checks, one JSON object per line).
    #[arg(long, short = 'o', default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
}

fn machines(m: &Machines) -> String {
    format!(
        "{} ({} x {})",
        m.name,
        m.count.as_deref().unwrap_or("?"),
        m.flavor.as_deref().unwrap_or_default()
    )
}

/// The plan as text, one section per part.
pub fn report(p: &Plan, root: &Path) -> String {
    let mut s = String::new();
    let v = &p.values;
    let node_groups = if v.node_groups.is_empty() {
        "none".to_string()
    } else {
        v.node_groups
            .iter()
            .map(machines)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(s, "cluster {} ({})", p.cluster, p.dir.display());
    let _ = writeln!(
        s,
        "  values       ConfigMap {}/{}: Kubernetes {}, control plane {} x {}, node groups {node_groups}",
        v.namespace,
        v.config_map,
        v.kubernetes_version,
        v.control_plane.count.as_deref().unwrap_or("chart default"),
        v.control_plane.flavor.as_deref().unwrap_or("?"),
    );
    let c = &p.credentials;
    let _ = writeln!(
        s,
        "  credentials  Secret {}/{} (clouds.yaml for {})",
        c.namespace, c.secret_name, c.auth_url
    );
    let kinds = p
        .kinds
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(s, "  rendered     {} objects: {kinds}", p.objects);
    match &p.origin_url {
        Some(url) => {
            let _ = writeln!(
                s,
                "  git remote   origin = {url} (push access: see the preflight; `plan --online` checks it)"
            );
        }
        None => {
            let _ = writeln!(
                s,
                "  git remote   not found in {} (bootstrap needs a remote \"origin\" to push to)",
                root.display()
            );
        }
    }
    if !c.placeholders.is_empty() {
        let _ = writeln!(
            s,
            "  warning      credentials.yaml still has {PLACEHOLDER} in {}: bootstrap refuses it until they are filled in",
            c.placeholders.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "components ({}/{}, installed in this order on kind and on the new cluster):",
        components::VENDOR_DIR,
        components::PINS_FILE
    );
    for (name, version) in &p.components {
        let _ = writeln!(s, "  {name} {version}");
    }
    let _ = writeln!(
        s,
        "charts (HelmReleases of {}, installed by Flux's helm-controller):",
        p.dir.display()
    );
    for c in &p.charts {
        let from = c
            .repository
            .as_deref()
            .unwrap_or("a source not in the folder");
        let _ = writeln!(s, "  {} {} ({}) from {from}", c.chart, c.version, c.release);
    }
    let _ = writeln!(s, "bootstrap steps:");
    for (i, step) in p.steps.iter().enumerate() {
        let done = if step.done { "  (done)" } else { "" };
        let _ = writeln!(s, "  {:>2}. {}{done}", i + 1, step.description);
    }
    s
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cwd = std::env::current_dir()?;
    let repo = Repo::discover(&cwd)?;
    let name = match Path::new(&args.target).file_name() {
        Some(n) if Path::new(&args.target).is_dir() => n.to_string_lossy().into_owned(),
        _ => args.target.clone(),
    };
    let cluster = repo.cluster(&name)?;
    let pins = Pins::read(
        &repo
            .root()
            .join(components::VENDOR_DIR)
            .join(components::PINS_FILE),
    )?;
    if args.egress {
        return egress(&args, &repo, &cluster);
    }
    let checks = preflight(&args, repo.root(), &name).await?;
    let mut out = std::io::stdout().lock();
    if args.output == "json" {
        for c in &checks.checks {
            let mut v = serde_json::to_value(c)?;
            v["event"] = "preflight".into();
            writeln!(out, "{v}")?;
        }
    } else {
        out.write_all(report(&plan(&repo, &cluster, &pins), repo.root()).as_bytes())?;
        out.write_all(preflight_text(&checks, args.online).as_bytes())?;
    }
    if args.online {
        online(&cluster, &mut out).await?;
    }
    Ok(())
}

/// The preflight bootstrap runs first: offline, or with `--online` the checks that need the
/// network too (the cloud's is printed by [`online`]).
async fn preflight(args: &Args, root: &Path, name: &str) -> anyhow::Result<bootstrap::Preflight> {
    let mut o = bootstrap::Options::new(root, name);
    o.cloud_preflight = None;
    o.kind.docker_host = args.docker_host.clone();
    o.kind.docker_timeout = super::docker_timeout();
    if let Some(i) = &args.node_image {
        o.kind.image = i.clone();
    }
    o.git.push_url = args.git_url.clone();
    o.timeouts.connect = super::timeouts().connect;
    o.timeouts.request = super::timeouts().request;
    let cancel = super::cancel_on_ctrl_c();
    Ok(bootstrap::preflight(&o, bootstrap::Operation::Bootstrap, args.online, &cancel).await?)
}

/// The preflight's checks as text, one line each, problems with their fix.
pub fn preflight_text(p: &bootstrap::Preflight, online: bool) -> String {
    let mut s = format!(
        "preflight ({}):\n",
        if online {
            "online"
        } else {
            "offline; `plan --online` adds the git remote, registry and cloud"
        }
    );
    for c in &p.checks {
        let _ = writeln!(s, "  {c}");
    }
    let problems = p.problems().count();
    if problems > 0 {
        let _ = writeln!(
            s,
            "  {problems} problem(s): bootstrap stops before creating anything until they are fixed"
        );
    }
    s
}

/// `--online`: the cloud preflight, one line per problem; problems make the command fail.
async fn online(
    cluster: &capi_manage::repo::Cluster,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    use capi_manage::cloud;
    if !cluster.credentials.placeholders.is_empty() {
        anyhow::bail!(
            "--online needs credentials.yaml filled in: {PLACEHOLDER} is still in {}",
            cluster.credentials.placeholders.join(", ")
        );
    }
    writeln!(out, "cloud preflight ({}):", cluster.credentials.auth_url)?;
    let options = cloud::Options {
        timeout: super::cloud_timeout(),
        ..cloud::Options::default()
    };
    let r = cloud::preflight_cluster(cluster, &options).await?;
    for line in r.to_string().lines() {
        writeln!(out, "  {line}")?;
    }
    if !r.is_ok() {
        anyhow::bail!(
            "the cloud preflight found {} problem(s): fix them in {} (or the cloud) before bootstrap",
            r.problems.len(),
            cluster.dir.display()
        );
    }
    Ok(())
}

/// `--egress`: the destinations [`bootstrap::egress`] lists for this cluster.
fn egress(args: &Args, repo: &Repo, cluster: &capi_manage::repo::Cluster) -> anyhow::Result<()> {
    let options = bootstrap::Options::new(repo.root(), &cluster.name);
    let node_image = args
        .node_image
        .clone()
        .unwrap_or_else(|| options.kind.image.clone());
    let inventory = capi_manage::images::inventory(repo.root(), Some(&cluster.name))?;
    let images = inventory
        .images
        .iter()
        .filter(|i| i.sources.iter().any(|s| s != "kind node"))
        .map(|i| i.reference.clone())
        .collect();
    let node_image = capi_manage::images::Reference::parse(&node_image)
        .map(|r| r.to_string())
        .unwrap_or(node_image);
    let git_url = args.git_url.clone().or_else(|| {
        capi_manage::git::remote_url(repo.root(), "origin")
            .ok()
            .flatten()
            .map(|u| capi_manage::git::split_credentials(&u).0)
    });
    let input = bootstrap::EgressInput {
        docker_host: capi_manage::kind::docker_host(args.docker_host.as_deref()),
        node_image,
        images,
        image_registry: args.image_registry.clone(),
        images_preloaded: args.images.is_some(),
        mirrors: args
            .registry_mirrors
            .iter()
            .map(|m| (m.host.clone(), m.url.clone()))
            .collect(),
        charts: components::chart_sources(&cluster.objects),
        git_url,
        auth_url: cluster.credentials.auth_url.clone(),
    };
    let destinations = bootstrap::egress(&input);
    let mut out = std::io::stdout().lock();
    if args.output == "json" {
        for d in &destinations {
            let mut v = serde_json::to_value(d)?;
            v["event"] = "egress".into();
            writeln!(out, "{v}")?;
        }
        for n in &inventory.notes {
            writeln!(out, "{}", serde_json::json!({"event": "note", "detail": n}))?;
        }
    } else {
        out.write_all(egress_text(&destinations, &inventory.notes).as_bytes())?;
    }
    Ok(())
}

/// The destinations as text: one line each, then what is known only later.
pub fn egress_text(destinations: &[bootstrap::Destination], notes: &[String]) -> String {
    let mut s = String::from(
        "egress (every connection the bootstrap opens; open these in the firewall):\n",
    );
    let origin = |d: &bootstrap::Destination| {
        d.from
            .iter()
            .map(|o| match o {
                bootstrap::Origin::ThisHost => "this host",
                bootstrap::Origin::DockerEngine => "the Docker engine",
                bootstrap::Origin::KindCluster => "kind",
                bootstrap::Origin::NewCluster => "the new cluster",
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for d in destinations {
        let at = match (&d.host, d.port) {
            (Some(h), Some(p)) if h.contains(':') => format!("[{h}]:{p}"),
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.clone(),
            (None, Some(p)) => format!("?:{p}"),
            (None, None) if d.local => "local".to_string(),
            (None, None) => "?".to_string(),
        };
        let local = if d.local { " (local)" } else { "" };
        let _ = writeln!(
            s,
            "  {at} {}{local}  from {}  steps {}  {}",
            d.protocol,
            origin(d),
            d.steps.join(","),
            d.purpose
        );
        if let Some(n) = &d.note {
            let _ = writeln!(s, "      note: {n}");
        }
    }
    for n in notes {
        let _ = writeln!(s, "  note: {n}");
    }
    s
}
