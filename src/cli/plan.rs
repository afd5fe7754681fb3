use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use capi_manage::components::{self, Pins};
use capi_manage::repo::{Cluster, PLACEHOLDER, Repo};
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A cluster name (clusters/<name>) or a folder with a kustomization.yaml.
    pub target: String,
    /// Also check the cloud: log in with credentials.yaml and compare the values with what the
    /// project has (flavors, image, networks, key pair, zones, security groups, quotas).
    #[arg(long)]
    pub online: bool,
}

fn kinds(cluster: &Cluster) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for o in &cluster.objects {
        match counts.iter_mut().find(|(k, _)| k == o.kind()) {
            Some((_, n)) => *n += 1,
            None => counts.push((o.kind().to_string(), 1)),
        }
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn node_groups(chart: &Value) -> String {
    let Some(groups) = chart.get("nodeGroups").and_then(Value::as_array) else {
        return "none".into();
    };
    groups
        .iter()
        .map(|g| {
            let s = |k: &str| {
                g.get(k).map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            };
            format!(
                "{} ({} x {})",
                s("name").unwrap_or_default(),
                s("machineCount").unwrap_or_else(|| "?".into()),
                s("machineFlavor").unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `url` of remote "origin" in the repository's git config, if it can be read without git.
fn origin_url(root: &Path) -> Option<String> {
    let dot_git = root.join(".git");
    let git_dir = if dot_git.is_file() {
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let p = text.trim().strip_prefix("gitdir:")?.trim().to_string();
        let p = root.join(p);
        // A worktree's config lives in the common dir.
        match std::fs::read_to_string(p.join("commondir")) {
            Ok(c) => p.join(c.trim()),
            Err(_) => p,
        }
    } else {
        dot_git
    };
    let config = std::fs::read_to_string(git_dir.join("config")).ok()?;
    let mut in_origin = false;
    for line in config.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_origin = l == "[remote \"origin\"]";
        } else if in_origin && let Some(v) = l.strip_prefix("url") {
            return Some(v.trim_start().trim_start_matches('=').trim().to_string());
        }
    }
    None
}

/// The components bootstrap installs on both clusters, one line each, from the pins.
fn components(pins: &Pins) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "components ({}/{}, installed in this order on kind and on the new cluster):",
        components::VENDOR_DIR,
        components::PINS_FILE
    );
    for (name, version) in pins.versions() {
        let _ = writeln!(s, "  {name} {version}");
    }
    s
}

pub fn report(repo: &Repo, c: &Cluster, pins: &Pins) -> String {
    let mut s = String::new();
    let v = &c.values;
    let cp = v.chart.get("controlPlane");
    let cp_count = cp
        .and_then(|c| c.get("machineCount"))
        .map(|n| n.to_string())
        .unwrap_or_else(|| "chart default".into());
    let cp_flavor = cp
        .and_then(|c| c.get("machineFlavor"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let _ = writeln!(s, "cluster {} ({})", c.name, c.dir.display());
    let _ = writeln!(
        s,
        "  values       ConfigMap {}/{}: Kubernetes {}, control plane {} x {}, node groups {}",
        v.namespace,
        v.config_map_name,
        v.kubernetes_version,
        cp_count,
        cp_flavor,
        node_groups(&v.chart)
    );
    let _ = writeln!(
        s,
        "  credentials  Secret {}/{} (clouds.yaml for {})",
        c.credentials.namespace, c.credentials.secret_name, c.credentials.auth_url
    );
    let _ = writeln!(
        s,
        "  rendered     {} objects: {}",
        c.objects.len(),
        kinds(c)
    );
    match origin_url(repo.root()) {
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
                repo.root().display()
            );
        }
    }
    if !c.credentials.placeholders.is_empty() {
        let _ = writeln!(
            s,
            "  warning      credentials.yaml still has {PLACEHOLDER} in {}: bootstrap refuses it until they are filled in",
            c.credentials.placeholders.join(", ")
        );
    }
    s.push_str(&components(pins));
    let _ = writeln!(
        s,
        "charts (HelmReleases of {}, installed by Flux's helm-controller):",
        c.dir.display()
    );
    for p in components::chart_pins(&c.objects) {
        let _ = writeln!(s, "  {} {} ({})", p.chart, p.version, p.release);
    }
    // The bootstrap's own steps, with what an earlier run finished.
    let state = capi_manage::bootstrap::State::load(&c.dir.bootstrap_state()).unwrap_or_default();
    let _ = writeln!(s, "bootstrap steps:");
    for (i, step) in capi_manage::bootstrap::bootstrap_steps().iter().enumerate() {
        let done = if state.done.contains(step.id()) {
            "  (done)"
        } else {
            ""
        };
        let _ = writeln!(s, "  {:>2}. {}{done}", i + 1, step.description());
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
    out.write_all(report(&repo, &cluster, &pins).as_bytes())?;
    if args.online {
        online(&cluster, &mut out).await?;
    }
    Ok(())
}

/// `--online`: the cloud preflight, one line per problem; problems make the command fail.
async fn online(cluster: &Cluster, out: &mut impl std::io::Write) -> anyhow::Result<()> {
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
