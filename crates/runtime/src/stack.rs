//! The stack: one device, one endpoint, the device task that feeds received
//! segments to connection inboxes and drives the endpoint's TIME_WAIT timer
//! queue, and one task per connection (until TIME_WAIT or CLOSED).

use crate::clock::Clock;
use crate::conn::{ConnRef, Shared};
use crate::conn_task;
use crate::device::{Device, RxPacket};
use crate::listener::{ListenerRef, ListenerShared, ListenerState};
use crate::rmem::Inbound;
use crate::verdict::{Ask, SynInfo, Verdict};
use bytes::BytesMut;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};
use utcp_proto::wire;
use utcp_proto::{
    ConnHandle, Connection, Endpoint, EndpointConfig, ListenerId, Route, Segment, State, TimeWait,
    TimeWaitId,
};

/// Stack settings.
#[derive(Clone, Debug)]
pub struct StackConfig {
    /// Endpoint and per-connection settings. `conn.mss` is set from
    /// [`mss_limit`](Self::mss_limit) and `conn.mtu` from the device, read
    /// again at every connect and accept.
    pub endpoint: EndpointConfig,
    /// Packets the device task takes per batch (DESIGN: at most 64).
    pub batch: usize,
    /// Segments each connection's inbox holds; at least the batch size and
    /// the receive window in segments.
    pub inbox: usize,
    /// Default listen backlog: the accept queue's bound (established
    /// connections not accepted yet). Default 1024, as tokio's
    /// `TcpListener::bind`; half-open connections have their own bound,
    /// `endpoint.syn_queue`.
    pub backlog: usize,
    /// Seed for the endpoint secret (ISNs, ports); `None` draws one from the OS.
    pub seed: Option<u64>,
    /// Cap on the MSS; by default the MSS is the device MTU minus the IP and
    /// TCP headers, per connection by its family (40 bytes for IPv4, 60 for
    /// IPv6).
    pub mss_limit: Option<u16>,
    /// Receive memory of every connection together (payload, copy room,
    /// out-of-order buffers, segments waiting in inboxes, and the device
    /// buffers these keep alive) above which windows stop growing,
    /// out-of-order data is dropped first and referenced device buffers are
    /// copied out so their read arenas can be freed (Linux's `tcp_mem`
    /// pressure and `tcp_collapse`). Device buffers are counted as the
    /// device measures them, every read arena chunk that received packets
    /// keep alive in full however little of it is still referenced (the
    /// chunks the device is filling are its own and not counted; TUN and
    /// raw devices, [`Device::rx_memory`]), or else by each packet's true
    /// size ([`RxPacket::truesize`]). Default 96 MiB.
    pub rcv_memory_pressure: usize,
    /// Receive memory above which new data is dropped and counted
    /// ([`StackStats::rcv_memory_drops`]; Linux's `tcp_mem` limit). Default
    /// 128 MiB.
    pub rcv_memory_limit: usize,
    /// Room, in packets, of the queue that receives every IP packet that is
    /// not TCP (UDP, ICMP, other protocols: [`Stack::take_ip_receiver`]);
    /// 0 (the default): there is no queue, and they are dropped and
    /// counted ([`StackStats::rx_non_tcp_dropped`]). A full queue drops
    /// and counts too; the device task never waits for it.
    pub non_tcp_queue: usize,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            endpoint: EndpointConfig::default(),
            batch: 64,
            inbox: 256,
            backlog: 1024,
            seed: None,
            mss_limit: None,
            rcv_memory_pressure: 96 << 20,
            rcv_memory_limit: 128 << 20,
            non_tcp_queue: 0,
        }
    }
}

/// Counters of the device task.
#[derive(Debug, Default)]
pub struct StackCounters {
    /// Packets received from the device.
    pub rx_packets: AtomicU64,
    /// TCP packets that failed to parse (bad checksum, truncated …), and
    /// packets that are not IP.
    pub rx_malformed: AtomicU64,
    /// Packets that are not TCP handed to the non-TCP queue.
    pub rx_non_tcp: AtomicU64,
    /// Packets that are not TCP dropped: no queue, or a full one.
    pub rx_non_tcp_dropped: AtomicU64,
    /// ICMP errors handed to the connection they are about.
    pub rx_icmp: AtomicU64,
    /// Segments dropped because a connection's inbox was full.
    pub inbox_drops: AtomicU64,
    /// SYNs dropped because the listener's accept queue (its backlog) was
    /// full.
    pub backlog_drops: AtomicU64,
    /// RSTs sent for segments no connection wanted.
    pub resets_sent: AtomicU64,
    /// Packets the device took (a failed device call counts in
    /// `tx_errors` instead).
    pub tx_packets: AtomicU64,
    /// Packets of device sends that failed.
    pub tx_errors: AtomicU64,
    /// Of `rx_malformed`, TCP packets with a bad checksum.
    pub rx_csum_errors: AtomicU64,
    /// TCP MIB (`crate::observe::TcpMib`): active opens.
    pub active_opens: AtomicU64,
    /// Passive opens.
    pub passive_opens: AtomicU64,
    /// Connections ended from SYN_SENT / SYN_RECEIVED.
    pub attempt_fails: AtomicU64,
    /// Connections ended from ESTABLISHED / CLOSE_WAIT by a reset.
    pub estab_resets: AtomicU64,
    /// Connections in ESTABLISHED or CLOSE_WAIT now.
    pub curr_estab: AtomicU64,
    /// TCP segments received.
    pub in_segs: AtomicU64,
    /// TCP segments sent (wire segments).
    pub out_segs: AtomicU64,
    /// Retransmitted segments of connections that ended.
    pub ended_retrans: AtomicU64,
    /// Segments sent with RST.
    pub out_rsts: AtomicU64,
    /// Passes the connection tasks made (each takes the inbox, runs the
    /// timers, sends and wakes the handles).
    pub task_passes: AtomicU64,
    /// The endpoint's drops by reason.
    pub(crate) drops: crate::observe::DropCounters,
}

