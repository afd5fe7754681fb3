//! The steps themselves.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::components::{self, BoxError};
use super::state::{State, write_atomic, write_private};
use super::{Error, Options, Report, Step, TeardownStep, relative};
use crate::capi::readiness::{self, ClusterRef, helm_releases};
use crate::kube::{ApplyOptions, ClientOptions, Discovery, apply, connect};
use crate::manifest::{Object, parse_file};
use crate::observe::{Event, Observer, ObserverExt, StepPhase};
use crate::repo::Repo;

/// Name of the sealed credentials file in the cluster folder.
pub const SEALED_CREDENTIALS: &str = "credentials-sealed.yaml";

struct Ctx<'a> {
    o: &'a Options,
    observer: &'a dyn Observer,
    cancel: &'a CancellationToken,
    state_path: PathBuf,
    state: State,
    kind: Option<Discovery>,
    target: Option<Discovery>,
    /// The kind cluster was created anew in this run, replacing the one earlier steps used.
    kind_replaced: bool,
}

/// The uid of the cluster's `kube-system` Namespace: what tells two clusters apart.
async fn cluster_uid(d: &Discovery) -> Result<String, BoxError> {
    let namespaces: ::kube::Api<k8s_openapi::api::core::v1::Namespace> =
        ::kube::Api::all(d.client().clone());
    let ns = namespaces.get("kube-system").await?;
    Ok(ns.metadata.uid.unwrap_or_default())
}

fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> BoxError {
    Box::new(e)
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> BoxError {
    boxed(std::io::Error::new(
        e.kind(),
        format!("{what} {}: {e}", path.display()),
    ))
}

impl Ctx<'_> {
    fn kind_kubeconfig(&self) -> PathBuf {
        self.o.state_dir().join("kind-kubeconfig")
    }

    async fn kind(&mut self) -> Result<Discovery, BoxError> {
        if let Some(d) = &self.kind {
            return Ok(d.clone());
        }
        let client = connect(&ClientOptions {
            kubeconfig: Some(self.kind_kubeconfig()),
            context: None,
        })
        .await?;
        let d = Discovery::new(client);
        self.kind = Some(d.clone());
        Ok(d)
    }

    async fn target(&mut self) -> Result<Discovery, BoxError> {
        if let Some(d) = &self.target {
            return Ok(d.clone());
        }
        let client = connect(&ClientOptions {
            kubeconfig: Some(self.o.kubeconfig_path()),
            context: None,
        })
        .await?;
        let d = Discovery::new(client);
        // The kubeconfig must still reach the cluster the earlier steps worked on.
        let uid = cluster_uid(&d).await?;
        match &self.state.target_cluster_uid {
            Some(recorded) if *recorded != uid => {
                return Err(boxed(Error::OtherCluster {
                    operation: self.operation(),
                    kubeconfig: self.o.kubeconfig_path(),
                    state: self.state_path.clone(),
                    found: uid,
                    recorded: recorded.clone(),
                }));
            }
            Some(_) => {}
            None => {
                self.state.target_cluster_uid = Some(uid);
                self.save().map_err(boxed)?;
            }
        }
        self.target = Some(d.clone());
        Ok(d)
    }

    fn operation(&self) -> &'static str {
        if self.state_path.ends_with("teardown.json") {
            "teardown"
        } else {
            "bootstrap"
        }
    }

    fn cluster_ref(&self, objects: &[Object], with_releases: bool) -> ClusterRef {
        ClusterRef {
            namespace: self.o.namespace.clone(),
            name: self.o.cluster.clone(),
            helm_releases: if with_releases {
                helm_releases(objects)
            } else {
                Vec::new()
            },
        }
    }

    async fn create_kind(&mut self) -> Result<(), BoxError> {
        let created = crate::kind::create(&self.o.kind, self.observer, self.cancel).await?;
        let path = self.kind_kubeconfig();
        write_private(&path, &created.kubeconfig)
            .map_err(|e| io_error(&path, "cannot write", e))?;
        self.kind = None;
        // A kind cluster other than the one earlier steps used (deleted and created again)
        // holds none of their work: those steps run again.
        let uid = cluster_uid(&self.kind().await?).await?;
        if self
            .state
            .kind_cluster_uid
            .as_ref()
            .is_some_and(|recorded| *recorded != uid)
        {
            self.kind_replaced = true;
            self.observer.warning(format!(
                "the kind cluster {} is not the one the earlier steps ran on: they run again",
                self.o.kind.name
            ));
        }
        self.state.kind_cluster_uid = Some(uid);
        Ok(())
    }

    async fn delete_kind(&mut self) -> Result<(), BoxError> {
        crate::kind::delete(
            &crate::kind::DeleteOptions {
                name: self.o.kind.name.clone(),
                docker_host: self.o.kind.docker_host.clone(),
            },
            self.observer,
        )
        .await?;
        let _ = std::fs::remove_file(self.kind_kubeconfig());
        self.kind = None;
        Ok(())
    }

    fn save(&self) -> Result<(), Error> {
        self.state.save(&self.state_path)
    }
}

