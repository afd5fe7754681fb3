//! Turns library events into terminal lines.

use std::io::Write;

use capi_manage::observe::{Event, Observer};

/// Prints events to stderr, one line each; progress only when it completes a count.
pub struct Terminal {
    _private: (),
}

impl Terminal {
    pub fn stderr() -> Self {
        Terminal { _private: () }
    }
}

impl Observer for Terminal {
    fn event(&self, event: Event) {
        let line = match &event {
            Event::Progress {
                done,
                total: Some(t),
                ..
            } if done != t => return,
            Event::Action { .. } => format!("► {event}"),
            Event::Waiting { .. } => format!("◎ {event}"),
            Event::Success { .. } => format!("✔ {event}"),
            Event::Warning { .. } => format!("⚠ {event}"),
            _ => format!("  {event}"),
        };
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}
