//! The instance id on every log line of a cluster member.
//!
//! Instances of a cluster write to one log pipeline; each line says which
//! instance wrote it: `instance=<id>` first on a text line, an `"instance"`
//! key in a JSON line. The id is known once the configuration is read
//! ([`set`]); lines before that (and every line single-node) carry none.

use std::fmt;
use std::sync::OnceLock;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

static INSTANCE: OnceLock<String> = OnceLock::new();

/// Names this process's instance on every later log line.
pub fn set(id: &str) {
    let _ = INSTANCE.set(id.to_string());
}

/// An event formatter that puts the instance id in front of another's.
pub struct WithInstance<F> {
    pub inner: F,
    /// The inner formatter writes JSON objects.
    pub json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithInstance<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some(id) = INSTANCE.get() else {
            return self.inner.format_event(ctx, writer, event);
        };
        if !self.json {
            write!(writer, "instance={id} ")?;
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        // The id is checked at start (letters, digits, '-', '_'): no
        // escaping is needed inside the JSON string.
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"instance\":\"{id}\",{rest}"),
            None => writer.write_str(&line),
        }
    }
}