/// The cluster's rendered objects without SealedSecrets (sealed for another cluster's key),
/// plus the plaintext credentials Secret.
fn kind_objects(o: &Options) -> Result<Vec<Object>, BoxError> {
    let cluster = Repo::at(&o.root).cluster(&o.cluster)?;
    let mut objects: Vec<Object> = cluster
        .objects
        .into_iter()
        .filter(|x| x.kind() != "SealedSecret")
        .collect();
    objects.extend(parse_file(&o.cluster_dir().join("credentials.yaml"))?);
    Ok(objects)
}

fn rendered_objects(o: &Options) -> Result<Vec<Object>, BoxError> {
    Ok(Repo::at(&o.root).cluster(&o.cluster)?.objects)
}

async fn run_step(ctx: &mut Ctx<'_>, step: Step) -> Result<(), BoxError> {
    let o = ctx.o;
    match step {
        Step::KindCluster => ctx.create_kind().await,
        Step::KindComponents => {
            let kind = ctx.kind().await?;
            components::install(&kind, o, ctx.observer, ctx.cancel).await
        }
        Step::ApplyCluster => {
            let kind = ctx.kind().await?;
            let objects = kind_objects(o)?;
            apply(
                &kind,
                &objects,
                &ApplyOptions::default(),
                ctx.observer,
                ctx.cancel,
            )
            .await?;
            Ok(())
        }
        Step::ClusterReady => {
            let kind = ctx.kind().await?;
            let c = ctx.cluster_ref(&rendered_objects(o)?, true);
            readiness::wait_ready(&kind, &c, o.timeouts.cluster, ctx.observer, ctx.cancel).await?;
            Ok(())
        }
        Step::Kubeconfig => {
            let kind = ctx.kind().await?;
            let bytes = read_kubeconfig_secret(&kind, &o.namespace, &o.cluster).await?;
            let path = o.kubeconfig_path();
            write_private(&path, &bytes).map_err(|e| io_error(&path, "cannot write", e))?;
            ctx.target = None;
            // The file works: the new cluster answers through it.
            let target = ctx.target().await?;
            target.client().apiserver_version().await?;
            ctx.observer
                .success(format!("kubeconfig written to {}", path.display()), None);
            Ok(())
        }
        Step::TargetComponents => {
            let target = ctx.target().await?;
            components::install(&target, o, ctx.observer, ctx.cancel).await?;
            let kind = ctx.kind().await?;
            let objects = rendered_objects(o)?;
            components::cluster_controllers(&kind, &target, &objects, o, ctx.observer, ctx.cancel)
                .await
        }
        Step::Move => {
            let kind = ctx.kind().await?;
            let target = ctx.target().await?;
            let mut mo = crate::capi::MoveOptions::new(&o.namespace);
            mo.journal = Some(crate::capi::journal_path(&o.cluster_dir()));
            crate::capi::move_objects(&kind, &target, &mo, ctx.observer, ctx.cancel).await?;
            Ok(())
        }
        Step::TargetReady => {
            let target = ctx.target().await?;
            let c = ctx.cluster_ref(&[], false);
            readiness::wait_ready(&target, &c, o.timeouts.cluster, ctx.observer, ctx.cancel)
                .await?;
            Ok(())
        }
        Step::Seal => {
            let target = ctx.target().await?;
            seal_credentials(&target, o, ctx.observer).await
        }
        Step::Push => {
            let pushed = components::commit_and_push(o, ctx.observer, ctx.cancel).await?;
            ctx.state.pushed = Some(pushed.commit);
            ctx.state.branch = Some(pushed.branch);
            Ok(())
        }
        Step::DeployKey => components::deploy_key(o, ctx.observer).await,
        Step::FluxSync => {
            let target = ctx.target().await?;
            let branch = ctx.state.branch.clone().unwrap_or_default();
            components::flux_sync(&target, o, &branch, ctx.observer, ctx.cancel).await
        }
        Step::SyncHealth => {
            let target = ctx.target().await?;
            let revision = format!(
                "{}@sha1:{}",
                ctx.state.branch.as_deref().unwrap_or_default(),
                ctx.state.pushed.as_deref().unwrap_or_default()
            );
            let branch = ctx.state.branch.clone().unwrap_or_default();
            components::wait_synced(&target, o, &branch, &revision, ctx.observer, ctx.cancel)
                .await?;
            let c = ctx.cluster_ref(&rendered_objects(o)?, true);
            readiness::wait_ready(&target, &c, o.timeouts.cluster, ctx.observer, ctx.cancel)
                .await?;
            Ok(())
        }
        Step::DeleteKind => ctx.delete_kind().await,
    }
}