/// A snapshot of [`StackCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackStats {
    /// Packets received from the device.
    pub rx_packets: u64,
    /// TCP packets that failed to parse (a bad checksum included), and
    /// packets that are not IP ([`Stack::drops`] tells them apart).
    pub rx_malformed: u64,
    /// Packets that are not TCP handed to the non-TCP queue
    /// ([`Stack::take_ip_receiver`]).
    pub rx_non_tcp: u64,
    /// Packets that are not TCP dropped (no queue, or a full one).
    pub rx_non_tcp_dropped: u64,
    /// ICMP errors handed to the connection they are about (each checks
    /// the quoted sequence number: `Stats::icmp_errors` / `icmp_ignored`).
    pub rx_icmp: u64,
    /// Segments dropped on a full inbox.
    pub inbox_drops: u64,
    /// SYNs dropped on a full accept queue (backlog).
    pub backlog_drops: u64,
    /// RSTs sent by the endpoint.
    pub resets_sent: u64,
    /// Packets the device took.
    pub tx_packets: u64,
    /// Packets of device sends that failed.
    pub tx_errors: u64,
    /// Of `rx_malformed`, TCP packets with a bad checksum.
    pub rx_csum_errors: u64,
    /// Live connections (TIME_WAIT records included).
    pub connections: usize,
    /// TIME_WAIT records.
    pub time_wait: usize,
    /// Connections that skipped TIME_WAIT because `max_time_wait` records
    /// existed (Linux's `TCPTimeWaitOverflow`).
    pub time_wait_overflows: u64,
    /// ACKs that TIME_WAIT records' rate limit held back.
    pub time_wait_acks_rate_limited: u64,
    /// Live tasks (device task and connection tasks).
    pub tasks: usize,
    /// Passes the connection tasks made: one answers each wake (a segment
    /// batch, a user call, a timer), so a count well above the wakes'
    /// shows a task doing idle passes.
    pub task_passes: u64,
    /// The listeners' SYN and accept queues, SYN cookies and the
    /// connection limit.
    pub listen: utcp_proto::ListenStats,
    /// Receive memory held now, every connection and inbox together, with
    /// the device buffers they keep alive (by the device's own count when it
    /// has one, [`rcv_device_memory`](Self::rcv_device_memory)): what the
    /// thresholds of [`StackConfig::rcv_memory_pressure`] see.
    pub rcv_memory: usize,
    /// The most receive memory held at once.
    pub rcv_memory_peak: usize,
    /// Out-of-order bytes dropped under memory pressure (pruned or refused).
    pub rcv_ooo_pruned: u64,
    /// New bytes dropped over [`StackConfig::rcv_memory_limit`].
    pub rcv_memory_drops: u64,
    /// The device's read buffers alive now, by its own count
    /// ([`Device::rx_memory`]; 0 for a device without one). What received
    /// packets keep alive beyond the chunks the device is filling
    /// (`RxMemory::held`) is part of [`rcv_memory`](Self::rcv_memory).
    pub rcv_device_memory: usize,
    /// The most device read buffers alive at once, by the device's count.
    pub rcv_device_memory_peak: usize,
    /// Bytes copied out of device buffers into the connections' own
    /// (collapsed) because a connection's buffers outgrew twice its receive
    /// buffer or the stack was under memory pressure.
    pub rcv_collapsed: u64,
}

pub(crate) struct ConnEntry {
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct StackInner {
    pub(crate) device: Arc<dyn Device>,
    pub(crate) clock: Clock,
    endpoint: Mutex<Endpoint<ConnEntry>>,
    /// The endpoint's counts as its lock last let go of them, for
    /// `Stack::stats`, which so never takes the endpoint lock.
    ep_view: Mutex<EpView>,
    /// The stack's addresses (fixed at creation).
    addrs: Vec<IpAddr>,
    /// Established connections by (local, remote): the device task hands
    /// their segments over without the endpoint lock. A connection joins
    /// once ESTABLISHED (until then the endpoint's accept-queue
    /// bookkeeping must see its segments) and leaves before its inbox
    /// closes (so no segment is pushed into a closed inbox).
    fast: std::sync::RwLock<HashMap<(SocketAddr, SocketAddr), Arc<Shared>>>,
    listeners: Mutex<HashMap<ListenerId, Arc<ListenerShared>>>,
    pub(crate) cfg: StackConfig,
    pub(crate) counters: StackCounters,
    /// Receive memory, stack-wide (`tcp_mem`).
    pub(crate) rmem: crate::rmem::RecvMemory,
    /// Live tasks; `tasks_done` is notified when it reaches zero.
    tasks: AtomicUsize,
    tasks_done: Notify,
    /// Where packets that are not TCP go (`StackConfig::non_tcp_queue`).
    non_tcp: Option<mpsc::Sender<bytes::Bytes>>,
    /// Its receiving end, until the application takes it.
    non_tcp_rx: Mutex<Option<mpsc::Receiver<bytes::Bytes>>>,
    /// Notified when a connection's task ends (closed, reset, or handed to
    /// TIME_WAIT): `Stack::shutdown`'s grace waits on it.
    pub(crate) conn_ended: Notify,
    /// `true` once every task must stop at once.
    pub(crate) stop: watch::Sender<bool>,
    /// The same, for connection tasks (read without a lock; each is kicked
    /// when it is set).
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    /// Streams still held by the application whose connection is a
    /// TIME_WAIT record: told when the record ends. Lock order: the
    /// endpoint, then this.
    tw_held: Mutex<HashMap<TimeWaitId, Weak<Shared>>>,
    /// Wakes the device task when a TIME_WAIT record joined (the timer
    /// queue it sleeps on may have a new earliest deadline).
    pub(crate) tw_timer: Notify,
    /// The runtime the stack started on: connection tasks are spawned there.
    rt: tokio::runtime::Handle,
    /// Set once the device failed: why (new connects and listens fail).
    device_error: Mutex<Option<String>>,
}

/// What [`Stack::stats`] shows of the endpoint.
#[derive(Clone, Copy, Debug, Default)]
struct EpView {
    connections: usize,
    time_wait: usize,
    tw: utcp_proto::TimeWaitStats,
    listen: utcp_proto::ListenStats,
}

/// The endpoint, locked; letting go publishes its counts ([`EpView`]).
pub(crate) struct EpGuard<'a> {
    ep: MutexGuard<'a, Endpoint<ConnEntry>>,
    view: &'a Mutex<EpView>,
}

impl std::ops::Deref for EpGuard<'_> {
    type Target = Endpoint<ConnEntry>;
    fn deref(&self) -> &Self::Target {
        &self.ep
    }
}

impl std::ops::DerefMut for EpGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.ep
    }
}

impl Drop for EpGuard<'_> {
    fn drop(&mut self) {
        let v = EpView {
            connections: self.ep.connection_count(),
            time_wait: self.ep.time_wait_count(),
            tw: self.ep.time_wait_stats(),
            listen: self.ep.listen_stats(),
        };
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }
}

