//! One direction of a simulated link: its configuration, its seeded RNG, its
//! drop-tail queue, its scripted filter and its counters, and the computation
//! of each packet's fate (dropped, or delivered at which instants).

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

use super::Host;

/// The behaviour of one link direction: rate, delays and random impairments.
///
/// The default carries every packet at once, unchanged, in order: no rate
/// limit, no delay, no impairment. Build one with struct update syntax
/// (`LinkConfig { loss: 0.01, ..Default::default() }`) or with the builder
/// methods of the same names (`LinkConfig::default().delay(ms).loss(0.01)`).
/// Probabilities are clamped to `0.0..=1.0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// Serialization rate in IP bytes per second; `None` is infinitely fast.
    /// A packet leaves when the packets ahead of it have left, plus its own
    /// length divided by the rate.
    pub rate: Option<u64>,
    /// Propagation delay added to every packet after it leaves.
    pub delay: Duration,
    /// Uniform random extra delay in `0..=jitter`. Jitter alone never reorders:
    /// a packet never arrives before the one sent ahead of it on the direction.
    pub jitter: Duration,
    /// Drop-tail queue limit in bytes, used only with a `rate`: a packet is
    /// dropped when the bytes waiting or being serialized ahead of it plus its
    /// own length exceed this (a packet arriving at an idle link is always
    /// taken). Default 64 KiB.
    pub queue_bytes: usize,
    /// Probability that a packet is lost after it leaves the queue.
    pub loss: f64,
    /// Probability that a packet is delivered twice (the copy right after the
    /// original).
    pub duplicate: f64,
    /// Probability that a packet is held back by `reorder_delay`, so that
    /// packets sent after it may overtake it.
    pub reorder: f64,
    /// Extra delay given to a packet chosen for reordering. Default 10 ms.
    pub reorder_delay: Duration,
    /// Probability that a delivered copy has one random bit flipped.
    pub corrupt: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            rate: None,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            queue_bytes: 64 * 1024,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(10),
            corrupt: 0.0,
        }
    }
}

impl LinkConfig {
    /// Sets the serialization rate in IP bytes per second.
    #[must_use]
    pub fn rate(mut self, bytes_per_second: u64) -> Self {
        self.rate = Some(bytes_per_second);
        self
    }

    /// Sets the propagation delay.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the maximum uniform jitter.
    #[must_use]
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the drop-tail queue limit in bytes (used only with a rate).
    #[must_use]
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Sets the loss probability.
    #[must_use]
    pub fn loss(mut self, probability: f64) -> Self {
        self.loss = probability;
        self
    }

    /// Sets the duplication probability.
    #[must_use]
    pub fn duplicate(mut self, probability: f64) -> Self {
        self.duplicate = probability;
        self
    }

    /// Sets the reordering probability and the extra delay of a reordered packet.
    #[must_use]
    pub fn reorder(mut self, probability: f64, extra_delay: Duration) -> Self {
        self.reorder = probability;
        self.reorder_delay = extra_delay;
        self
    }

    /// Sets the single-bit corruption probability.
    #[must_use]
    pub fn corrupt(mut self, probability: f64) -> Self {
        self.corrupt = probability;
        self
    }
}

/// Counters of one link direction, as returned by
/// [`SimNetwork::stats`](super::SimNetwork::stats).
///
/// Every packet offered is `sent`; it is then `filtered`, a `queue_drop`,
/// `lost`, or carried (and maybe `duplicated`). A carried copy counts as
/// `delivered` when the receiving device hands it to its reader; a copy that
/// overflows the receiver's queue is counted in the receiver's
/// [`HostStats::rx_queue_drops`](super::HostStats::rx_queue_drops) instead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets offered to the direction by the sending host.
    pub sent: u64,
    /// Copies handed to the receiving device's reader (duplicates and injected
    /// packets included).
    pub delivered: u64,
    /// Packets lost at random.
    pub lost: u64,
    /// Packets dropped because the queue was full.
    pub queue_drops: u64,
    /// Packets delivered twice.
    pub duplicated: u64,
    /// Copies with a flipped bit.
    pub corrupted: u64,
    /// Packets held back to be overtaken.
    pub reordered: u64,
    /// Packets dropped by the scripted filter.
    pub filtered: u64,
    /// Packets injected with [`SimNetwork::inject`](super::SimNetwork::inject).
    pub injected: u64,
    /// IP bytes of the delivered copies.
    pub bytes_delivered: u64,
}