async fn read_kubeconfig_secret(
    discovery: &Discovery,
    namespace: &str,
    cluster: &str,
) -> Result<Vec<u8>, BoxError> {
    use k8s_openapi::api::core::v1::Secret;
    let name = format!("{cluster}-kubeconfig");
    let api: kube::Api<Secret> = kube::Api::namespaced(discovery.client().clone(), namespace);
    let secret = api.get_opt(&name).await?.ok_or_else(|| {
        boxed(std::io::Error::other(format!(
            "Secret {namespace}/{name} not found: the cluster's control plane has not written its kubeconfig"
        )))
    })?;
    let value = secret
        .data
        .and_then(|mut d| d.remove("value"))
        .ok_or_else(|| {
            boxed(std::io::Error::other(format!(
                "Secret {namespace}/{name} has no data.value"
            )))
        })?;
    Ok(value.0)
}

/// Seals `credentials.yaml` with the target's controller certificate into
/// `credentials-sealed.yaml`, and lists that file in the cluster's kustomization.
async fn seal_credentials(
    target: &Discovery,
    o: &Options,
    observer: &dyn Observer,
) -> Result<(), BoxError> {
    let fetched = crate::seal::fetch_certificate(
        target.client(),
        &o.sealed_secrets_namespace,
        &o.sealed_secrets_name,
    )
    .await?;
    if let Some(reason) = &fetched.fallback_reason {
        observer.warning(format!(
            "using the certificate of {} because the controller's service proxy failed: {reason}",
            fetched.from
        ));
    }
    let key = crate::seal::SealingKey::from_pem(fetched.pem.as_bytes(), &fetched.from)?;
    observer.action(format!(
        "sealing with certificate {}: subject {}, SHA-256 fingerprint {}",
        fetched.from,
        key.subject(),
        key.fingerprint_sha256()
    ));
    let path = o.cluster_dir().join("credentials.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, "cannot read", e))?;
    let secrets = crate::seal::Secret::parse(&text, Some(&path))?;
    let [secret] = secrets.as_slice() else {
        return Err(boxed(std::io::Error::other(format!(
            "{} must hold exactly one Secret",
            path.display()
        ))));
    };
    let sealed = crate::seal::seal(secret, &key, &crate::seal::SealOptions::default())?;
    let out = o.cluster_dir().join(SEALED_CREDENTIALS);
    let yaml = format!(
        "# The cluster's OpenStack credentials, sealed by capi-manage for the cluster's\n# sealed-secrets controller. Re-seal with `capi-manage rotate {}`.\n{}",
        o.cluster,
        crate::seal::to_yaml(&sealed)
    );
    write_atomic(&out, yaml.as_bytes()).map_err(|e| io_error(&out, "cannot write", e))?;
    let kustomization = o.cluster_dir().join("kustomization.yaml");
    let text = std::fs::read_to_string(&kustomization)
        .map_err(|e| io_error(&kustomization, "cannot read", e))?;
    if let Some(updated) = add_resource(&text, SEALED_CREDENTIALS) {
        write_atomic(&kustomization, updated.as_bytes())
            .map_err(|e| io_error(&kustomization, "cannot write", e))?;
    }
    observer.success(
        format!(
            "sealed {} into {}",
            relative(&o.root, &path).display(),
            relative(&o.root, &out).display()
        ),
        None,
    );
    Ok(())
}

/// `text` (a kustomization.yaml) with `file` appended to its top-level `resources:` list, keeping
/// every other line as it is; `None` when it is already listed.
pub fn add_resource(text: &str, file: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.trim_end() == "resources:");
    let Some(start) = start else {
        let mut out = text.to_string();
        if !out.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("resources:\n- {file}\n"));
        return Some(out);
    };
    let mut end = start + 1;
    while end < lines.len() {
        let l = lines[end];
        let t = l.trim_start();
        if t.starts_with("- ") || t == "-" || (t.starts_with('#') && l.starts_with(['#', ' ', '-']))
        {
            let item = t.trim_start_matches('-').trim();
            if item == file || item.trim_matches(['"', '\'']) == file {
                return None;
            }
            end += 1;
        } else {
            break;
        }
    }
    // The list's item indentation, from its first item.
    let indent = lines
        .get(start + 1)
        .filter(|l| l.trim_start().starts_with('-'))
        .map(|l| &l[..l.len() - l.trim_start().len()])
        .unwrap_or("");
    let mut out: Vec<String> = lines[..end].iter().map(|s| s.to_string()).collect();
    out.push(format!("{indent}- {file}"));
    out.extend(lines[end..].iter().map(|s| s.to_string()));
    let mut s = out.join("\n");
    s.push('\n');
    Some(s)
}