impl StackInner {
    pub(crate) fn endpoint(&self) -> EpGuard<'_> {
        EpGuard {
            ep: self.endpoint.lock().unwrap_or_else(|e| e.into_inner()),
            view: &self.ep_view,
        }
    }

    fn fast(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<(SocketAddr, SocketAddr), Arc<Shared>>> {
        self.fast.read().unwrap_or_else(|e| e.into_inner())
    }

    /// An established connection joins the fast table.
    pub(crate) fn fast_insert(&self, shared: &Arc<Shared>) {
        let mut t = self.fast.write().unwrap_or_else(|e| e.into_inner());
        t.insert((shared.local, shared.remote), shared.clone());
    }

    /// A connection leaves the fast table (if it is the one there): after
    /// this no device batch pushes into its inbox.
    pub(crate) fn fast_remove(&self, shared: &Shared) {
        let mut t = self.fast.write().unwrap_or_else(|e| e.into_inner());
        let key = (shared.local, shared.remote);
        if t.get(&key).is_some_and(|s| std::ptr::eq(&**s, shared)) {
            t.remove(&key);
        }
    }

    pub(crate) fn task_started(&self) {
        self.tasks.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn task_ended(&self) {
        if self.tasks.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.tasks_done.notify_waiters();
        }
    }

    fn tw_held(&self) -> MutexGuard<'_, HashMap<TimeWaitId, Weak<Shared>>> {
        self.tw_held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection task's last step on entering TIME_WAIT: the record
    /// joins the endpoint's table (the connection's slot and inbox sender
    /// go), segments still in the inbox are routed again (to the record, or
    /// to a connection it reopened), and the connection is retired — its
    /// buffers freed; a stream still held keeps only its unread bytes and
    /// reads TIME_WAIT, then CLOSED when the record ends.
    pub(crate) fn enter_time_wait(
        self: &Arc<Self>,
        handle: ConnHandle,
        shared: &Arc<Shared>,
        rec: TimeWait,
        mut leftover: crate::inbox::Batch,
    ) {
        let now = self.clock.now();
        let (local, remote) = (rec.local, rec.remote);
        self.fast_remove(shared);
        let mut ep = self.endpoint();
        let held = !shared.lock().released;
        let (id, entry) = ep.enter_time_wait(handle, rec, held);
        drop(entry);
        {
            // Under the endpoint lock, so the record's end (drained under it
            // too) is always told after this.
            let mut g = shared.lock();
            g.conn.retire();
            g.tw = id;
            if id.is_some() {
                g.final_state = Some(State::TimeWait);
            } else {
                // Over `max_time_wait`: no record, CLOSED at once.
                g.final_state = Some(State::Closed);
                g.push_history(State::Closed);
            }
            g.wake_all();
        }
        if held && let Some(id) = id {
            self.tw_held().insert(id, Arc::downgrade(shared));
        }
        shared.inbox.close_into(&mut leftover);
        let mut later = Later::default();
        while let Some(inb) = leftover.pop() {
            self.rmem.sub(self.rmem.inbox_charge(&inb));
            let ips = (remote.ip(), local.ip());
            self.route(&mut ep, now, ips, inb.seg, inb.truesize, &mut later);
        }
        self.flush_endpoint(ep);
        self.start_incoming(&mut later.starts);
        self.decide_asks(&mut later.asks);
        self.tw_timer.notify_one();
    }

    /// Routes one parsed segment through the endpoint: to a connection's
    /// inbox (`try_send`, never awaiting), a new connection's task, or the
    /// endpoint's own answer (an RST, a TIME_WAIT record's ACK).
    fn route(
        self: &Arc<Self>,
        ep: &mut Endpoint<ConnEntry>,
        now: utcp_proto::Instant,
        (src, dst): (IpAddr, IpAddr),
        seg: Segment,
        truesize: usize,
        later: &mut Later,
    ) {
        match ep.handle(now, src, dst, &seg.repr, seg.payload.len()) {
            Route::Connection(h) => {
                if let Some(entry) = ep.get(h) {
                    self.to_inbox(&entry.shared, seg, truesize);
                }
            }
            Route::Incoming {
                listener,
                handle,
                conn,
            } => {
                // From a SYN cookie: established by the segment's ACK; its
                // data or FIN is the connection's to take.
                let redeliver = conn.state() == State::Established
                    && (!seg.payload.is_empty() || seg.repr.flags.fin());
                self.incoming(ep, listener, handle, *conn, &mut later.starts);
                if redeliver && let Some(entry) = ep.get(handle) {
                    self.to_inbox(&entry.shared, seg, truesize);
                }
            }
            Route::Ask { listener, id, syn } => {
                // Put to the listener's hook once the batch let go of the
                // endpoint lock (`decide_asks`).
                later.asks.push(Ask { listener, id, syn });
            }
            Route::Drop(reason) => {
                if reason == utcp_proto::DropReason::BacklogFull {
                    self.counters.backlog_drops.fetch_add(1, Ordering::Relaxed);
                }
                self.counters.drops.add(reason);
            }
            Route::Reset | Route::SynCookie | Route::Deferred | Route::TimeWait(_) => {}
        }
    }

    /// A new connection from a listener: registered now (under the endpoint
    /// lock); its listener's options and its task come in `start_incoming`,
    /// once the lock is let go.
    pub(crate) fn incoming(
        &self,
        ep: &mut Endpoint<ConnEntry>,
        listener: ListenerId,
        handle: ConnHandle,
        conn: Connection,
        starts: &mut Vec<Start>,
    ) {
        let shared = self.attach_conn(ep, handle, conn, true);
        starts.push(Start { shared, listener });
    }

    /// Starts the connections `incoming` registered, outside the endpoint
    /// lock: each gets its listener's socket options (before its SYN-ACK:
    /// the task has not run yet) and its task. One whose listener closed in
    /// between is reset, as `close_listener` resets those it never accepted.
    pub(crate) fn start_incoming(self: &Arc<Self>, starts: &mut Vec<Start>) {
        if starts.is_empty() {
            return;
        }
        let now = self.clock.now();
        for Start { shared, listener } in starts.drain(..) {
            let l = self.listener(listener);
            {
                let mut g = shared.lock();
                match &l {
                    Some(l) => l.configure(now, &mut g.conn),
                    None => {
                        g.released = true;
                        g.conn.abort(now);
                    }
                }
            }
            self.start_conn(shared, l);
        }
    }

    /// Hands a segment to a connection's inbox (`try_send`, never
    /// awaiting), charging it to the receive memory while it waits; a full
    /// inbox drops it, as a NIC ring does. Over the stack's receive-memory
    /// limit its data (and a FIN after it) is dropped here and counted,
    /// and the rest (the ACK, the window) still reaches the connection.
    fn to_inbox(&self, shared: &Shared, mut seg: Segment, truesize: usize) {
        if !seg.payload.is_empty() && self.rmem.level() == utcp_proto::MemoryPressure::Limit {
            self.rmem
                .drops
                .fetch_add(seg.payload.len() as u64, Ordering::Relaxed);
            seg.payload = bytes::Bytes::new();
            seg.repr.flags = utcp_proto::wire::TcpFlags(
                seg.repr.flags.0
                    & !(utcp_proto::wire::TcpFlags::FIN.0 | utcp_proto::wire::TcpFlags::PSH.0),
            );
        }
        // Charged before it is queued, so the connection's uncharge on
        // taking it never comes first.
        let inb = Inbound { seg, truesize };
        let charge = self.rmem.inbox_charge(&inb);
        self.rmem.add(charge);
        match shared.inbox.push(inb) {
            Ok(true) => shared.notify.notify_one(),
            Ok(false) => {}
            Err(_) => {
                self.rmem.sub(charge);
                self.counters.inbox_drops.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends the endpoint's replies and tells held streams whose TIME_WAIT
    /// record ended; releases the endpoint lock on the way.
    pub(crate) fn flush_endpoint(&self, mut ep: EpGuard<'_>) {
        let mut ended = Vec::new();
        while let Some((id, _)) = ep.poll_time_wait_end() {
            if let Some(w) = self.tw_held().remove(&id) {
                ended.push(w);
            }
        }
        let mut buf = BytesMut::new();
        let mut txs = Vec::new();
        while let Some(t) = ep.poll_transmit(&mut buf) {
            if t.repr.flags.rst() {
                self.counters.resets_sent.fetch_add(1, Ordering::Relaxed);
            }
            txs.push(Tx::new(buf.len(), t));
        }
        drop(ep);
        if !txs.is_empty() {
            self.send_batch(&buf, &txs);
        }
        for s in ended.iter().filter_map(Weak::upgrade) {
            let mut g = s.lock();
            g.final_state = Some(State::Closed);
            g.push_history(State::Closed);
            g.wake_all();
        }
    }

    /// The application let go of a stream whose connection is a TIME_WAIT
    /// record.
    pub(crate) fn release_time_wait(&self, id: TimeWaitId) {
        let mut ep = self.endpoint();
        ep.release_time_wait(id);
        self.tw_held().remove(&id);
    }

    /// Ends every TIME_WAIT record (the stack stops) and tells held streams.
    fn clear_time_wait(&self) {
        let mut ep = self.endpoint();
        ep.clear_time_wait();
        self.flush_endpoint(ep);
    }

    pub(crate) fn listener(&self, id: ListenerId) -> Option<Arc<ListenerShared>> {
        self.listeners().get(&id).cloned()
    }

    /// Lock order: the endpoint, then the listeners (taken under the
    /// endpoint lock only to register one).
    fn listeners(&self) -> MutexGuard<'_, HashMap<ListenerId, Arc<ListenerShared>>> {
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the stack was stopped (shut down, or its last handle dropped).
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Stops every task. `send_replace`, not `send`: the value must stick
    /// even when no task has subscribed yet (or none is left), so that a task
    /// that starts later stops too.
    fn stop_tasks(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.send_replace(true);
        // A connection attached after this sees the flag at its first pass.
        for s in self.all_conns() {
            s.notify.notify_one();
        }
    }

    /// Sends every transmit whose headers are in `buf`, in one device call per
    /// 32 packets.
    pub(crate) fn send_batch(&self, buf: &BytesMut, txs: &[Tx]) {
        use crate::device::{Offload, TxPacket};
        const EMPTY: TxPacket<'static> = TxPacket {
            header: &[],
            payload: &[],
            payload_tail: &[],
            meta: Offload {
                gso_size: None,
                csum_partial: None,
                csum_verified: false,
            },
        };
        for chunk in txs.chunks(32) {
            let mut arr = [EMPTY; 32];
            for (slot, tx) in arr.iter_mut().zip(chunk) {
                *slot = TxPacket {
                    header: &buf[tx.start..tx.start + tx.len],
                    payload: &tx.payload,
                    payload_tail: &tx.payload_tail,
                    meta: tx.meta,
                };
            }
            if let Err(e) = self.device.send(&arr[..chunk.len()]) {
                tracing::debug!(error = %e, "device send failed");
                self.counters
                    .tx_errors
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                continue;
            }
            let (mut segs, mut rsts) = (0u64, 0u64);
            for (tx, p) in chunk.iter().zip(&arr) {
                segs += tx.wire_segments() as u64;
                rsts += u64::from(is_rst(p.header));
            }
            self.counters
                .tx_packets
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            self.counters.out_segs.fetch_add(segs, Ordering::Relaxed);
            if rsts > 0 {
                self.counters.out_rsts.fetch_add(rsts, Ordering::Relaxed);
            }
        }
    }

    /// Registers a connection with the endpoint (its slot's entry); its
    /// task starts with `start_conn`, after the endpoint lock is let go.
    /// A passive one is held by nobody until accepted.
    pub(crate) fn attach_conn(
        &self,
        ep: &mut Endpoint<ConnEntry>,
        handle: ConnHandle,
        conn: Connection,
        passive: bool,
    ) -> Arc<Shared> {
        let opens = if conn.is_passive() {
            &self.counters.passive_opens
        } else {
            &self.counters.active_opens
        };
        opens.fetch_add(1, Ordering::Relaxed);
        // DESIGN: at least max(batch size, receive window / MSS) segments;
        // the window auto-tunes up to `recv_buffer_max` (RFC 7323 scaling).
        let mss = ep.config().mss_for(false).max(1);
        let c = &self.cfg.endpoint.conn;
        let window_segments = c.recv_buffer.max(c.recv_buffer_max) / usize::from(mss) + 1;
        let cap = self.cfg.inbox.max(self.cfg.batch).max(window_segments);
        let shared = Shared::new(conn, handle, cap);
        if passive {
            // Not accepted yet: nobody holds a handle.
            shared.lock().released = false;
        }
        ep.attach(
            handle,
            ConnEntry {
                shared: shared.clone(),
            },
        );
        // Counted from here, so `shutdown` waits for a task about to start.
        self.task_started();
        shared
    }

    /// Spawns the task of a connection `attach_conn` registered, and wakes
    /// it for its first segment.
    pub(crate) fn start_conn(
        self: &Arc<Self>,
        shared: Arc<Shared>,
        listener: Option<Arc<ListenerShared>>,
    ) {
        // On the stack's runtime: a deferred SYN may be completed from any
        // thread. Should the task panic (a bug) or be dropped unpolled (its
        // runtime shutting down), the driver's drop still frees the 4-tuple
        // and the task count, so `shutdown` returns and the port is reusable.
        self.rt
            .spawn(conn_task::run(self.clone(), shared.clone(), listener));
        shared.notify.notify_one();
    }

    pub(crate) fn close_listener(&self, l: &Arc<ListenerShared>) {
        // No SYN is routed to it once the endpoint forgets it; a connection
        // routed to it before and started after it left the table is reset
        // (`start_incoming`), as are those queued here.
        self.endpoint().unlisten(l.id);
        self.listeners().remove(&l.id);
        let queued: VecDeque<Arc<Shared>> = {
            let mut g = l.state.lock().unwrap_or_else(|e| e.into_inner());
            g.closed = true;
            g.wake_all();
            std::mem::take(&mut g.queue)
        };
        let now = self.clock.now();
        for s in queued {
            let mut g = s.lock();
            g.released = true;
            g.conn.abort(now);
            drop(g);
            s.notify.notify_one();
        }
    }
}

/// Ends the stack's count of a live task when dropped.
struct TaskEnd(Arc<StackInner>);

impl Drop for TaskEnd {
    fn drop(&mut self) {
        self.0.task_ended();
    }
}

/// A user-space TCP/IP stack on one device. Cheap to clone; dropping the last
/// clone (streams and listeners hold one) resets every connection and stops
/// the stack's tasks.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use utcp_runtime::{Stack, StackConfig, sim::{SimNetwork, LinkConfig}};
/// let net = SimNetwork::new(1);
/// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
/// let b = net.add_host("b", &["10.0.0.2".parse().unwrap()]);
/// net.link(&a, &b, LinkConfig::default());
/// let stack = Stack::new(a, StackConfig::default());
/// assert_eq!(stack.stats().connections, 0);
/// # }
/// ```
#[derive(Clone)]
pub struct Stack {
    pub(crate) inner: Arc<StackInner>,
    _user: Arc<UserGuard>,
}

struct UserGuard {
    inner: Arc<StackInner>,
}

impl Drop for UserGuard {
    fn drop(&mut self) {
        // The last user handle is gone: reset everything, stop every task,
        // and end the accepts of listener handles that outlive it.
        self.inner.close_listeners();
        self.inner.abort_all();
        self.inner.stop_tasks();
        self.inner.clear_time_wait();
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("addrs", &self.inner.addrs)
            .finish()
    }
}

impl Stack {
    /// Starts a stack on `device` (the addresses are the device's own). Must be
    /// called within a Tokio runtime.
    pub fn new<D: Device + crate::device::DeviceAddrs>(device: D, cfg: StackConfig) -> Stack {
        let addrs = device.addrs().to_vec();
        Stack::with_addrs(device, addrs, cfg)
    }

    /// Starts a stack on `device` owning `addrs`.
    pub fn with_addrs<D: Device>(device: D, addrs: Vec<IpAddr>, mut cfg: StackConfig) -> Stack {
        if let Err(e) = cfg.validate() {
            tracing::warn!(error = %e, "invalid StackConfig (Stack::try_new rejects it)");
        }
        // The MTU is kept in the config and each connection derives its MSS
        // from its own family (MTU − 40 or − 60).
        cfg.endpoint.conn.mtu = device.mtu();
        cfg.endpoint.conn.mss = cfg.mss_limit.unwrap_or(u16::MAX);
        // What the device does for outgoing segments (DESIGN: the stack
        // sizes its segments per device): partial checksums, super-segments.
        let caps = device.capabilities();
        cfg.endpoint.conn.tx_offload = utcp_proto::TxOffload {
            partial_checksum: caps.tx_checksum,
            max_packet: if caps.tx_checksum {
                caps.max_gso_packet.unwrap_or(0)
            } else {
                0
            },
            // Every device takes a payload in two pieces (TxPacket).
            scatter_gather: true,
        };
        tracing::debug!(offload = ?cfg.endpoint.conn.tx_offload, "transmit offloads");
        let seed = cfg.seed.unwrap_or_else(os_seed);
        let mut secret = [0u8; 16];
        secret[..8].copy_from_slice(&seed.to_le_bytes());
        secret[8..].copy_from_slice(
            &seed
                .rotate_left(29)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .to_le_bytes(),
        );
        cfg.endpoint.secret = secret;
        let (stop, _) = watch::channel(false);
        let rx_memory = device.rx_memory();
        let (non_tcp, non_tcp_rx) = match cfg.non_tcp_queue {
            0 => (None, None),
            n => {
                let (tx, rx) = mpsc::channel(n);
                (Some(tx), Some(rx))
            }
        };
        let inner = Arc::new(StackInner {
            device: Arc::new(device),
            clock: Clock::new(),
            endpoint: Mutex::new(Endpoint::new(cfg.endpoint.clone(), addrs.clone())),
            ep_view: Mutex::new(EpView::default()),
            addrs,
            fast: std::sync::RwLock::new(HashMap::new()),
            listeners: Mutex::new(HashMap::new()),
            rmem: crate::rmem::RecvMemory::new(
                cfg.rcv_memory_pressure,
                cfg.rcv_memory_limit,
                rx_memory,
            ),
            cfg,
            counters: StackCounters::default(),
            tasks: AtomicUsize::new(0),
            tasks_done: Notify::new(),
            conn_ended: Notify::new(),
            non_tcp,
            non_tcp_rx: Mutex::new(non_tcp_rx),
            stop,
            stopping: std::sync::atomic::AtomicBool::new(false),
            tw_held: Mutex::new(HashMap::new()),
            tw_timer: Notify::new(),
            rt: tokio::runtime::Handle::current(),
            device_error: Mutex::new(None),
        });
        inner.task_started();
        // Moved into the task, so its count ends with it also when the
        // runtime drops it unfinished (or before its first poll).
        let end = TaskEnd(inner.clone());
        tokio::spawn(async move {
            device_task(&end.0).await;
        });
        Stack {
            _user: Arc::new(UserGuard {
                inner: inner.clone(),
            }),
            inner,
        }
    }

    /// The stack's addresses.
    pub fn local_addrs(&self) -> Vec<IpAddr> {
        self.inner.addrs.clone()
    }

    /// Counters and table sizes.
    pub fn stats(&self) -> StackStats {
        let c = &self.inner.counters;
        let ep = *self.inner.ep_view.lock().unwrap_or_else(|e| e.into_inner());
        let tw = ep.tw;
        StackStats {
            rx_packets: c.rx_packets.load(Ordering::Relaxed),
            rx_malformed: c.rx_malformed.load(Ordering::Relaxed),
            rx_non_tcp: c.rx_non_tcp.load(Ordering::Relaxed),
            rx_non_tcp_dropped: c.rx_non_tcp_dropped.load(Ordering::Relaxed),
            rx_icmp: c.rx_icmp.load(Ordering::Relaxed),
            inbox_drops: c.inbox_drops.load(Ordering::Relaxed),
            backlog_drops: c.backlog_drops.load(Ordering::Relaxed),
            resets_sent: c.resets_sent.load(Ordering::Relaxed),
            tx_packets: c.tx_packets.load(Ordering::Relaxed),
            tx_errors: c.tx_errors.load(Ordering::Relaxed),
            rx_csum_errors: c.rx_csum_errors.load(Ordering::Relaxed),
            connections: ep.connections,
            time_wait: ep.time_wait,
            time_wait_overflows: tw.overflows,
            time_wait_acks_rate_limited: tw.acks_rate_limited,
            tasks: self.inner.tasks.load(Ordering::SeqCst),
            task_passes: c.task_passes.load(Ordering::Relaxed),
            listen: ep.listen,
            rcv_memory: self.inner.rmem.held_and_peak().0,
            rcv_memory_peak: self.inner.rmem.held_and_peak().1,
            rcv_ooo_pruned: self.inner.rmem.ooo_pruned.load(Ordering::Relaxed),
            rcv_memory_drops: self.inner.rmem.drops.load(Ordering::Relaxed),
            rcv_device_memory: self.inner.rmem.device_alive(),
            rcv_device_memory_peak: self.inner.rmem.device_peak(),
            rcv_collapsed: self.inner.rmem.collapsed.load(Ordering::Relaxed),
        }
    }

    /// The receiving end of the non-TCP queue: every IP packet the device
    /// delivered that is not TCP (UDP, ICMP, other protocols), whole, with
    /// complete checksums, in arrival order. `None` when
    /// [`StackConfig::non_tcp_queue`] is 0, or once taken (there is one
    /// receiver). A packet may be a slice of the device's read buffer:
    /// holding many keeps that memory alive.
    ///
    /// ```
    /// use utcp_runtime::{Stack, StackConfig, sim::SimNetwork};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let net = SimNetwork::new(1);
    /// let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
    /// let cfg = StackConfig { non_tcp_queue: 64, ..StackConfig::default() };
    /// let stack = Stack::new(a, cfg);
    /// assert!(stack.take_ip_receiver().is_some());
    /// assert!(stack.take_ip_receiver().is_none(), "one receiver");
    /// # }
    /// ```
    pub fn take_ip_receiver(&self) -> Option<mpsc::Receiver<bytes::Bytes>> {
        self.inner
            .non_tcp_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Sends a complete IP packet (IPv4 or IPv6, checksums the caller's)
    /// out of the device, as a TUN user answers what the non-TCP queue
    /// delivered: a UDP reply, an ICMP message. Never blocks; a full device
    /// queue drops it, as for every packet.
    ///
    /// # Errors
    /// `InvalidInput` for a packet that is not IPv4 / IPv6, whose IP length
    /// field disagrees with its length, or that is larger than the device's
    /// MTU; `NotConnected` once the stack was shut down; the device's error.
    pub fn send_ip(&self, packet: &[u8]) -> io::Result<()> {
        self.inner.check_running()?;
        let bad =
            |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("send_ip: {why}"));
        let stated = match packet.first().map(|b| b >> 4) {
            Some(4) if packet.len() >= 20 => {
                usize::from(u16::from_be_bytes([packet[2], packet[3]]))
            }
            Some(6) if packet.len() >= 40 => {
                40 + usize::from(u16::from_be_bytes([packet[4], packet[5]]))
            }
            _ => return Err(bad("not an IPv4 or IPv6 packet")),
        };
        if stated != packet.len() {
            return Err(bad(&format!(
                "the IP length field says {stated} bytes, the packet has {}",
                packet.len()
            )));
        }
        let mtu = self.inner.device.mtu();
        if packet.len() > mtu {
            return Err(bad(&format!(
                "{} bytes is larger than the device's MTU of {mtu}",
                packet.len()
            )));
        }
        self.inner.device.send(&[crate::device::TxPacket {
            header: packet,
            payload: &[],
            payload_tail: &[],
            meta: crate::device::Offload::default(),
        }])?;
        self.inner
            .counters
            .tx_packets
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Opens a connection to `remote` (active open). The returned handle is
    /// connected once [`ConnRef::poll_connected`] is ready.
    ///
    /// # Errors
    /// `AddrNotAvailable` with no local address of the family or no free port;
    /// `InvalidInput` for port 0; `NotConnected` once the stack was shut down.
    pub fn connect_start(&self, remote: SocketAddr) -> io::Result<ConnRef> {
        let now = self.inner.clock.now();
        let mut ep = self.inner.endpoint();
        self.inner.check_running()?;
        ep.set_mtu(self.inner.device.mtu());
        let (handle, conn) = ep.connect(now, remote, None)?;
        let shared = self.inner.attach_conn(&mut ep, handle, conn, false);
        drop(ep);
        self.inner.start_conn(shared.clone(), None);
        Ok(ConnRef {
            shared,
            stack: self.inner.clone(),
        })
    }

    /// Like [`connect_start`](Self::connect_start) from a chosen local
    /// address and port.
    ///
    /// # Errors
    /// `AddrInUse` when the 4-tuple exists; `AddrNotAvailable` when `local`
    /// is not the stack's; `InvalidInput` for port 0; `NotConnected` once the
    /// stack was shut down.
    pub fn connect_start_from(&self, local: SocketAddr, remote: SocketAddr) -> io::Result<ConnRef> {
        let now = self.inner.clock.now();
        let mut ep = self.inner.endpoint();
        self.inner.check_running()?;
        ep.set_mtu(self.inner.device.mtu());
        let (handle, conn) = ep.connect_from(now, local, remote)?;
        let shared = self.inner.attach_conn(&mut ep, handle, conn, false);
        drop(ep);
        self.inner.start_conn(shared.clone(), None);
        Ok(ConnRef {
            shared,
            stack: self.inner.clone(),
        })
    }

    /// The backlog listeners get when none is given
    /// ([`StackConfig::backlog`]).
    pub fn default_backlog(&self) -> usize {
        self.inner.cfg.backlog
    }

    /// Listens on `addr` with the default backlog.
    ///
    /// # Errors
    /// `AddrInUse` when bound; `AddrNotAvailable` for an address not ours;
    /// `NotConnected` once the stack was shut down.
    pub fn listen(&self, addr: SocketAddr) -> io::Result<ListenerRef> {
        self.listen_with_backlog(addr, self.inner.cfg.backlog)
    }

    /// Listens on `addr` with a backlog: the accept queue's bound
    /// (established connections not yet accepted; connections in
    /// SYN_RECEIVED count toward the SYN queue, `endpoint.syn_queue`).
    ///
    /// # Errors
    /// As [`listen`](Self::listen).
    pub fn listen_with_backlog(&self, addr: SocketAddr, backlog: usize) -> io::Result<ListenerRef> {
        self.register_listener(|ep| ep.listen(addr, backlog), None)
    }

    /// As [`listen`](Self::listen), but `[::]` takes IPv6 connections only
    /// (`IPV6_V6ONLY` on; `listen` is dual-stack).
    ///
    /// # Errors
    /// As [`listen`](Self::listen).
    pub fn listen_v6_only(&self, addr: SocketAddr) -> io::Result<ListenerRef> {
        let backlog = self.inner.cfg.backlog;
        self.register_listener(|ep| ep.listen_v6_only(addr, backlog), None)
    }

    /// Accepts connections to any address and port (for TUN users); each
    /// connection's local address is the original destination.
    ///
    /// # Errors
    /// `AddrInUse` if an accept-any listener exists; `NotConnected` once the
    /// stack was shut down.
    pub fn listen_any(&self, backlog: usize) -> io::Result<ListenerRef> {
        self.register_listener(
            |ep| {
                let id = ep.listen_any(backlog)?;
                Ok((id, SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0)))
            },
            None,
        )
    }

    /// As [`listen_any`](Self::listen_any), but each SYN is put to `hook`
    /// before anything is answered, and its [`Verdict`] decides: accept,
    /// reset, drop, or defer to a [`PendingSyn`](crate::PendingSyn)
    /// decided later (a tun2socks-style proxy connects upstream first).
    /// The hook runs on the stack's device task without a lock held: it
    /// may call into the stack but must not block.
    ///
    /// # Errors
    /// As [`listen_any`](Self::listen_any).
    pub fn listen_any_with(
        &self,
        backlog: usize,
        hook: impl Fn(&SynInfo) -> Verdict + Send + Sync + 'static,
    ) -> io::Result<ListenerRef> {
        self.register_listener(
            |ep| {
                let id = ep.listen_any_deciding(backlog)?;
                Ok((id, SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0)))
            },
            Some(Box::new(hook)),
        )
    }

    /// Listens in the endpoint and registers the listener in one step under
    /// the endpoint lock, so a connection the device task routes to it finds
    /// it when it starts (`start_incoming`); refused once the stack was shut
    /// down.
    pub(crate) fn register_listener(
        &self,
        listen: impl FnOnce(
            &mut Endpoint<ConnEntry>,
        ) -> Result<(ListenerId, SocketAddr), utcp_proto::Error>,
        hook: Option<crate::verdict::SynHook>,
    ) -> io::Result<ListenerRef> {
        let mut ep = self.inner.endpoint();
        let mut listeners = self.inner.listeners();
        // Checked under the listeners lock: `shutdown` closes every listener
        // registered before it stopped the stack.
        self.inner.check_running()?;
        let (id, addr) = listen(&mut ep)?;
        let shared = Arc::new(ListenerShared {
            id,
            addr,
            state: Mutex::new(ListenerState {
                queue: VecDeque::new(),
                wakers: Vec::new(),
                closed: false,
                error: None,
            }),
            opts: Mutex::default(),
            hook,
        });
        listeners.insert(id, shared.clone());
        Ok(ListenerRef {
            shared,
            stack: self.inner.clone(),
        })
    }

    /// Graceful shutdown: stops accepting, sends FIN on every connection,
    /// waits at most `grace` for them to close, then resets the rest and stops
    /// every task (the device task included). Returns when no task is left.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.close_listeners();
        let now = self.inner.clock.now();
        for s in self.inner.all_conns() {
            let mut g = s.lock();
            g.conn.shutdown(now);
            drop(g);
            s.notify.notify_one();
        }
        // `None`: a grace too long to add (`Duration::MAX`) has no deadline.
        let deadline = tokio::time::Instant::now().checked_add(grace);
        loop {
            // Registered before the check, so an end between the two wakes it.
            let ended = self.inner.conn_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let open = self.inner.all_conns().iter().any(|s| {
                let g = s.lock();
                !matches!(
                    g.conn.state(),
                    utcp_proto::State::Closed | utcp_proto::State::TimeWait
                ) && g.final_state.is_none()
            });
            if !open || deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                break;
            }
            match deadline {
                Some(d) => {
                    let _ = tokio::time::timeout_at(d, ended).await;
                }
                None => ended.await,
            }
        }
        self.inner.abort_all();
        // Let connection tasks flush their RSTs, then stop everything.
        tokio::task::yield_now().await;
        self.inner.stop_tasks();
        // A listener bound while this ran is closed too (later binds fail).
        self.inner.close_listeners();
        self.inner.clear_time_wait();
        loop {
            let done = self.inner.tasks_done.notified();
            if self.inner.tasks.load(Ordering::SeqCst) == 0 {
                break;
            }
            done.await;
        }
        // Device threads (the raw socket's reader) stop now, not at drop.
        self.inner.device.close();
    }
}

