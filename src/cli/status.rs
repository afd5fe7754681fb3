//! `capi-manage status <cluster>` (or `--all`): the cluster's tree as `clusterctl describe
//! cluster` draws it, the checks bootstrap waits on, and Flux's sync against the branch head.
//! The data comes from `capi::cluster_status`, `flux::sync_status` and the git remote; this
//! prints it (text or `-o json`) and maps it to an exit code: 0 ready, 4 not ready (or Flux
//! drifted), 1 an error (the cluster cannot be reached or read).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use capi_manage::capi::describe::render;
use capi_manage::capi::readiness::{ClusterRef, helm_releases};
use capi_manage::capi::{ClusterStatus, Paused, cluster_status};
use capi_manage::flux::{KindStatus, drift, sync_status};
use capi_manage::git::{PushOptions, SshOptions, check_push_access, remote_url};
use capi_manage::kube::{Discovery, connect};
use capi_manage::observe::Silent;
use capi_manage::repo::Repo;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{client_options, timeouts};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster: a folder under clusters/.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub cluster: Option<String>,
    /// Every cluster under clusters/ (those without a kubeconfig are listed as not
    /// bootstrapped); the worst exit code wins.
    #[arg(long)]
    pub all: bool,
    /// The config repository (default: found from the working directory).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Namespace of the cluster's Cluster API objects.
    #[arg(long, short = 'n', default_value = capi_manage::bootstrap::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// Output format.
    #[arg(long, short = 'o', default_value = "text", value_parser = ["text", "json"])]
    pub output: String,
    /// Read the branch head from this remote instead of the remote `origin`'s URL.
    #[arg(long = "git-url", value_name = "URL")]
    pub git_url: Option<String>,
    /// SSH private key for reading the branch head (repeatable).
    #[arg(long = "ssh-identity", value_name = "FILE")]
    pub ssh_identity: Vec<PathBuf>,
    /// known_hosts file for the git host (default: ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Do not use the ssh-agent.
    #[arg(long)]
    pub no_agent: bool,
}

/// The namespace Flux's own sync objects live in.
const FLUX_NAMESPACE: &str = "flux-system";

/// Exit code of a cluster that is reachable but not ready (or whose Flux sync drifted).
pub const NOT_READY: u8 = 4;

/// The status found one or more clusters not ready: exit code [`NOT_READY`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotReady(pub String);