/// A packet shown to a scripted filter.
#[derive(Clone, Copy, Debug)]
pub struct FilterPacket<'a> {
    /// The packet's index on its direction, counting every packet the sending
    /// host offered to it, from 0 (injected packets are not counted).
    pub index: u64,
    /// The IP packet.
    pub data: &'a [u8],
}

/// What a scripted filter does with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterAction {
    /// Let the packet through to the rate limit and the random impairments.
    Pass,
    /// Drop the packet (counted as `filtered`).
    Drop,
    /// Let it through, then delay its arrival by this much more; packets sent
    /// after it may overtake it.
    Delay(Duration),
}

/// A scripted filter.
pub(super) type Filter = Box<dyn FnMut(&FilterPacket<'_>) -> FilterAction + Send>;

/// Delivery counters, shared with the packets queued at the receiver so that a
/// copy counts as delivered when the receiver takes it (without a reference
/// cycle between hosts and directions).
#[derive(Debug, Default)]
pub(super) struct DeliveryCounters {
    delivered: AtomicU64,
    bytes: AtomicU64,
}

impl DeliveryCounters {
    /// Counts one copy of `len` bytes handed to the reader.
    pub(super) fn count(&self, len: usize) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(len as u64, Ordering::Relaxed);
    }
}

/// The outcome of offering a packet to a direction.
pub(super) enum Outcome {
    /// The direction is not linked.
    Unlinked,
    /// Filtered, queue-dropped or lost (counted).
    Dropped,
    /// Deliver the packet at `arrival`, and maybe a second copy: its
    /// arrival and, if the copy's bytes differ from the packet's, its own.
    Deliver {
        /// When the packet arrives.
        arrival: Instant,
        /// A duplicate's arrival and, when corruption made them differ, its
        /// bytes.
        copy: Option<(Instant, Option<Bytes>)>,
    },
}

/// One direction of a link between two hosts.
pub(super) struct Direction {
    /// The receiving host.
    pub(super) to: Arc<Host>,
    /// Shared with the queued copies.
    pub(super) counters: Arc<DeliveryCounters>,
    state: Mutex<DirState>,
}

struct DirState {
    /// `None` until linked, and again after `unlink`.
    cfg: Option<LinkConfig>,
    rng: ChaCha8Rng,
    /// When the last accepted packet finishes serializing.
    busy_until: Option<Instant>,
    /// (departure, length) of the packets not yet serialized, in order.
    queue: VecDeque<(Instant, usize)>,
    queued_bytes: usize,
    /// The latest arrival of a packet not held back (the jitter clamp).
    last_arrival: Option<Instant>,
    next_index: u64,
    filter: Option<Filter>,
    stats: LinkStats,
}

impl fmt::Debug for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Direction")
            .field("to", &self.to.name)
            .finish_non_exhaustive()
    }
}