fn report_step(
    observer: &dyn Observer,
    index: usize,
    total: usize,
    name: &str,
    what: &str,
    phase: StepPhase,
) {
    observer.event(Event::Step {
        index,
        total,
        name: name.to_string(),
        what: what.to_string(),
        phase,
    });
}

/// A step of a plan, as the runner needs it.
trait PlanStep: Copy + PartialEq {
    fn name(self) -> &'static str;
    fn describe(self) -> &'static str;
    async fn run(self, ctx: &mut Ctx<'_>) -> Result<(), BoxError>;
    /// Whether what a finished step leaves on this host is still there (checked before the
    /// step is skipped; a step whose result is gone runs again).
    fn left_behind(self, _ctx: &Ctx<'_>) -> bool {
        true
    }
}

impl PlanStep for Step {
    fn name(self) -> &'static str {
        Step::name(self)
    }
    fn describe(self) -> &'static str {
        Step::describe(self)
    }
    async fn run(self, ctx: &mut Ctx<'_>) -> Result<(), BoxError> {
        run_step(ctx, self).await
    }
    fn left_behind(self, ctx: &Ctx<'_>) -> bool {
        match self {
            Step::Kubeconfig => ctx.o.kubeconfig_path().is_file(),
            _ => true,
        }
    }
}

impl PlanStep for TeardownStep {
    fn name(self) -> &'static str {
        TeardownStep::name(self)
    }
    fn describe(self) -> &'static str {
        TeardownStep::describe(self)
    }
    async fn run(self, ctx: &mut Ctx<'_>) -> Result<(), BoxError> {
        run_teardown_step(ctx, self).await
    }
}

/// Runs every step of `steps` not yet done, saving the state after each. The first step creates
/// the kind cluster: it runs again (reusing the cluster) while any of `kind_users` is not done.
async fn run_plan<S: PlanStep>(
    ctx: &mut Ctx<'_>,
    steps: &[S],
    kind_users: &[S],
    report: &mut Report,
) -> Result<(), Error> {
    let (observer, cancel) = (ctx.observer, ctx.cancel);
    let total = steps.len();
    for &step in steps {
        if ctx.state.done.contains(step.name()) && !step.left_behind(ctx) {
            observer.warning(format!(
                "step {} was done but what it left is gone: it runs again",
                step.name()
            ));
            ctx.state.done.remove(step.name());
        }
    }
    let kind_needed = kind_users
        .iter()
        .any(|s| !ctx.state.done.contains(s.name()));
    for (i, &step) in steps.iter().enumerate() {
        if i == 1 && ctx.kind_replaced {
            for s in kind_users {
                ctx.state.done.remove(s.name());
            }
        }
        let done = ctx.state.done.contains(step.name()) && !(i == 0 && kind_needed);
        let at = |phase| report_step(observer, i + 1, total, step.name(), step.describe(), phase);
        if done {
            at(StepPhase::Skipped);
            report.skipped.push(step.name());
            continue;
        }
        at(StepPhase::Started);
        let started = Instant::now();
        let result = tokio::select! {
            biased;
            _ = cancel.cancelled() => None,
            r = step.run(ctx) => Some(r),
        };
        match result {
            Some(Ok(())) => {
                ctx.state.done.insert(step.name().to_string());
                ctx.save()?;
                at(StepPhase::Done(started.elapsed()));
                report.ran.push(step.name());
            }
            _ if cancel.is_cancelled() => {
                ctx.save()?;
                return Err(Error::Cancelled { step: step.name() });
            }
            Some(Err(source)) => {
                ctx.save()?;
                return Err(Error::Step {
                    step: step.name(),
                    what: step.describe(),
                    source,
                });
            }
            None => unreachable!("only cancellation ends the select without a result"),
        }
    }
    Ok(())
}

