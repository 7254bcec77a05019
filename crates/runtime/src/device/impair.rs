//! A seeded impairment wrapper for any device: drops packets in and out with
//! given probabilities, and received packets a filter picks (a scripted drop,
//! such as [`nth_tcp_data_segment`]), so loss toward the stack is real wire
//! loss for the peer (used against kernel peers, where netem is not
//! available).

use super::{Device, DeviceAddrs, Medium, RxPacket, TxPacket};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

/// Loss probabilities of an [`Impair`] wrapper.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ImpairConfig {
    /// Probability that a received packet is dropped before the stack sees it.
    pub rx_loss: f64,
    /// Probability that a packet the stack sends is dropped.
    pub tx_loss: f64,
    /// RNG seed (a seed replays exactly).
    pub seed: u64,
}

/// Counters of an [`Impair`] wrapper.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImpairStats {
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Received packets passed on.
    pub rx_passed: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
    /// Sent packets passed on.
    pub tx_passed: u64,
}

/// Decides whether a received IP packet is dropped (`true`), called once for
/// every received packet, in order, before the random loss; see
/// [`Impair::with_rx_filter`].
pub type RxFilter = Box<dyn FnMut(&[u8]) -> bool + Send>;

/// Wraps a device and drops packets at random, seeded, and received packets
/// an optional [`RxFilter`] picks.
///
/// ```
/// use utcp_runtime::device::impair::{Impair, ImpairConfig};
/// use utcp_runtime::sim::SimNetwork;
/// let net = SimNetwork::new(1);
/// let dev = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
/// let lossy = Impair::new(dev, ImpairConfig { rx_loss: 0.05, tx_loss: 0.05, seed: 9 });
/// assert_eq!(lossy.stats().rx_dropped, 0);
/// ```
pub struct Impair<D> {
    inner: D,
    cfg: ImpairConfig,
    rx_rng: Mutex<ChaCha8Rng>,
    tx_rng: Mutex<ChaCha8Rng>,
    rx_filter: Mutex<Option<RxFilter>>,
    rx_dropped: AtomicU64,
    rx_passed: AtomicU64,
    tx_dropped: AtomicU64,
    tx_passed: AtomicU64,
}

impl<D> Impair<D> {
    /// Wraps `inner`.
    pub fn new(inner: D, cfg: ImpairConfig) -> Self {
        Impair {
            inner,
            rx_rng: Mutex::new(ChaCha8Rng::seed_from_u64(cfg.seed)),
            tx_rng: Mutex::new(ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed_7a11)),
            cfg,
            rx_filter: Mutex::new(None),
            rx_dropped: AtomicU64::new(0),
            rx_passed: AtomicU64::new(0),
            tx_dropped: AtomicU64::new(0),
            tx_passed: AtomicU64::new(0),
        }
    }

    /// Also drops every received packet `filter` returns `true` for (a
    /// scripted drop: one chosen packet, by index or by content). The filter
    /// sees each received IP packet once, in arrival order, before the random
    /// loss; its drops count in [`ImpairStats::rx_dropped`]. With receive
    /// offloads on a packet may be a GRO super-segment.
    ///
    /// ```
    /// use utcp_runtime::device::impair::{Impair, ImpairConfig, nth_tcp_data_segment};
    /// use utcp_runtime::sim::SimNetwork;
    /// let net = SimNetwork::new(1);
    /// let dev = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// // Drop the 100th TCP segment with payload the stack would receive.
    /// let one_drop = Impair::new(dev, ImpairConfig::default())
    ///     .with_rx_filter(nth_tcp_data_segment(100));
    /// ```
    pub fn with_rx_filter(self, filter: impl FnMut(&[u8]) -> bool + Send + 'static) -> Self {
        *self.rx_filter.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(filter));
        self
    }

    /// The counters so far.
    pub fn stats(&self) -> ImpairStats {
        ImpairStats {
            rx_dropped: self.rx_dropped.load(Ordering::Relaxed),
            rx_passed: self.rx_passed.load(Ordering::Relaxed),
            tx_dropped: self.tx_dropped.load(Ordering::Relaxed),
            tx_passed: self.tx_passed.load(Ordering::Relaxed),
        }
    }

    /// The wrapped device.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D: Device> Device for Impair<D> {
    fn medium(&self) -> Medium {
        self.inner.medium()
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn capabilities(&self) -> super::Capabilities {
        self.inner.capabilities()
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        out: &mut Vec<RxPacket>,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            let start = out.len();
            let n = match self.inner.poll_recv(cx, out, max) {
                Poll::Ready(Ok(n)) => n,
                other => return other,
            };
            let mut rng = self.rx_rng.lock().unwrap_or_else(|e| e.into_inner());
            let mut filter = self.rx_filter.lock().unwrap_or_else(|e| e.into_inner());
            // Keep the survivors in place (one pass, no shifting per drop).
            let loss = self.cfg.rx_loss.clamp(0.0, 1.0);
            let mut kept = 0;
            for i in start..out.len() {
                let picked = filter.as_mut().is_some_and(|f| f(&out[i].data));
                if picked || (loss > 0.0 && rng.gen_bool(loss)) {
                    self.rx_dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    out.swap(start + kept, i);
                    kept += 1;
                }
            }
            out.truncate(start + kept);
            self.rx_passed.fetch_add(kept as u64, Ordering::Relaxed);
            // Every packet of a batch lost: poll again so the waker is registered.
            if kept > 0 || n == 0 {
                return Poll::Ready(Ok(kept));
            }
        }
    }

    fn close(&self) {
        self.inner.close();
    }

    fn lookup_host(&self, name: &str) -> Option<Vec<std::net::IpAddr>> {
        self.inner.lookup_host(name)
    }

    fn send(&self, packets: &[TxPacket<'_>]) -> io::Result<()> {
        if self.cfg.tx_loss <= 0.0 {
            self.tx_passed
                .fetch_add(packets.len() as u64, Ordering::Relaxed);
            return self.inner.send(packets);
        }
        let mut keep = [TxPacket {
            header: &[],
            payload: &[],
            meta: Default::default(),
        }; 32];
        for chunk in packets.chunks(32) {
            let mut n = 0;
            {
                let mut rng = self.tx_rng.lock().unwrap_or_else(|e| e.into_inner());
                for p in chunk {
                    if rng.gen_bool(self.cfg.tx_loss.clamp(0.0, 1.0)) {
                        self.tx_dropped.fetch_add(1, Ordering::Relaxed);
                    } else {
                        keep[n] = *p;
                        n += 1;
                    }
                }
            }
            self.tx_passed.fetch_add(n as u64, Ordering::Relaxed);
            if n > 0 {
                self.inner.send(&keep[..n])?;
            }
        }
        Ok(())
    }
}