impl StackInner {
    pub(crate) fn check_running(&self) -> io::Result<()> {
        if let Some(msg) = self.device_error().as_ref() {
            return Err(io::Error::new(io::ErrorKind::NetworkDown, msg.clone()));
        }
        if self.stopped() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the stack was shut down",
            ));
        }
        Ok(())
    }

    fn device_error(&self) -> MutexGuard<'_, Option<String>> {
        self.device_error.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The device stopped receiving (it failed or disappeared): listeners
    /// end with the device's error (`NetworkDown`, naming it), every
    /// connection ends with [`utcp_proto::Error::NetworkDown`], and new
    /// connects and listens fail, instead of timing out one by one.
    fn device_failed(&self, e: &io::Error) {
        let msg = format!("the device failed: {e}");
        *self.device_error() = Some(msg.clone());
        let listeners: Vec<_> = self.listeners().values().cloned().collect();
        for l in &listeners {
            l.state.lock().unwrap_or_else(|e| e.into_inner()).error =
                Some((io::ErrorKind::NetworkDown, msg.clone()));
            self.close_listener(l);
        }
        let now = self.clock.now();
        for s in self.all_conns() {
            let mut g = s.lock();
            g.conn.abort_network_down(now);
            drop(g);
            s.notify.notify_one();
        }
    }

    fn close_listeners(&self) {
        let listeners: Vec<_> = self.listeners().values().cloned().collect();
        for l in &listeners {
            self.close_listener(l);
        }
    }

    fn all_conns(&self) -> Vec<Arc<Shared>> {
        let ep = self.endpoint();
        ep.values().map(|e| e.shared.clone()).collect()
    }

    /// Resets every connection (RST leaves through each task).
    pub(crate) fn abort_all(&self) {
        let now = self.clock.now();
        for s in self.all_conns() {
            let mut g = s.lock();
            g.conn.abort(now);
            drop(g);
            s.notify.notify_one();
        }
    }
}

fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Receives batches, parses each packet once, routes it through the endpoint
/// and hands it to its connection's inbox with `try_send` (never awaiting a
/// connection); ends TIME_WAIT records whose 2·MSL passed (the endpoint's
/// timer queue). Replies from the endpoint (RSTs, TIME_WAIT ACKs) are
/// flushed per batch.
async fn device_task(inner: &Arc<StackInner>) {
    let mut stop = inner.stop.subscribe();
    let mut rx: Vec<RxPacket> = Vec::with_capacity(inner.cfg.batch);
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let sleep = tokio::time::sleep_until(far);
    tokio::pin!(sleep);
    let mut armed: Option<utcp_proto::Instant> = None;
    let mut level = utcp_proto::MemoryPressure::Normal;
    let mut later = Later::default();
    let mut slow: Vec<Slow> = Vec::with_capacity(inner.cfg.batch);
    loop {
        let recv = std::future::poll_fn(|cx| inner.device.poll_recv(cx, &mut rx, inner.cfg.batch));
        // Woken for the endpoint's timers (or a TIME_WAIT record that joined).
        let mut timers = false;
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            r = recv => {
                if let Err(e) = r {
                    // Returned to the application (accept, reads, writes),
                    // so not logged as an error here too.
                    tracing::debug!(error = %e, "device receive failed; every connection and listener ends");
                    inner.device_failed(&e);
                    break;
                }
            }
            _ = &mut sleep, if armed.is_some() => timers = true,
            _ = inner.tw_timer.notified() => timers = true,
        }
        let now = inner.clock.now();
        inner
            .counters
            .rx_packets
            .fetch_add(rx.len() as u64, Ordering::Relaxed);
        let mut in_segs = 0u64;
        {
            // A segment of an established connection: one lookup in the
            // fast table and a push to its inbox, without the endpoint
            // lock. The rest (new 4-tuples, handshakes, TIME_WAIT, RSTs to
            // answer, ICMP, non-TCP) goes through the endpoint below, in
            // arrival order.
            let fast = inner.fast();
            for pkt in rx.drain(..) {
                if let Some(proto) = ip_protocol(&pkt.data)
                    && proto != wire::IPPROTO_TCP
                {
                    let icmp =
                        matches!(proto, wire::icmp::IPPROTO_ICMP | wire::icmp::IPPROTO_ICMPV6);
                    slow.push(Slow::Other { pkt, icmp });
                    continue;
                }
                in_segs += 1;
                let parsed = match wire::parse_ip_tcp(&pkt.data, !pkt.meta.csum_verified) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::trace!(error = %e, "malformed packet dropped");
                        inner.counters.rx_malformed.fetch_add(1, Ordering::Relaxed);
                        if e == wire::WireError::BadChecksum {
                            inner
                                .counters
                                .rx_csum_errors
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                };
                let seg = Segment {
                    repr: parsed.tcp,
                    payload: pkt.data.slice(parsed.payload.clone()),
                };
                let key = (
                    SocketAddr::new(parsed.dst, seg.repr.dst_port),
                    SocketAddr::new(parsed.src, seg.repr.src_port),
                );
                match fast.get(&key) {
                    Some(shared) => inner.to_inbox(shared, seg, pkt.truesize),
                    None => slow.push(Slow::Tcp((parsed.src, parsed.dst), seg, pkt.truesize)),
                }
            }
        }
        inner.counters.in_segs.fetch_add(in_segs, Ordering::Relaxed);
        let was = level;
        level = inner.rmem.level();
        let pressure = was == utcp_proto::MemoryPressure::Normal && level != was;
        if slow.is_empty() && !pressure && !timers && armed.is_none_or(|d| d > now) {
            continue;
        }
        let mut ep = inner.endpoint();
        if ep.poll_timeout().is_some_and(|d| d <= now) {
            ep.handle_timeout(now);
        }
        // New connections of this batch size their MSS from the MTU now.
        ep.set_mtu(inner.device.mtu());
        for item in slow.drain(..) {
            match item {
                Slow::Other { pkt, icmp } => {
                    if !(icmp && inner.icmp_for_connection(&ep, &pkt.data)) {
                        inner.non_tcp_packet(&pkt);
                    }
                }
                Slow::Tcp(ips, seg, truesize) => {
                    inner.route(&mut ep, now, ips, seg, truesize, &mut later);
                }
            }
        }
        // Receive memory crossed into pressure (the device's arenas count):
        // wake every connection, idle ones too, so each copies the device
        // buffers it references out of their arenas (collapse).
        if pressure {
            tracing::debug!(
                memory = inner.rmem.held_and_peak().0,
                device = inner.rmem.device_alive(),
                "receive memory under pressure"
            );
            for e in ep.values() {
                e.shared.notify.notify_one();
            }
        }
        if !later.asks.is_empty() {
            // SYNs for a listener that decides: its hook runs without the
            // endpoint lock.
            inner.flush_endpoint(ep);
            inner.start_incoming(&mut later.starts);
            inner.decide_asks(&mut later.asks);
            ep = inner.endpoint();
        }
        let deadline = ep.poll_timeout();
        inner.flush_endpoint(ep);
        // The batch's new connections: their tasks spawn outside the lock.
        inner.start_incoming(&mut later.starts);
        if deadline != armed {
            armed = deadline;
            let at = deadline.map(|d| inner.clock.to_tokio(d)).unwrap_or(far);
            sleep.as_mut().reset(at);
        }
    }
}

