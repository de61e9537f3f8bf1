//! Each stack's driver runs in a `tcp_stack` span carrying its addresses, so the traces of
//! two stacks in one process can be told apart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tcp_tokio::{MemLink, Stack};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A subscriber that remembers each span's name and fields and, for each event, the spans
/// it happened in.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    /// Span descriptions by `Id - 1`.
    spans: Vec<String>,
    /// The spans entered on this (single) thread, innermost last.
    entered: Vec<u64>,
    /// Each event's message and the description of its innermost span.
    events: Vec<(String, Option<String>)>,
}

/// Renders the fields of a span or event as `name=value` pairs.
struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields(span.metadata().name().to_owned());
        span.record(&mut fields);
        let mut st = self.0.lock().unwrap();
        st.spans.push(fields.0);
        Id::from_u64(st.spans.len() as u64)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let mut st = self.0.lock().unwrap();
        let span = st.entered.last().map(|&id| st.spans[id as usize - 1].clone());
        st.events.push((fields.0, span));
    }

    fn enter(&self, span: &Id) {
        self.0.lock().unwrap().entered.push(span.into_u64());
    }

    fn exit(&self, _: &Id) {
        self.0.lock().unwrap().entered.pop();
    }
}

/// The driver's own events (here, its end after a shutdown) carry the span of their stack.
#[test]
fn each_stack_driver_traces_inside_a_span_named_by_its_addresses() {
    let recorder = Recorder::default();
    let _guard = tracing::subscriber::set_default(recorder.clone());
    let mut rt = tokio::runtime::Builder::new_current_thread();
    rt.enable_time().start_paused(true);
    rt.build().unwrap().block_on(async {
        let (a, b) = MemLink::pair();
        let one = Stack::builder().address("10.0.0.1".parse().unwrap()).seed(1).build(a);
        let two = Stack::builder().address("10.0.0.2".parse().unwrap()).seed(2).build(b);
        one.unwrap().shutdown(Duration::from_secs(1)).await;
        two.unwrap().shutdown(Duration::from_secs(1)).await;
    });
    let st = recorder.0.lock().unwrap();
    let finished: Vec<_> = st
        .events
        .iter()
        .filter(|(message, _)| message.contains("stack driver finished"))
        .map(|(_, span)| span.clone().unwrap_or_default())
        .collect();
    assert_eq!(finished.len(), 2, "{:?}", st.events);
    assert!(finished[0].starts_with("tcp_stack") && finished[0].contains("10.0.0.1"));
    assert!(finished[1].starts_with("tcp_stack") && finished[1].contains("10.0.0.2"));
}
