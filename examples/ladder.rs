//! A ladder diagram of a connection: segments between two columns and each
//! side's state transitions, with virtual time from the start.
//!
//! Segments come from the sim network's per-direction filter; state
//! transitions come from utcp's `state` debug events, caught by a small
//! `tracing` layer.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use utcp_proto::wire;

/// Which column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Left.
    Client,
    /// Right.
    Server,
}

/// Prints the ladder. Clone it freely.
#[derive(Clone)]
pub struct Ladder {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    start: Instant,
    client: IpAddr,
    server: IpAddr,
}

const WIDTH: usize = 42;

impl Ladder {
    /// Installs the ladder as the global tracing subscriber (state events).
    pub fn install(client: IpAddr, server: IpAddr) -> Ladder {
        let ladder = Ladder {
            inner: Arc::new(Mutex::new(Inner {
                start: Instant::now(),
                client,
                server,
            })),
        };
        let _ = tracing_subscriber::registry()
            .with(
                StateLayer {
                    ladder: ladder.clone(),
                }
                .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG),
            )
            .try_init();
        ladder
    }

    fn elapsed(&self) -> f64 {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.start.elapsed().as_secs_f64() * 1000.0
    }

    /// Restarts the time column at zero (a new scenario).
    pub fn restart_clock(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).start = Instant::now();
    }

    /// Hooks the ladder onto both directions of the sim link between `a`
    /// (the client column) and `b`.
    pub fn watch(
        &self,
        net: &utcp_runtime::sim::SimNetwork,
        a: &utcp_runtime::sim::SimDevice,
        b: &utcp_runtime::sim::SimDevice,
    ) {
        use utcp_runtime::sim::FilterAction;
        let l = self.clone();
        net.set_filter(a, b, move |p| {
            l.segment(Side::Client, p.data);
            FilterAction::Pass
        });
        let l = self.clone();
        net.set_filter(b, a, move |p| {
            l.segment(Side::Server, p.data);
            FilterAction::Pass
        });
    }

    /// The column titles.
    pub fn header(&self) {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        println!(
            "{:>9}  {:<w$}{:>w$}",
            "t (ms)",
            format!("client {}", g.client),
            format!("server {}", g.server),
            w = WIDTH
        );
    }

    /// A packet sent by `from`.
    pub fn segment(&self, from: Side, packet: &[u8]) {
        let t = self.elapsed();
        let text = match wire::parse_ip_tcp(packet, true) {
            Ok(p) => {
                let r = p.tcp;
                let mut s = format!("{} seq={}", r.flags, r.seq);
                if r.flags.ack() {
                    let _ = write!(s, " ack={}", r.ack);
                }
                let len = p.payload.len();
                if len > 0 {
                    let _ = write!(s, " len={len}");
                }
                s
            }
            Err(e) => format!("malformed packet: {e}"),
        };
        match from {
            Side::Client => println!("{t:>9.3}  {:<w$} -->", text, w = WIDTH),
            Side::Server => println!("{t:>9.3}  {:<w$}<-- {}", "", text, w = WIDTH),
        }
    }

    /// A state change of one side.
    pub fn state(&self, side: Side, from: &str, to: &str) {
        let t = self.elapsed();
        let s = format!("[{from} -> {to}]");
        match side {
            Side::Client => println!("{t:>9.3}  {s}"),
            Side::Server => println!("{t:>9.3}  {:>w$}", s, w = 2 * WIDTH + 4),
        }
    }

    /// A free-form note.
    pub fn note(&self, text: &str) {
        let t = self.elapsed();
        println!("{t:>9.3}  ({text})");
    }
}

struct StateLayer {
    ladder: Ladder,
}

/// The `local` field of a connection span.
struct Local(String);

#[derive(Default)]
struct Fields {
    message: String,
    from: String,
    to: String,
    local: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let v = format!("{value:?}").trim_matches('"').to_string();
        match field.name() {
            "message" => self.message = v,
            "from" => self.from = v,
            "to" => self.to = v,
            "local" => self.local = v,
            _ => {}
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &value);
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for StateLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Local(f.local));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message != "state" {
            return;
        }
        let local = ctx
            .event_span(event)
            .and_then(|s| {
                s.scope()
                    .find_map(|s| s.extensions().get::<Local>().map(|l| l.0.clone()))
            })
            .unwrap_or_default();
        let client = self
            .ladder
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .client;
        let side = if local.starts_with(&client.to_string()) {
            Side::Client
        } else {
            Side::Server
        };
        self.ladder.state(side, &f.from, &f.to);
    }
}