/// What one cluster's report came to.
enum Verdict {
    Ready,
    NotReady(String),
    Failed(anyhow::Error),
    NotBootstrapped,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let repo = match &args.repo {
        Some(dir) => Repo::at(dir),
        None => Repo::discover(&std::env::current_dir().context("working directory")?)?,
    };
    let names = match &args.cluster {
        Some(name) => vec![name.clone()],
        None => cluster_folders(&repo)?,
    };
    let json = args.output == "json";
    let mut reports = Vec::new();
    let mut verdicts = Vec::new();
    for name in &names {
        let (verdict, report) = one(&repo, name, &args).await;
        if json {
            reports.push(report);
        }
        verdicts.push((name.clone(), verdict));
    }
    if json {
        let out = if args.all {
            Value::Array(reports)
        } else {
            reports.pop().unwrap_or(Value::Null)
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    // The worst verdict wins: an error, then not ready, then ready.
    let mut failed = Vec::new();
    let mut not_ready = Vec::new();
    for (name, v) in verdicts {
        match v {
            Verdict::Failed(e) if !args.all => return Err(e),
            Verdict::Failed(e) => failed.push(format!("{name}: {}", super::one_line(&e))),
            Verdict::NotReady(why) => not_ready.push(format!("{name} is not ready: {why}")),
            Verdict::NotBootstrapped if !args.all => {
                let kubeconfig = repo.layout(&name)?.kubeconfig();
                bail!(
                    "{} is missing: the cluster is not bootstrapped (`capi-manage bootstrap {name}` writes it)",
                    kubeconfig.display()
                );
            }
            Verdict::Ready | Verdict::NotBootstrapped => {}
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    if !not_ready.is_empty() {
        return Err(NotReady(format!("cluster {}", not_ready.join("; cluster "))).into());
    }
    Ok(())
}

/// The folders under clusters/ that are clusters (a values.yaml and a kustomization), by name.
fn cluster_folders(repo: &Repo) -> anyhow::Result<Vec<String>> {
    let dir = repo.root().join("clusters");
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Ok(layout) = repo.layout(&name)
            && layout.values().is_file()
        {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Reports one cluster (printing it as text unless JSON is asked for); its verdict and its JSON.
async fn one(repo: &Repo, name: &str, args: &Args) -> (Verdict, Value) {
    let text = args.output != "json";
    let kubeconfig = match repo.layout(name) {
        Ok(l) => l.kubeconfig(),
        Err(e) => {
            let e = anyhow::Error::from(e);
            let report = json!({"cluster": name, "error": super::one_line(&e)});
            return (Verdict::Failed(e), report);
        }
    };
    if !kubeconfig.is_file() {
        if text && args.all {
            println!("cluster {name}: not bootstrapped (no kubeconfig)\n");
        }
        return (
            Verdict::NotBootstrapped,
            json!({"cluster": name, "bootstrapped": false}),
        );
    }
    match gather(repo, name, kubeconfig, args).await {
        Err(e) => {
            if text && args.all {
                println!("cluster {name}: error: {}\n", super::one_line(&e));
            }
            let report = json!({"cluster": name, "error": super::one_line(&e)});
            (Verdict::Failed(e), report)
        }
        Ok(g) => {
            if text {
                print_text(name, args, &g);
            }
            let report = report_json(name, args, &g);
            let mut why: Vec<String> = g
                .status
                .description
                .as_ref()
                .map(|d| d.not_ready.clone())
                .unwrap_or_else(|| vec![format!("no Cluster {}/{name}", args.namespace)]);
            why.extend(
                g.status
                    .readiness
                    .parts
                    .iter()
                    .filter(|p| !p.starts_with("Cluster ") && !p.starts_with("MachineDeployment "))
                    .filter(|p| !p.ends_with(": Ready") && !p.ends_with(": Deployed"))
                    .cloned(),
            );
            for (kind, o, d) in g.flux_drift() {
                why.push(format!("Flux {kind} {}: {d}", o.name));
            }
            let verdict = if g.status.ready() && g.flux_drift().is_empty() {
                Verdict::Ready
            } else {
                Verdict::NotReady(why.join("; "))
            };
            (verdict, report)
        }
    }
}

/// Everything one report shows.
struct Gathered {
    status: ClusterStatus,
    flux: Vec<KindStatus>,
    /// The branch head (hex) and where it was read, or why it could not be.
    head: Result<(String, String), String>,
    branch: Option<String>,
}

impl Gathered {
    fn head(&self) -> Option<&str> {
        self.head.as_ref().ok().map(|(h, _)| h.as_str())
    }

    /// Every Flux object that drifted, with why.
    fn flux_drift(&self) -> Vec<(&'static str, &capi_manage::flux::SyncObject, String)> {
        let mut out = Vec::new();
        for k in &self.flux {
            for o in &k.objects {
                if let Some(d) = drift(o, self.head()) {
                    out.push((k.kind, o, d));
                }
            }
        }
        out
    }
}

async fn gather(
    repo: &Repo,
    name: &str,
    kubeconfig: PathBuf,
    args: &Args,
) -> anyhow::Result<Gathered> {
    let cluster = repo.cluster(name)?;
    let through = || format!("reading cluster {name} through {}", kubeconfig.display());
    let client = connect(&client_options(Some(kubeconfig.clone()), None))
        .await
        .with_context(through)?;
    let discovery = Discovery::new(client);
    let status = cluster_status(
        &discovery,
        &ClusterRef {
            namespace: args.namespace.clone(),
            name: name.to_string(),
            helm_releases: helm_releases(&cluster.objects),
        },
    )
    .await
    .with_context(through)?;
    let flux = sync_status(&discovery, FLUX_NAMESPACE)
        .await
        .with_context(through)?;
    // The branch the cluster's GitRepository follows (the one named after the cluster, else
    // any), else the config repository's checked-out branch.
    let sources = flux.iter().find(|k| k.kind == "GitRepository");
    let branch = sources
        .and_then(|k| {
            k.objects
                .iter()
                .find(|o| o.name == name)
                .or(k.objects.first())
        })
        .and_then(|o| o.branch.clone())
        .or_else(|| capi_manage::git::open(repo.root()).ok().map(|f| f.branch));
    let head = match &branch {
        Some(b) => branch_head(repo, b, args).await,
        None => Err("no branch to compare with".into()),
    };
    Ok(Gathered {
        status,
        flux,
        head,
        branch,
    })
}

/// The commit of `branch` on the config repository's remote (`--git-url`, else `origin`), as
/// the remote advertises it to a push (git's receive-pack handshake; nothing is pushed): the
/// revision Flux should have applied. Its URL (without credentials) on success.
async fn branch_head(repo: &Repo, branch: &str, args: &Args) -> Result<(String, String), String> {
    let url = match &args.git_url {
        Some(u) => u.clone(),
        None => match remote_url(repo.root(), "origin") {
            Ok(Some(u)) => u,
            Ok(None) => return Err("the config repository has no remote `origin`".into()),
            Err(e) => return Err(super::one_line(&e.into())),
        },
    };
    let mut o = PushOptions::new(url, branch);
    let mut ssh = SshOptions::default();
    ssh.identity_files = args.ssh_identity.clone();
    ssh.known_hosts = args.known_hosts.clone();
    ssh.no_agent = args.no_agent;
    o.ssh = ssh;
    let t = timeouts();
    o.connect_timeout = t.connect.unwrap_or(Duration::from_secs(30));
    o.read_timeout = t.request.unwrap_or(Duration::from_secs(300));
    match check_push_access(&o, &Silent, &CancellationToken::new()).await {
        Ok(a) => match a.remote_commit {
            Some(c) => Ok((c, a.url)),
            None => Err(format!("{}: no branch {branch}", a.url)),
        },
        Err(e) => Err(super::one_line(&e.into())),
    }
}

fn print_text(name: &str, args: &Args, g: &Gathered) {
    let s = &g.status;
    println!(
        "cluster {name}: {}",
        if s.ready() { "ready" } else { "not ready" }
    );
    match &s.description {
        Some(d) => print!("{}", render(d, SystemTime::now())),
        None => println!("no Cluster {}/{name}", args.namespace),
    }
    let releases: Vec<&String> = s
        .readiness
        .parts
        .iter()
        .filter(|p| !p.starts_with("Cluster ") && !p.starts_with("MachineDeployment "))
        .collect();
    if !releases.is_empty() {
        println!("releases:");
        for p in releases {
            println!("  {p}");
        }
    }
    if let Some(d) = &s.description
        && !d.not_ready.is_empty()
    {
        println!("not ready:");
        for l in &d.not_ready {
            println!("  {l}");
        }
    }
    if let Some(Paused { by_move }) = &s.paused {
        eprintln!(
            "warning: Cluster {}/{name} is paused (spec.paused): its controllers do nothing{}",
            args.namespace,
            match by_move {
                Some(run) => format!(
                    "; a move (run {run}) paused it: re-run that move to finish it, or remove spec.paused"
                ),
                None => "; remove spec.paused when the pause is over".to_string(),
            }
        );
    }
    match (&g.head, &g.branch) {
        (Ok((head, url)), Some(b)) => println!("flux: branch {b} at {head} on {url}"),
        (Err(e), _) => println!("flux: branch head unknown ({e}): only readiness is judged"),
        (Ok(_), None) => {}
    }
    for kind in &g.flux {
        if !kind.served {
            println!("  {} not served (Flux is not installed)", kind.kind);
        }
        for o in &kind.objects {
            println!(
                "  {} {}: {} (revision {}): {}",
                kind.kind,
                o.name,
                if o.conditions.is_empty() {
                    "no conditions yet"
                } else {
                    &o.conditions
                },
                o.revision.as_deref().unwrap_or("-"),
                match drift(o, g.head()) {
                    None => "in sync".to_string(),
                    Some(d) => format!("drift: {d}"),
                }
            );
        }
    }
    if args.all {
        println!();
    }
}

fn report_json(name: &str, args: &Args, g: &Gathered) -> Value {
    let s = &g.status;
    let flux: Vec<Value> = g
        .flux
        .iter()
        .flat_map(|k| {
            k.objects.iter().map(move |o| {
                json!({
                    "kind": k.kind, "name": o.name, "ready": o.ready,
                    "conditions": o.conditions, "revision": o.revision,
                    "drift": drift(o, g.head()),
                })
            })
        })
        .collect();
    json!({
        "cluster": name,
        "namespace": args.namespace,
        "bootstrapped": true,
        "ready": s.ready() && g.flux_drift().is_empty(),
        "paused": s.paused.as_ref().map(|p| json!({"byMove": p.by_move})),
        "describe": s.description,
        "checks": s.readiness.parts,
        "flux": {
            "branch": g.branch,
            "head": g.head.as_ref().ok().map(|(h, _)| h),
            "headSource": g.head.as_ref().ok().map(|(_, u)| u),
            "headError": g.head.as_ref().err(),
            "served": g.flux.iter().all(|k| k.served),
            "objects": flux,
        },
    })
}