/// What routing under the endpoint lock leaves for after it.
#[derive(Default)]
pub(crate) struct Later {
    /// SYNs for a listener's hook (`decide_asks`).
    asks: Vec<Ask>,
    /// New passive connections to start (`start_incoming`).
    starts: Vec<Start>,
}

/// A passive connection registered under the endpoint lock, to start once
/// the lock is let go (`StackInner::start_incoming`).
pub(crate) struct Start {
    shared: Arc<Shared>,
    listener: ListenerId,
}

/// A packet of a batch that goes through the endpoint.
enum Slow {
    /// Not TCP: ICMP for a connection, or the non-TCP queue.
    Other { pkt: RxPacket, icmp: bool },
    /// A segment of no established connection the fast table knows.
    Tcp((IpAddr, IpAddr), Segment, usize),
}

/// One segment of a transmit batch: where its headers lie in the batch's
/// header buffer, its payload, and what the device is asked to do with it.
#[derive(Debug)]
pub(crate) struct Tx {
    /// Offset of the headers in the batch's buffer.
    pub(crate) start: usize,
    /// Length of the headers.
    pub(crate) len: usize,
    /// The payload (a slice of the send buffer).
    pub(crate) payload: bytes::Bytes,
    /// The rest of the payload, from the next send-buffer chunk.
    pub(crate) payload_tail: bytes::Bytes,
    /// Checksum and segmentation offload requests.
    pub(crate) meta: crate::device::Offload,
}