impl Direction {
    /// A new, unlinked direction whose RNG is seeded from the network seed and
    /// the direction's index, so a seed replays exactly.
    pub(super) fn new(seed: u64, index: u64, to: Arc<Host>) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index);
        Self {
            to,
            counters: Arc::default(),
            state: Mutex::new(DirState {
                cfg: None,
                rng,
                busy_until: None,
                queue: VecDeque::new(),
                queued_bytes: 0,
                last_arrival: None,
                next_index: 0,
                filter: None,
                stats: LinkStats::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DirState> {
        // A panicking filter poisons the lock; the state stays consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Links (or re-configures) the direction.
    pub(super) fn set_config(&self, cfg: Option<LinkConfig>) {
        self.lock().cfg = cfg;
    }

    /// The configuration, `None` when not linked.
    pub(super) fn config(&self) -> Option<LinkConfig> {
        self.lock().cfg
    }

    pub(super) fn set_filter(&self, filter: Option<Filter>) {
        self.lock().filter = filter;
    }

    pub(super) fn stats(&self) -> LinkStats {
        let mut stats = self.lock().stats;
        stats.delivered = self.counters.delivered.load(Ordering::Relaxed);
        stats.bytes_delivered = self.counters.bytes.load(Ordering::Relaxed);
        stats
    }

    /// Decides the fate of a packet sent at `now`: filter, queue and rate,
    /// loss, delay and jitter, reordering, duplication, corruption. A
    /// corrupted packet has its bit flipped in `data`, in place.
    pub(super) fn transmit(&self, now: Instant, data: &mut [u8]) -> Outcome {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(cfg) = st.cfg else {
            return Outcome::Unlinked;
        };
        let index = st.next_index;
        st.next_index += 1;
        st.stats.sent += 1;

        let mut held = Duration::ZERO;
        if let Some(filter) = st.filter.as_mut() {
            match filter(&FilterPacket { index, data }) {
                FilterAction::Pass => {}
                FilterAction::Drop => {
                    st.stats.filtered += 1;
                    tracing::trace!(index, "sim: filtered");
                    return Outcome::Dropped;
                }
                FilterAction::Delay(d) => held = d,
            }
        }

        let len = data.len();
        let departure = match cfg.rate {
            None => now,
            Some(rate) => {
                while let Some(&(left, l)) = st.queue.front() {
                    if left > now {
                        break;
                    }
                    st.queue.pop_front();
                    st.queued_bytes -= l;
                }
                if st.queued_bytes > 0 && st.queued_bytes + len > cfg.queue_bytes {
                    st.stats.queue_drops += 1;
                    tracing::trace!(index, queued = st.queued_bytes, "sim: queue drop");
                    return Outcome::Dropped;
                }
                let start = st.busy_until.map_or(now, |busy| busy.max(now));
                let departure = start + serialization(len, rate);
                st.busy_until = Some(departure);
                st.queue.push_back((departure, len));
                st.queued_bytes += len;
                departure
            }
        };

        if chance(&mut st.rng, cfg.loss) {
            st.stats.lost += 1;
            tracing::trace!(index, "sim: lost");
            return Outcome::Dropped;
        }

        let jitter = match u64::try_from(cfg.jitter.as_nanos()).unwrap_or(u64::MAX) {
            0 => Duration::ZERO,
            max => Duration::from_nanos(st.rng.gen_range(0..=max)),
        };
        let base = departure + cfg.delay + jitter;
        let arrival = if chance(&mut st.rng, cfg.reorder) {
            // Held back and not clamped, so that later packets overtake it.
            st.stats.reordered += 1;
            base + cfg.reorder_delay
        } else {
            let arrival = st.last_arrival.map_or(base, |last| last.max(base));
            st.last_arrival = Some(arrival);
            arrival
        };
        // A filter's delay also leaves the clamp alone.
        let arrival = arrival + held;

        // The copy is taken before the original's corruption; it shares the
        // original's bytes unless the two differ.
        let mut copy = None;
        let mut plain_copy = false;
        if chance(&mut st.rng, cfg.duplicate) {
            st.stats.duplicated += 1;
            if chance(&mut st.rng, cfg.corrupt) {
                st.stats.corrupted += 1;
                let mut c = data.to_vec();
                flip_bit(&mut st.rng, &mut c);
                copy = Some((arrival, Some(Bytes::from(c))));
            } else {
                plain_copy = true;
                copy = Some((arrival, None));
            }
        }
        if chance(&mut st.rng, cfg.corrupt) {
            st.stats.corrupted += 1;
            if plain_copy {
                copy = Some((arrival, Some(Bytes::copy_from_slice(data))));
            }
            flip_bit(&mut st.rng, data);
        }
        Outcome::Deliver { arrival, copy }
    }

    /// The arrival instant of a packet injected at `now`: after the link's
    /// delay, in order with the packets already sent.
    pub(super) fn inject(&self, now: Instant) -> Instant {
        let mut st = self.lock();
        st.stats.injected += 1;
        let base = now + st.cfg.map_or(Duration::ZERO, |cfg| cfg.delay);
        let arrival = st.last_arrival.map_or(base, |last| last.max(base));
        st.last_arrival = Some(arrival);
        arrival
    }
}

/// How long `len` bytes take at `rate` bytes per second, rounded up to the
/// nanosecond (a rate of 0 is taken as 1).
fn serialization(len: usize, rate: u64) -> Duration {
    let nanos = (len as u128 * 1_000_000_000).div_ceil(u128::from(rate.max(1)));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Draws a Bernoulli trial; consumes no randomness for a probability of 0.
fn chance(rng: &mut ChaCha8Rng, probability: f64) -> bool {
    if probability.is_nan() || probability <= 0.0 {
        false
    } else if probability >= 1.0 {
        // Draw anyway so that 1.0 consumes the stream like 0.999 does.
        let _ = rng.r#gen::<u64>();
        true
    } else {
        rng.gen_bool(probability)
    }
}

/// Flips one random bit of `data` (nothing for an empty packet).
fn flip_bit(rng: &mut ChaCha8Rng, data: &mut [u8]) {
    if data.is_empty() {
        return;
    }
    let bit = rng.gen_range(0..data.len() * 8);
    data[bit / 8] ^= 1 << (bit % 8);
}
