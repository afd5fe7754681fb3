//! The runner: runs the steps of a plan in order, skipping those done, saving the state after
//! each; and the two plans, [`bootstrap`] and [`teardown`].

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::context::Context;
use super::steps::{self, Step};
use super::{CheckStatus, Operation, Preflight};
use super::{Error, Options, Report};
use crate::observe::{Event, Observer, ObserverExt, StepPhase};

fn report_step(
    observer: &dyn Observer,
    index: usize,
    total: usize,
    step: &dyn Step,
    phase: StepPhase,
) {
    observer.event(Event::Step {
        index,
        total,
        name: step.id().to_string(),
        what: step.description().to_string(),
        phase,
    });
}

/// Runs every step of `plan` not yet done, saving the state after each. The step that creates
/// the kind cluster runs again (reusing the cluster) while any step that needs kind is not done;
/// a kind cluster created anew makes those steps run again.
async fn run_plan(
    ctx: &mut Context<'_>,
    plan: &[Box<dyn Step>],
    report: &mut Report,
) -> Result<(), Error> {
    let (observer, cancel) = (ctx.observer, ctx.cancel);
    let total = plan.len();
    for step in plan {
        if ctx.state.done.contains(step.id()) && step.is_done(ctx).await == Some(false) {
            observer.warning(format!(
                "step {} was done but what it left is gone: it runs again",
                step.id()
            ));
            ctx.state.done.remove(step.id());
        }
    }
    let kind_needed = plan
        .iter()
        .any(|s| s.needs_kind() && !ctx.state.done.contains(s.id()));
    for (i, step) in plan.iter().enumerate() {
        let step = step.as_ref();
        let done = ctx.state.done.contains(step.id()) && !(step.creates_kind() && kind_needed);
        let at = |phase| report_step(observer, i + 1, total, step, phase);
        if done {
            at(StepPhase::Skipped);
            report.skipped.push(step.id());
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
                ctx.state.done.insert(step.id().to_string());
                if std::mem::take(&mut ctx.kind_replaced) {
                    for s in plan.iter().filter(|s| s.needs_kind()) {
                        ctx.state.done.remove(s.id());
                    }
                }
                ctx.save()?;
                at(StepPhase::Done(started.elapsed()));
                report.ran.push(step.id());
            }
            _ if cancel.is_cancelled() => {
                ctx.save()?;
                return Err(Error::Cancelled { step: step.id() });
            }
            Some(Err(source)) => {
                ctx.save()?;
                let support_bundle = super::bundle::write(ctx, step.id(), &source).await;
                return Err(Error::Step {
                    step: step.id(),
                    what: step.description(),
                    support_bundle,
                    source: Box::new(source),
                });
            }
            None => unreachable!("only cancellation ends the select without a result"),
        }
    }
    Ok(())
}

