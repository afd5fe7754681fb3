//! The runner: runs the steps of a plan in order, skipping those done, saving the state after
//! each; and the two plans, [`bootstrap`] and [`teardown`].

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::context::Context;
use super::steps::{self, Step};
use super::{Error, Options, Report};
use crate::observe::{Event, Observer, ObserverExt, StepPhase};
use crate::repo::Repo;

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
                return Err(Error::Step {
                    step: step.id(),
                    what: step.description(),
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
/// Before anything is created: [`Error::Repo`] when the repository or the cluster folder is
/// unusable (the credentials still hold the placeholder, for one) or another run holds the
/// lock, and [`Error::State`], [`Error::StateCorrupt`] or [`Error::StateFormat`] for the state
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
    // Bad input fails before anything is created.
    let cluster = Repo::at(&o.root).cluster(&o.cluster).map_err(Error::Repo)?;
    cluster
        .credentials
        .ensure_filled(&cluster.dir.credentials())
        .map_err(Error::Repo)?;
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
        ..Report::default()
    };
    run_plan(&mut ctx, &steps::bootstrap_steps(), &mut report).await?;
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
    let dir = o.dir();
    let kubeconfig = dir.kubeconfig();
    let _lock = dir.lock().map_err(Error::Repo)?;
    let mut ctx = Context::load(o, observer, cancel, "teardown", dir.teardown_state())?;
    if !kubeconfig.is_file() && !ctx.state.done.contains(steps::MOVE) {
        return Err(Error::NoKubeconfig { path: kubeconfig });
    }
    let mut report = Report {
        kubeconfig,
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
