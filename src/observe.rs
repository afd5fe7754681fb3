//! Progress reporting without printing.
//!
//! Long operations take an [`Observer`] and report what they do through it as [`Event`]s; the
//! binary turns events into terminal lines or JSON, an embedding program into whatever it likes.
//! The library itself never prints.

use std::fmt;
use std::time::Duration;

/// Something a long operation reports while it runs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// An action starts, e.g. "applying 42 objects".
    Action {
        /// What is being done, in a few words.
        what: String,
    },
    /// The operation waits for something outside its control.
    Waiting {
        /// What it waits for, e.g. "Deployment flux-system/source-controller available".
        what: String,
        /// Why it is not done yet (the object's last conditions, a status line), if known.
        detail: Option<String>,
    },
    /// An action finished.
    Success {
        /// What was done.
        what: String,
        /// How long it took, if measured.
        elapsed: Option<Duration>,
    },
    /// Something worth the user's attention that does not stop the operation.
    Warning {
        /// The warning.
        message: String,
    },
    /// A step of a plan (bootstrap, teardown) starts, ends or is skipped as already done.
    Step {
        /// Its position, from 1.
        index: usize,
        /// How many steps the plan has.
        total: usize,
        /// Its stable name, e.g. `kind-cluster`.
        name: String,
        /// What it does.
        what: String,
        /// Where it is.
        phase: StepPhase,
    },
    /// Countable progress, e.g. objects applied or bytes sent.
    Progress {
        /// What is being counted.
        what: String,
        /// Done so far.
        done: u64,
        /// The total, if known.
        total: Option<u64>,
    },
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepPhase {
    /// It starts.
    Started,
    /// It finished, after this long.
    Done(Duration),
    /// An earlier run finished it.
    Skipped,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Action { what } => write!(f, "{what}"),
            Event::Waiting { what, detail: None } => write!(f, "waiting for {what}"),
            Event::Waiting {
                what,
                detail: Some(d),
            } => write!(f, "waiting for {what}: {d}"),
            Event::Success {
                what,
                elapsed: None,
            } => write!(f, "{what}"),
            Event::Success {
                what,
                elapsed: Some(e),
            } => write!(f, "{what} ({:.1}s)", e.as_secs_f64()),
            Event::Warning { message } => write!(f, "warning: {message}"),
            Event::Step {
                index,
                total,
                what,
                phase,
                ..
            } => match phase {
                StepPhase::Started => write!(f, "[{index}/{total}] {what}"),
                StepPhase::Done(e) => {
                    write!(
                        f,
                        "[{index}/{total}] {what}: done ({:.1}s)",
                        e.as_secs_f64()
                    )
                }
                StepPhase::Skipped => write!(f, "[{index}/{total}] {what}: already done"),
            },
            Event::Progress {
                what,
                done,
                total: Some(t),
            } => write!(f, "{what}: {done}/{t}"),
            Event::Progress {
                what,
                done,
                total: None,
            } => write!(f, "{what}: {done}"),
        }
    }
}

/// Receives [`Event`]s from long operations. Implementations must be cheap and never block.
pub trait Observer: Send + Sync {
    /// Called for every event, possibly from several tasks at once.
    fn event(&self, event: Event);
}

/// An observer that drops every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _event: Event) {}
}

impl<F: Fn(Event) + Send + Sync> Observer for F {
    fn event(&self, event: Event) {
        self(event)
    }
}

/// Convenience methods so call sites read as sentences.
pub trait ObserverExt: Observer {
    /// Reports [`Event::Action`].
    fn action(&self, what: impl Into<String>) {
        self.event(Event::Action { what: what.into() })
    }
    /// Reports [`Event::Waiting`].
    fn waiting(&self, what: impl Into<String>, detail: Option<String>) {
        self.event(Event::Waiting {
            what: what.into(),
            detail,
        })
    }
    /// Reports [`Event::Success`].
    fn success(&self, what: impl Into<String>, elapsed: Option<Duration>) {
        self.event(Event::Success {
            what: what.into(),
            elapsed,
        })
    }
    /// Reports [`Event::Warning`].
    fn warning(&self, message: impl Into<String>) {
        self.event(Event::Warning {
            message: message.into(),
        })
    }
    /// Reports [`Event::Progress`].
    fn progress(&self, what: impl Into<String>, done: u64, total: Option<u64>) {
        self.event(Event::Progress {
            what: what.into(),
            done,
            total,
        })
    }
}

impl<O: Observer + ?Sized> ObserverExt for O {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn closures_observe_and_events_display() {
        let seen = Mutex::new(Vec::new());
        let obs = |e: Event| seen.lock().unwrap().push(e.to_string());
        obs.action("applying 3 objects");
        obs.waiting(
            "CRD foos.example.com established",
            Some("Established=False".into()),
        );
        obs.success("applied", Some(Duration::from_millis(1500)));
        obs.progress("objects", 2, Some(3));
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "applying 3 objects",
                "waiting for CRD foos.example.com established: Established=False",
                "applied (1.5s)",
                "objects: 2/3"
            ]
        );
    }
}
