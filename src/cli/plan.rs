//! `capi-manage plan <cluster>`: prints the plan `bootstrap::plan` makes.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use capi_manage::bootstrap::{Machines, Plan, plan};
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
                "  git remote   origin = {url} (push access is checked by bootstrap's push step)"
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
        let _ = writeln!(s, "  {} {} ({})", c.chart, c.version, c.release);
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
    let mut out = std::io::stdout().lock();
    out.write_all(report(&plan(&repo, &cluster, &pins), repo.root()).as_bytes())?;
    if args.online {
        online(&cluster, &mut out).await?;
    }
    Ok(())
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
    let r = cloud::preflight_cluster(cluster, &cloud::Options::default()).await?;
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