/// An [`RxFilter`] that picks exactly one packet: the `n`th (1-based) TCP
/// segment carrying payload (IPv4 or IPv6 without extension headers, in any
/// direction, whatever its flags). Retransmissions count as new segments, so
/// the one it drops is recovered by the next copy.
pub fn nth_tcp_data_segment(n: u64) -> impl FnMut(&[u8]) -> bool + Send + 'static {
    let mut seen = 0u64;
    move |packet| {
        if tcp_payload_len(packet).is_some_and(|len| len > 0) {
            seen += 1;
            seen == n
        } else {
            false
        }
    }
}

/// The TCP payload length of an IP packet, or `None` if it is not TCP (or
/// too short to tell).
pub fn tcp_payload_len(packet: &[u8]) -> Option<usize> {
    let (l4, total) = match packet.first()? >> 4 {
        4 => {
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            if packet.len() < 20 || packet[9] != 6 {
                return None;
            }
            let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            (ihl, total.min(packet.len()))
        }
        6 => {
            if packet.len() < 40 || packet[6] != 6 {
                return None;
            }
            let payload = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
            (40, (40 + payload).min(packet.len()))
        }
        _ => return None,
    };
    let doff = usize::from(packet.get(l4 + 12)? >> 4) * 4;
    total.checked_sub(l4 + doff)
}

impl<D: DeviceAddrs> DeviceAddrs for Impair<D> {
    fn addrs(&self) -> &[IpAddr] {
        self.inner.addrs()
    }
}

impl<D: Device> Device for std::sync::Arc<D> {
    fn medium(&self) -> Medium {
        (**self).medium()
    }
    fn mtu(&self) -> usize {
        (**self).mtu()
    }
    fn capabilities(&self) -> super::Capabilities {
        (**self).capabilities()
    }
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        out: &mut Vec<RxPacket>,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        (**self).poll_recv(cx, out, max)
    }
    fn send(&self, packets: &[TxPacket<'_>]) -> io::Result<()> {
        (**self).send(packets)
    }
    fn close(&self) {
        (**self).close()
    }
    fn lookup_host(&self, name: &str) -> Option<Vec<std::net::IpAddr>> {
        (**self).lookup_host(name)
    }
}

impl<D: DeviceAddrs> DeviceAddrs for std::sync::Arc<D> {
    fn addrs(&self) -> &[IpAddr] {
        (**self).addrs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP packet with a 20-byte TCP header and `payload` bytes.
    fn v4_tcp(payload: usize) -> Vec<u8> {
        let total = 40 + payload;
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[9] = 6;
        p[32] = 5 << 4;
        p
    }

    #[test]
    fn nth_tcp_data_segment_picks_exactly_the_nth_with_payload() {
        let mut f = nth_tcp_data_segment(2);
        let picks: Vec<bool> = [0, 100, 0, 100, 100, 0]
            .iter()
            .map(|&n| f(&v4_tcp(n)))
            .collect();
        assert_eq!(picks, [false, false, false, true, false, false]);
        assert_eq!(tcp_payload_len(&v4_tcp(7)), Some(7));
        assert_eq!(tcp_payload_len(&[0x45, 0, 0]), None);
    }
}
