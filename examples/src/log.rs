//! A minimal `tracing` subscriber for the examples: each event at or above a level as one
//! line on stderr (`LEVEL target: message key=value ...`), spans ignored. The examples may
//! not depend on `tracing-subscriber`; this is all they need to show their logs.

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Prints events at `max` and more severe to stderr.
#[derive(Clone, Copy, Debug)]
pub struct StderrLog {
    max: Level,
}

impl StderrLog {
    /// Install as the global default with the level named by the environment variable `var`
    /// (`error`, `warn`, `info`, `debug`, `trace`; `info` when unset or unknown).
    pub fn install_from_env(var: &str) {
        let max = std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(Level::INFO);
        let _ = tracing::subscriber::set_global_default(StderrLog { max });
    }
}

/// Renders an event's fields: the message first, then `name=value` pairs.
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl Subscriber for StderrLog {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut line = Line(format!("{:>5} {}:", meta.level(), meta.target()));
        event.record(&mut line);
        line.0.push('\n');
        let _ = std::io::stderr().lock().write_all(line.0.as_bytes());
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
