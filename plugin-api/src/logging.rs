//! Log forwarding: the module's copy of `tracing` (a cdylib has its own) gets a
//! subscriber that hands every event at INFO or above to the host's logger through
//! [`Host::log`], so `tracing::info!` in a module lands in the host log tagged with the
//! module's name. Installed once per library by `export_module!`'s init.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use crate::host::{Host, Level as HostLevel};

struct Forward {
    host: Host,
}

/// `message` first, then `key=value` for the other fields.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Forward {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = match *event.metadata().level() {
            Level::ERROR => HostLevel::Error,
            Level::WARN => HostLevel::Warn,
            Level::INFO => HostLevel::Info,
            Level::DEBUG => HostLevel::Debug,
            Level::TRACE => HostLevel::Trace,
        };
        let mut line = Line::default();
        event.record(&mut line);
        self.host.log(level, &format!("{}{}", line.message, line.fields));
    }
}

/// Installs the forwarder as this library's global subscriber (a second call, e.g.
/// a module initialised twice, keeps the first).
pub fn install(host: Host) {
    let filter = tracing_subscriber::filter::LevelFilter::INFO;
    let _ = tracing_subscriber::registry().with(Forward { host }.with_filter(filter)).try_init();
}