fn context<'a>(
    o: &'a Options,
    observer: &'a dyn Observer,
    cancel: &'a CancellationToken,
    state_file: &str,
) -> Result<Ctx<'a>, Error> {
    let state_path = o.state_dir().join(state_file);
    let state = State::load(&state_path)?;
    Ok(Ctx {
        o,
        observer,
        cancel,
        state_path,
        state,
        kind: None,
        target: None,
        kind_replaced: false,
    })
}

/// Runs `capi-manage bootstrap`: every [`Step`] not yet done, in order.
///
/// # Errors
///
/// Before anything is created: [`Error::Repo`] when the repository or the cluster folder is
/// unusable (the credentials still hold the placeholder, for one) or another run holds the
/// lock, and [`Error::State`], [`Error::StateCorrupt`] or [`Error::StateFormat`] for the state
/// file; [`Error::KubeconfigGone`] when the cluster has moved and its kubeconfig is missing.
/// While running: [`Error::Step`] names the step that failed and carries the cause as its
/// source (the module's error, or [`Error::DeployKeyNotAdded`] when the confirmation said no,
/// or [`Error::OtherCluster`] when a kubeconfig reaches another cluster than the recorded one);
/// [`Error::Cancelled`] when `cancel` fired. Every step done is recorded first: a rerun
/// resumes.
pub async fn bootstrap(
    o: &Options,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Report, Error> {
    // Bad input fails before anything is created.
    let cluster = Repo::at(&o.root).cluster(&o.cluster).map_err(Error::Repo)?;
    if let Some(field) = cluster.credentials.placeholders.first() {
        return Err(Error::Repo(crate::repo::Error::Field {
            path: cluster.dir.join("credentials.yaml"),
            field: field.clone(),
            problem: format!(
                "still holds {}: fill in the OpenStack application credential",
                crate::repo::PLACEHOLDER
            ),
        }));
    }
    let _lock = crate::repo::lock_state_dir(&o.state_dir()).map_err(Error::Repo)?;
    let mut ctx = context(o, observer, cancel, "state.json")?;
    // Once the cluster has moved, its kubeconfig cannot be read from kind again.
    if ctx.state.done.contains(Step::Move.name()) && !o.kubeconfig_path().is_file() {
        return Err(Error::KubeconfigGone {
            path: o.kubeconfig_path(),
        });
    }
    let mut report = Report {
        kubeconfig: o.kubeconfig_path(),
        ..Report::default()
    };
    run_plan(
        &mut ctx,
        &Step::BOOTSTRAP,
        &Step::BOOTSTRAP[1..=6],
        &mut report,
    )
    .await?;
    report.pushed = ctx.state.pushed.clone();
    Ok(report)
}

/// Runs `capi-manage teardown`: moves the cluster back to a kind cluster, deletes it there and
/// deletes the kind cluster.
///
/// # Errors
///
/// [`Error::Repo`] when another run holds the lock; [`Error::NoKubeconfig`] when the cluster's
/// kubeconfig is missing; the state file errors as for [`bootstrap`]; [`Error::Step`] for a
/// failed step (its module's error as the source) and [`Error::Cancelled`] when `cancel`
/// fired. What was done is recorded: a rerun resumes.
pub async fn teardown(
    o: &Options,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Report, Error> {
    let kubeconfig = o.kubeconfig_path();
    let _lock = crate::repo::lock_state_dir(&o.state_dir()).map_err(Error::Repo)?;
    let mut ctx = context(o, observer, cancel, "teardown.json")?;
    if !kubeconfig.is_file() && !ctx.state.done.contains(TeardownStep::Move.name()) {
        return Err(Error::NoKubeconfig { path: kubeconfig });
    }
    let mut report = Report {
        kubeconfig,
        ..Report::default()
    };
    run_plan(
        &mut ctx,
        &TeardownStep::ALL,
        &TeardownStep::ALL[1..=4],
        &mut report,
    )
    .await?;
    // The cluster is gone: its kubeconfig and the bootstrap's state with it, so a later
    // bootstrap starts afresh.
    let dir = o.state_dir();
    for f in [
        "state.json",
        "move-journal.json",
        "teardown-move-journal.json",
        "teardown.json",
    ] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let _ = std::fs::remove_file(o.kubeconfig_path());
    Ok(report)
}

async fn run_teardown_step(ctx: &mut Ctx<'_>, step: TeardownStep) -> Result<(), BoxError> {
    let o = ctx.o;
    match step {
        TeardownStep::KindCluster => ctx.create_kind().await,
        TeardownStep::KindComponents => {
            let kind = ctx.kind().await?;
            components::install(&kind, o, ctx.observer, ctx.cancel).await?;
            let target = ctx.target().await?;
            let objects = rendered_objects(o)?;
            components::cluster_controllers(&target, &kind, &objects, o, ctx.observer, ctx.cancel)
                .await
        }
        TeardownStep::SuspendFlux => {
            let target = ctx.target().await?;
            components::suspend_sync(&target, o, ctx.observer).await
        }
        TeardownStep::Move => {
            let kind = ctx.kind().await?;
            let target = ctx.target().await?;
            let mut mo = crate::capi::MoveOptions::new(&o.namespace);
            mo.journal = Some(o.state_dir().join("teardown-move-journal.json"));
            mo.delete_source = true;
            crate::capi::move_objects(&target, &kind, &mo, ctx.observer, ctx.cancel).await?;
            Ok(())
        }
        TeardownStep::DeleteCluster => {
            let kind = ctx.kind().await?;
            delete_cluster(&kind, o, ctx.observer, ctx.cancel).await
        }
        TeardownStep::DeleteKind => ctx.delete_kind().await,
    }
}

async fn delete_cluster(
    discovery: &Discovery,
    o: &Options,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<(), BoxError> {
    use crate::kube::wait::{WaitOptions, conditions, wait_for};
    let mut resource = None;
    for v in ["v1beta2", "v1beta1"] {
        let gvk =
            crate::manifest::Gvk::from_api_version(&format!("cluster.x-k8s.io/{v}"), "Cluster");
        if let Some(r) = discovery.resolve(&gvk).await? {
            resource = Some(r);
            break;
        }
    }
    let Some(r) = resource else {
        return Err(boxed(std::io::Error::other(
            "the Cluster kind is not served: Cluster API is not installed",
        )));
    };
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(discovery.client().clone(), &o.namespace, &r.api);
    let what = format!("Cluster {}/{} deleted", o.namespace, o.cluster);
    let Some(existing) = api.get_opt(&o.cluster).await? else {
        observer.success(
            format!("Cluster {}/{} is gone", o.namespace, o.cluster),
            None,
        );
        return Ok(());
    };
    if existing.metadata.deletion_timestamp.is_none() {
        observer.action(format!("deleting Cluster {}/{}", o.namespace, o.cluster));
        match api.delete(&o.cluster, &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(boxed(e)),
        }
    }
    let mut wo = WaitOptions::timeout(o.timeouts.delete);
    wo.max_interval = Duration::from_secs(5);
    wait_for(
        &api,
        &o.cluster,
        &what,
        &conditions::deleted(existing.metadata.uid.clone()),
        wo,
        observer,
        cancel,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_resource_appends_once_and_keeps_everything_else() {
        let k = "# comment\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../bases/addons\n- values.yaml\npatches:\n- target:\n    kind: HelmRelease\n";
        let out = add_resource(k, "credentials-sealed.yaml").unwrap();
        assert_eq!(
            out,
            "# comment\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../bases/addons\n- values.yaml\n- credentials-sealed.yaml\npatches:\n- target:\n    kind: HelmRelease\n"
        );
        assert_eq!(add_resource(&out, "credentials-sealed.yaml"), None);
        let indented = "resources:\n  - a.yaml\n";
        assert_eq!(
            add_resource(indented, "b.yaml").unwrap(),
            "resources:\n  - a.yaml\n  - b.yaml\n"
        );
        assert_eq!(
            add_resource("kind: Kustomization\n", "b.yaml").unwrap(),
            "kind: Kustomization\nresources:\n- b.yaml\n"
        );
    }
}