/// Runs `capi-manage bootstrap`: every step of [`steps::bootstrap_steps`] not yet done, in
/// order.
///
/// # Errors
///
/// Before anything is created: [`Error::Preflight`] listing every problem the preflight
/// found (the cluster folder unusable, the credentials still holding the placeholder,
/// `vendor-manifests/` not rendered, no Docker engine, the remote refusing us, the cloud
/// lacking what the values name, ...); [`Error::Repo`] when another run holds the lock, and [`Error::State`], [`Error::StateCorrupt`] or [`Error::StateFormat`] for the state
/// file; [`Error::KubeconfigGone`] when the cluster has moved and its kubeconfig is missing.
/// While running: [`Error::Step`] names the step that failed and carries the cause as a
/// [`StepError`](super::StepError) (the module's error, or
/// [`StepError::DeployKeyNotAdded`](super::StepError::DeployKeyNotAdded) when the
/// confirmation said no, or [`StepError::OtherCluster`](super::StepError::OtherCluster) when a
/// kubeconfig reaches another cluster than the recorded one); [`Error::Cancelled`] when
/// `cancel` fired. Every step done is recorded first: a rerun resumes.
pub async fn bootstrap(
    o: &Options,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Report, Error> {
    // Every problem is found before anything is created.
    let preflight = run_preflight(o, Operation::Bootstrap, observer, cancel).await?;
    let dir = o.dir();
    let _lock = dir.lock().map_err(Error::Repo)?;
    let mut ctx = Context::load(o, observer, cancel, "bootstrap", dir.bootstrap_state())?;
    // Once the cluster has moved, its kubeconfig cannot be read from kind again.
    if ctx.state.done.contains(steps::MOVE) && !dir.kubeconfig().is_file() {
        return Err(Error::KubeconfigGone {
            path: dir.kubeconfig(),
        });
    }
    let mut report = Report {
        kubeconfig: dir.kubeconfig(),
        preflight,
        ..Report::default()
    };
    run_plan(&mut ctx, &steps::bootstrap_steps(), &mut report).await?;
    report.pushed = ctx.state.pushed.clone();
    Ok(report)
}

/// The preflight of `operation` with the network checks (the cloud's when
/// [`Options::cloud_preflight`] asks for it): each check reported, and every problem at once
/// in [`Error::Preflight`], before anything is created.
async fn run_preflight(
    o: &Options,
    operation: Operation,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Preflight, Error> {
    let mut p = super::preflight(o, operation, true, cancel).await?;
    for c in &mut p.checks {
        if c.status == CheckStatus::Problem
            && o.ignore_preflight.iter().any(|i| i == "all" || i == c.id)
        {
            c.status = CheckStatus::Warning;
        }
    }
    // Problems and warnings one line each; the checks that passed in one line.
    for c in p
        .checks
        .iter()
        .filter(|c| matches!(c.status, CheckStatus::Warning | CheckStatus::Problem))
    {
        observer.warning(c.line());
    }
    if p.is_ok() {
        let count = |s| p.checks.iter().filter(|c| c.status == s).count();
        observer.success(
            format!(
                "preflight: {} checks passed, {} skipped",
                count(CheckStatus::Ok),
                count(CheckStatus::Skipped)
            ),
            None,
        );
    }
    if !p.is_ok() {
        return Err(Error::Preflight {
            problems: p
                .problems()
                .map(|c| {
                    format!(
                        "{}: {} (fix: {})",
                        c.id,
                        c.detail,
                        c.fix.as_deref().unwrap_or_default()
                    )
                })
                .collect(),
            preflight: p,
        });
    }
    Ok(p)
}

/// Runs `capi-manage teardown`: moves the cluster back to a kind cluster, deletes it there and
/// deletes the kind cluster.
///
/// # Errors
///
/// [`Error::Preflight`] when the preflight finds problems (the kubeconfig missing or not
/// connecting among them); [`Error::Repo`] when another run holds the lock;
/// [`Error::NoKubeconfig`] when the cluster's kubeconfig is missing; the state file errors as
/// for [`bootstrap`]; [`Error::Step`] for a failed step (its module's error as the source) and
/// [`Error::Cancelled`] when `cancel` fired. What was done is recorded: a rerun resumes.
pub async fn teardown(
    o: &Options,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> Result<Report, Error> {
    let preflight = run_preflight(o, Operation::Teardown, observer, cancel).await?;
    let dir = o.dir();
    let kubeconfig = dir.kubeconfig();
    let _lock = dir.lock().map_err(Error::Repo)?;
    let mut ctx = Context::load(o, observer, cancel, "teardown", dir.teardown_state())?;
    if !kubeconfig.is_file() && !ctx.state.done.contains(steps::MOVE) {
        return Err(Error::NoKubeconfig { path: kubeconfig });
    }
    let mut report = Report {
        kubeconfig,
        preflight,
        ..Report::default()
    };
    run_plan(&mut ctx, &steps::teardown_steps(), &mut report).await?;
    // The cluster is gone: its kubeconfig and the bootstrap's state with it, so a later
    // bootstrap starts afresh.
    for f in [
        dir.bootstrap_state(),
        dir.move_journal(),
        dir.teardown_move_journal(),
        dir.teardown_state(),
        dir.kubeconfig(),
    ] {
        let _ = std::fs::remove_file(f);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::LocalBoxFuture;

    use super::*;
    use crate::bootstrap::StepError;
    use crate::observe::Silent;

    /// A step that records its runs; `fail` makes it fail, `replace_kind` makes it report a
    /// new kind cluster.
    struct Fake {
        id: &'static str,
        needs_kind: bool,
        creates_kind: bool,
        fail: bool,
        replace_kind: bool,
        ran: &'static Mutex<Vec<&'static str>>,
    }

    impl Step for Fake {
        fn id(&self) -> &'static str {
            self.id
        }
        fn description(&self) -> &'static str {
            "fake"
        }
        fn needs_kind(&self) -> bool {
            self.needs_kind
        }
        fn creates_kind(&self) -> bool {
            self.creates_kind
        }
        fn run<'a>(
            &'a self,
            ctx: &'a mut Context<'_>,
        ) -> LocalBoxFuture<'a, Result<(), StepError>> {
            Box::pin(async move {
                self.ran.lock().unwrap().push(self.id);
                ctx.kind_replaced = self.replace_kind;
                if self.fail {
                    return Err(StepError::NoHost { url: "x".into() });
                }
                Ok(())
            })
        }
    }

    fn plan(
        ran: &'static Mutex<Vec<&'static str>>,
        fail: &str,
        replace: bool,
    ) -> Vec<Box<dyn Step>> {
        let step = |id, needs_kind, creates_kind| -> Box<dyn Step> {
            Box::new(Fake {
                id,
                needs_kind,
                creates_kind,
                fail: id == fail,
                replace_kind: creates_kind && replace,
                ran,
            })
        };
        vec![
            step("create", false, true),
            step("use", true, false),
            step("after", false, false),
        ]
    }

    async fn run(
        dir: &std::path::Path,
        plan: &[Box<dyn Step>],
    ) -> (Result<(), Error>, Report, crate::bootstrap::State) {
        let o = Options::new(dir, "prod");
        let cancel = CancellationToken::new();
        let path = dir.join("state.json");
        let mut ctx = Context::load(&o, &Silent, &cancel, "bootstrap", path.clone()).unwrap();
        let mut report = Report::default();
        let r = run_plan(&mut ctx, plan, &mut report).await;
        (r, report, crate::bootstrap::State::load(&path).unwrap())
    }

    #[tokio::test]
    async fn a_failed_step_is_named_and_a_rerun_resumes_after_the_done_ones() {
        static RAN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
        let dir = tempfile::tempdir().unwrap();
        let (r, report, state) = run(dir.path(), &plan(&RAN, "after", false)).await;
        match r {
            Err(Error::Step { step, source, .. }) => {
                assert_eq!(step, "after");
                assert!(matches!(*source, StepError::NoHost { .. }));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(report.ran, ["create", "use"]);
        assert_eq!(state.done.iter().collect::<Vec<_>>(), ["create", "use"]);

        RAN.lock().unwrap().clear();
        let (r, report, _) = run(dir.path(), &plan(&RAN, "", false)).await;
        r.unwrap();
        assert_eq!(report.skipped, ["create", "use"]);
        assert_eq!(*RAN.lock().unwrap(), ["after"]);
    }

    #[tokio::test]
    async fn kind_is_created_again_while_a_step_needing_it_is_pending() {
        static RAN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
        let dir = tempfile::tempdir().unwrap();
        let (r, ..) = run(dir.path(), &plan(&RAN, "use", false)).await;
        assert!(r.is_err());
        RAN.lock().unwrap().clear();
        // `create` is done, but `use` is not: `create` runs again (reusing the cluster).
        let (r, ..) = run(dir.path(), &plan(&RAN, "", false)).await;
        r.unwrap();
        assert_eq!(*RAN.lock().unwrap(), ["create", "use", "after"]);
    }

    #[tokio::test]
    async fn a_new_kind_cluster_makes_the_steps_that_need_it_run_again() {
        static RAN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
        let dir = tempfile::tempdir().unwrap();
        let (r, ..) = run(dir.path(), &plan(&RAN, "after", false)).await;
        assert!(r.is_err());
        let path = dir.path().join("state.json");
        let mut state = crate::bootstrap::State::load(&path).unwrap();
        // As if `use` were done but the plan's kind cluster was replaced: a fresh `create`
        // (which reports it) resets `use`.
        state.done.remove("create");
        state.save(&path).unwrap();
        RAN.lock().unwrap().clear();
        let (r, ..) = run(dir.path(), &plan(&RAN, "", true)).await;
        r.unwrap();
        assert_eq!(*RAN.lock().unwrap(), ["create", "use", "after"]);
    }
}