/// Whether an IP packet's TCP header has RST (headers as the stack emits
/// them: IPv4 without options, IPv6 without extension headers).
fn is_rst(header: &[u8]) -> bool {
    let tcp = match header.first().map(|b| b >> 4) {
        Some(4) => 20,
        Some(6) => 40,
        _ => return false,
    };
    header
        .get(tcp + 13)
        .is_some_and(|f| f & wire::TcpFlags::RST.0 != 0)
}

impl Tx {
    /// The segments it is on the wire: a super-segment's count.
    pub(crate) fn wire_segments(&self) -> usize {
        match self.meta.gso_size {
            Some(g) if g > 0 => {
                let len = self.payload.len() + self.payload_tail.len();
                len.div_ceil(usize::from(g)).max(1)
            }
            _ => 1,
        }
    }

    /// The transmit `t`, whose headers end at `buf_len` in the batch's buffer.
    pub(crate) fn new(buf_len: usize, t: utcp_proto::Transmit) -> Tx {
        Tx {
            start: buf_len - t.header_len,
            len: t.header_len,
            payload: t.payload,
            payload_tail: t.payload_tail,
            meta: crate::device::Offload {
                gso_size: t.gso_size,
                csum_partial: t.csum_partial,
                csum_verified: false,
            },
        }
    }
}

