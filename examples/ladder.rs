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
    /// The column titles' addresses (with ports where known).
    titles: (String, String),
    /// Sequence numbers relative to each side's ISN (x for the client's,
    /// y for the server's), as the seed writes them.
    relative: bool,
    /// The ISNs, once each side's SYN was seen.
    isn: [Option<utcp_proto::SeqNum>; 2],
}

impl Inner {
    /// `n` as an offset from `side`'s ISN: x, x+1, y+12 …; the number itself
    /// when not relative or before that side's SYN.
    fn number(&self, side: Side, n: utcp_proto::SeqNum) -> String {
        let (i, name) = match side {
            Side::Client => (0, 'x'),
            Side::Server => (1, 'y'),
        };
        match self.isn[i] {
            Some(isn) if self.relative => match n.get().wrapping_sub(isn.get()) {
                0 => name.to_string(),
                d if d < 1 << 31 => format!("{name}+{d}"),
                d => format!("{name}-{}", d.wrapping_neg()),
            },
            _ => n.to_string(),
        }
    }
}

const WIDTH: usize = 42;

impl Ladder {
    /// Installs the ladder as the global tracing subscriber (state events).
    pub fn install(client: IpAddr, server: IpAddr) -> Ladder {
        let ladder = Ladder::new(client, server);
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

    /// A ladder that only prints what it is given (no tracing layer): for
    /// segments and states from elsewhere, a capture file say.
    pub fn new(client: IpAddr, server: IpAddr) -> Ladder {
        Ladder {
            inner: Arc::new(Mutex::new(Inner {
                start: Instant::now(),
                client,
                titles: (client.to_string(), server.to_string()),
                relative: false,
                isn: [None, None],
            })),
        }
    }

    /// Titles the columns with these addresses (ports included, say).
    pub fn set_titles(&self, client: String, server: String) {
        self.lock().titles = (client, server);
    }

    /// Writes sequence and acknowledgment numbers relative to each side's
    /// ISN (x for the client's, y for the server's: `seq=x+1 ack=y+1`).
    pub fn set_relative(&self, on: bool) {
        self.lock().relative = on;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
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
        let g = self.lock();
        println!(
            "{:>9}  {:<w$}{:>w$}",
            "t (ms)",
            format!("client {}", g.titles.0),
            format!("server {}", g.titles.1),
            w = WIDTH
        );
    }

    /// A packet sent by `from`.
    pub fn segment(&self, from: Side, packet: &[u8]) {
        let t = self.elapsed();
        self.segment_at(t, from, packet, true);
    }

    /// A packet sent by `from` at `t_ms`; `verify`: check its checksum
    /// (not for a capture taken where the checksum was left to the NIC).
    pub fn segment_at(&self, t_ms: f64, from: Side, packet: &[u8], verify: bool) {
        let t = t_ms;
        let text = match wire::parse_ip_tcp(packet, verify) {
            Ok(p) => {
                let r = p.tcp;
                let mut g = self.lock();
                if r.flags.syn() {
                    g.isn[from as usize] = Some(r.seq);
                }
                let other = match from {
                    Side::Client => Side::Server,
                    Side::Server => Side::Client,
                };
                let mut s = format!("{} seq={}", r.flags, g.number(from, r.seq));
                if r.flags.ack() {
                    let _ = write!(s, " ack={}", g.number(other, r.ack));
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
        self.state_at(t, side, from, to);
    }

    /// A state change of one side at `t_ms`.
    pub fn state_at(&self, t: f64, side: Side, from: &str, to: &str) {
        let s = format!("[{from} -> {to}]");
        match side {
            Side::Client => println!("{t:>9.3}  {s}"),
            Side::Server => println!("{t:>9.3}  {:>w$}", s, w = 2 * WIDTH + 4),
        }
    }

    /// A free-form note.
    pub fn note(&self, text: &str) {
        let t = self.elapsed();
        self.note_at(t, text);
    }

    /// A free-form note at `t_ms`.
    pub fn note_at(&self, t: f64, text: &str) {
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
        let client = self.ladder.lock().client;
        let side = if local.starts_with(&client.to_string()) {
            Side::Client
        } else {
            Side::Server
        };
        self.ladder.state(side, &f.from, &f.to);
    }
}
