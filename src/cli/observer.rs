//! Turns library events into terminal lines, a spinner per step, or JSON lines.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use capi_manage::observe::{Event, Observer, StepPhase};
use indicatif::{ProgressBar, ProgressStyle};

enum Mode {
    /// One line per event on stderr.
    Lines,
    /// A spinner with elapsed time for the running step; finished steps stay as lines.
    Spinner(Mutex<Option<ProgressBar>>),
    /// One JSON object per event on stdout.
    Json,
    /// Nothing (`-q`): only the final error is printed, by `main`.
    Quiet,
}

/// Reports events on the terminal.
pub struct Terminal {
    mode: Mode,
}

impl Terminal {
    /// Plain lines on stderr.
    pub fn stderr() -> Self {
        let mode = if super::quiet() {
            Mode::Quiet
        } else {
            Mode::Lines
        };
        Terminal { mode }
    }

    /// For `--output text|json`: JSON lines on stdout, else a spinner when stderr is a
    /// terminal, else plain lines.
    pub fn for_output(output: &str) -> Self {
        let mode = if output == "json" {
            Mode::Json
        } else if super::quiet() {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Spinner(Mutex::new(None))
        } else {
            Mode::Lines
        };
        Terminal { mode }
    }

    /// Clears a running spinner.
    pub fn finish(&self) {
        if let Mode::Spinner(bar) = &self.mode
            && let Some(b) = bar.lock().unwrap().take()
        {
            b.finish_and_clear();
        }
    }
}

fn line(event: &Event) -> Option<String> {
    Some(match event {
        Event::Progress {
            done,
            total: Some(t),
            ..
        } if done != t => return None,
        Event::Action { .. } => format!("► {event}"),
        Event::Waiting { .. } => format!("◎ {event}"),
        Event::Success { .. } => format!("✔ {event}"),
        Event::Warning { .. } => format!("⚠ {event}"),
        Event::Step {
            phase: StepPhase::Started,
            ..
        } => format!("━ {event}"),
        Event::Step { .. } => format!("✔ {event}"),
        _ => format!("  {event}"),
    })
}

/// The event as one JSON object.
pub fn json(event: &Event) -> serde_json::Value {
    use serde_json::json;
    let secs = |d: &Duration| d.as_secs_f64();
    match event {
        Event::Action { what } => json!({"event": "action", "what": what}),
        Event::Waiting { what, detail } => {
            json!({"event": "waiting", "what": what, "detail": detail})
        }
        Event::Success { what, elapsed } => {
            json!({"event": "success", "what": what, "elapsed": elapsed.as_ref().map(secs)})
        }
        Event::Warning { message } => json!({"event": "warning", "message": message}),
        Event::Progress { what, done, total } => {
            json!({"event": "progress", "what": what, "done": done, "total": total})
        }
        Event::Step {
            index,
            total,
            name,
            what,
            phase,
        } => {
            let (phase, elapsed) = match phase {
                StepPhase::Started => ("started", None),
                StepPhase::Done(d) => ("done", Some(secs(d))),
                StepPhase::Skipped => ("skipped", None),
            };
            json!({"event": "step", "index": index, "total": total, "step": name, "what": what,
                   "phase": phase, "elapsed": elapsed})
        }
        other => json!({"event": "other", "what": other.to_string()}),
    }
}

impl Observer for Terminal {
    fn event(&self, event: Event) {
        match &self.mode {
            Mode::Quiet => {}
            Mode::Json => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", json(&event));
                let _ = out.flush();
            }
            Mode::Lines => {
                if let Some(l) = line(&event) {
                    let _ = writeln!(std::io::stderr().lock(), "{l}");
                }
            }
            Mode::Spinner(bar) => {
                let mut bar = bar.lock().unwrap();
                match &event {
                    Event::Step {
                        phase: StepPhase::Started,
                        ..
                    } => {
                        if let Some(b) = bar.take() {
                            b.finish_and_clear();
                        }
                        let b = ProgressBar::new_spinner();
                        b.set_style(
                            ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                                .expect("valid template"),
                        );
                        b.set_message(event.to_string());
                        b.enable_steady_tick(Duration::from_millis(120));
                        *bar = Some(b);
                    }
                    Event::Step { .. } => {
                        if let Some(b) = bar.take() {
                            b.finish_and_clear();
                        }
                        let _ = writeln!(std::io::stderr().lock(), "✔ {event}");
                    }
                    Event::Waiting { .. } | Event::Action { .. } | Event::Progress { .. } => {
                        match bar.as_ref() {
                            // Detail of the running step goes on the spinner's line.
                            Some(b) => {
                                if let Some(l) = line(&event) {
                                    b.set_message(l)
                                }
                            }
                            None => {
                                if let Some(l) = line(&event) {
                                    let _ = writeln!(std::io::stderr().lock(), "{l}");
                                }
                            }
                        }
                    }
                    _ => {
                        if let Some(l) = line(&event) {
                            match bar.as_ref() {
                                Some(b) => b.println(l),
                                None => {
                                    let _ = writeln!(std::io::stderr().lock(), "{l}");
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