/// The transport protocol of an IPv4 or IPv6 packet (the IPv6 next header,
/// extension headers not followed); `None` for anything else or a header
/// cut short.
fn ip_protocol(p: &[u8]) -> Option<u8> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => Some(p[9]),
        6 if p.len() >= 40 => Some(p[6]),
        _ => None,
    }
}

impl StackInner {
    /// An ICMP error about a segment one of our connections sent (RFC 1122
    /// §4.2.3.9): handed to that connection (which checks the quoted
    /// sequence number, RFC 5927), whose task is woken. `false` when it is
    /// about no live connection: it goes to the non-TCP queue.
    fn icmp_for_connection(&self, ep: &Endpoint<ConnEntry>, packet: &[u8]) -> bool {
        let Some(r) = wire::icmp::parse_icmp_error(packet) else {
            return false;
        };
        let Some(entry) = ep.lookup(r.local, r.remote).and_then(|h| ep.get(h)) else {
            return false;
        };
        tracing::debug!(error = ?r.error, from = %r.from, local = %r.local, remote = %r.remote, "ICMP error for a connection");
        entry.shared.lock().conn.handle_icmp(r.error, r.seq);
        entry.shared.notify.notify_one();
        self.counters.rx_icmp.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// A packet that is not TCP: to the non-TCP queue, with a partial
    /// checksum (TUN offloads' `NEEDS_CSUM`) completed first, or dropped
    /// and counted.
    fn non_tcp_packet(&self, pkt: &RxPacket) {
        let c = &self.counters;
        let Some(q) = &self.non_tcp else {
            c.rx_non_tcp_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let data = match pkt.meta.csum_partial {
            Some((start, field)) => {
                match crate::device::vnet::completed_copy(&[&pkt.data], start, field) {
                    Some(whole) => bytes::Bytes::from(whole),
                    None => {
                        c.rx_malformed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
            None => pkt.data.clone(),
        };
        match q.try_send(data) {
            Ok(()) => c.rx_non_tcp.fetch_add(1, Ordering::Relaxed),
            Err(_) => c.rx_non_tcp_dropped.fetch_add(1, Ordering::Relaxed),
        };
    }
}

#[cfg(test)]
mod lock_tests {
    use super::*;
    use crate::sim::SimNetwork;

    /// `Stack::stats`, `local_addrs` and `Debug` answer while the endpoint
    /// lock is held elsewhere (the device task's batch, a connect): they
    /// read the view its last release published.
    #[tokio::test]
    async fn stats_addrs_and_debug_do_not_wait_for_the_endpoint_lock() {
        let net = SimNetwork::new(1);
        let a = net.add_host("a", &["10.0.0.1".parse().unwrap()]);
        let stack = Stack::new(a, StackConfig::default());
        let _l = stack.listen("10.0.0.1:80".parse().unwrap()).unwrap();
        let held = stack.inner.endpoint();
        let s = stack.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let st = s.stats();
            let addrs = s.local_addrs();
            let dbg = format!("{s:?}");
            let _ = tx.send((st.connections, addrs, dbg));
        });
        let (conns, addrs, dbg) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("stats() waited for the endpoint lock");
        drop(held);
        assert_eq!(conns, 0);
        assert_eq!(addrs, vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
        assert!(dbg.contains("10.0.0.1"), "{dbg}");
    }

    /// Data of an established connection flows while both endpoint locks
    /// are held elsewhere: the device tasks hand its segments over through
    /// the fast table, and neither the send nor the receive path takes the
    /// endpoint lock (without the fast table the transfer waits for it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn established_data_does_not_wait_for_the_endpoint_lock() {
        use crate::sim::LinkConfig;
        use std::future::poll_fn;
        let (ia, ib): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let net = SimNetwork::new(1);
        let a = net.add_host("a", &[ia]);
        let b = net.add_host("b", &[ib]);
        net.link(&a, &b, LinkConfig::default());
        let sa = Stack::new(a, StackConfig::default());
        let sb = Stack::new(b, StackConfig::default());
        let l = sb.listen(SocketAddr::new(ib, 80)).unwrap();
        let client = sa.connect_start(SocketAddr::new(ib, 80)).unwrap();
        poll_fn(|cx| client.poll_connected(cx)).await.unwrap();
        let server = poll_fn(|cx| l.poll_accept(cx)).await.unwrap();

        // Another thread holds both endpoint locks until told to let go.
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (ha, hb) = (sa.clone(), sb.clone());
        let holder = std::thread::spawn(move || {
            let ga = ha.inner.endpoint();
            let gb = hb.inner.endpoint();
            held_tx.send(()).unwrap();
            let _ = go_rx.recv_timeout(Duration::from_secs(30));
            drop((ga, gb));
        });
        held_rx.recv().unwrap();

        let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
        let transfer = async {
            let sender = async {
                let mut rest = &data[..];
                while !rest.is_empty() {
                    let n = poll_fn(|cx| client.poll_write(cx, rest)).await.unwrap();
                    rest = &rest[n..];
                }
            };
            let receiver = async {
                let mut got = Vec::with_capacity(data.len());
                let mut buf = vec![0u8; 16 * 1024];
                while got.len() < data.len() {
                    let mut rb = tokio::io::ReadBuf::new(&mut buf);
                    poll_fn(|cx| server.poll_read(cx, &mut rb)).await.unwrap();
                    assert!(!rb.filled().is_empty(), "early end of stream");
                    got.extend_from_slice(rb.filled());
                }
                got
            };
            tokio::join!(sender, receiver).1
        };
        let got = tokio::time::timeout(Duration::from_secs(10), transfer).await;
        go_tx.send(()).unwrap();
        holder.join().unwrap();
        let got = got.expect("the transfer waited for the endpoint lock");
        assert!(got == data, "the data arrived changed");
    }
}
