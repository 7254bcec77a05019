//! Seeing a stack: its connections and listeners listed as `ss -tani`
//! lists a kernel's ([`Stack::connections`], [`Stack::listeners`]), the
//! TCP MIB counters of `/proc/net/snmp` ([`TcpMib`], RFC 4022's
//! `tcpActiveOpens` …) and every dropped packet by its reason
//! ([`DropCounts`]).

use crate::stack::Stack;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use utcp_proto::{DropReason, State, Stats};

/// One connection as [`Stack::connections`] lists it.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's.
    pub remote: SocketAddr,
    /// Its state (TIME_WAIT for a TIME_WAIT record).
    pub state: State,
    /// Opened by a listener (a passive open).
    pub passive: bool,
    /// Still in its listener's queues: not accepted by the application.
    pub queued: bool,
    /// Bytes received and not read yet (`ss`'s Recv-Q).
    pub recv_queue: usize,
    /// Bytes written and not acknowledged yet (`ss`'s Send-Q).
    pub send_queue: usize,
    /// Its counters (`None` for a TIME_WAIT record, which keeps none).
    pub stats: Option<Stats>,
    /// For a TIME_WAIT record: the time left of its 2·MSL.
    pub time_wait_left: Option<Duration>,
}

/// One listener as [`Stack::listeners`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerInfo {
    /// The bound address (unspecified IP and port 0 for accept-any).
    pub local: SocketAddr,
    /// Accept-any: every destination address and port.
    pub any: bool,
    /// Each SYN is put to a hook first (`listen_any_with`).
    pub decides: bool,
    /// The accept queue's bound (the backlog).
    pub backlog: usize,
    /// The SYN queue's bound.
    pub syn_queue: usize,
    /// Half-open connections now (and SYNs waiting for a verdict).
    pub half_open: usize,
    /// Established connections not accepted yet.
    pub unaccepted: usize,
}

/// The TCP MIB as Linux's `/proc/net/snmp` `Tcp:` line keeps it (RFC 4022
/// names in brackets), for the whole stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpMib {
    /// Connections that went SYN_SENT from CLOSED (`tcpActiveOpens`).
    pub active_opens: u64,
    /// Connections that went SYN_RECEIVED from LISTEN, SYN cookies'
    /// included (`tcpPassiveOpens`).
    pub passive_opens: u64,
    /// Connections that ended from SYN_SENT or SYN_RECEIVED
    /// (`tcpAttemptFails`).
    pub attempt_fails: u64,
    /// Connections that went CLOSED from ESTABLISHED or CLOSE_WAIT (reset
    /// or aborted; `tcpEstabResets`).
    pub estab_resets: u64,
    /// Connections in ESTABLISHED or CLOSE_WAIT now (`tcpCurrEstab`).
    pub curr_estab: u64,
    /// TCP segments received, malformed ones included (`tcpInSegs`; a
    /// super-segment from receive offloads counts once, as Linux's).
    pub in_segs: u64,
    /// TCP segments sent, retransmissions included, as Linux counts them
    /// (`tcpOutSegs`; a super-segment counts its wire segments).
    pub out_segs: u64,
    /// Segments retransmitted (`tcpRetransSegs`).
    pub retrans_segs: u64,
    /// Segments received with a bad checksum (`tcpInErrs` counts these
    /// and the other malformed ones: [`DropCounts::malformed`]).
    pub in_csum_errors: u64,
    /// Segments sent with RST (`tcpOutRsts`).
    pub out_rsts: u64,
}

/// Every packet the stack dropped, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// TCP packets with a bad checksum.
    pub checksum: u64,
    /// Packets that failed to parse for another reason (truncated, bad
    /// lengths or options, fragments, not IP).
    pub malformed: u64,
    /// Packets that are not TCP, with no room in the non-TCP queue (or no
    /// queue).
    pub not_tcp: u64,
    /// Addressed to an address that is not ours.
    pub not_local: u64,
    /// From or to a broadcast or multicast address.
    pub not_unicast: u64,
    /// RSTs for no connection.
    pub unmatched_rst: u64,
    /// Neither SYN nor ACK, for a listener.
    pub not_syn: u64,
    /// SYN with FIN, for a listener.
    pub syn_fin: u64,
    /// SYNs on a full accept queue.
    pub backlog_full: u64,
    /// Handshake-completing ACKs on a full accept queue.
    pub accept_queue_full: u64,
    /// SYNs on a full SYN queue with cookies off.
    pub syn_queue_full: u64,
    /// SYNs at the connection limit.
    pub connection_limit: u64,
    /// Retransmitted SYNs absorbed while their first waits for a verdict.
    pub pending: u64,
    /// SYNs a listener's verdict dropped.
    pub refused: u64,
    /// Segments on a connection's full inbox.
    pub inbox_full: u64,
}

/// The endpoint's drop reasons, counted by the device task.
#[derive(Debug, Default)]
pub(crate) struct DropCounters([AtomicU64; 16]);

impl DropCounters {
    pub(crate) fn add(&self, reason: DropReason) {
        self.0[Self::index(reason)].fetch_add(1, Ordering::Relaxed);
    }

    fn index(reason: DropReason) -> usize {
        match reason {
            DropReason::UnmatchedRst => 0,
            DropReason::BacklogFull => 1,
            DropReason::AcceptQueueFull => 2,
            DropReason::SynQueueFull => 3,
            DropReason::ConnectionLimit => 4,
            DropReason::NotLocal => 5,
            DropReason::NotSyn => 6,
            DropReason::SynFin => 7,
            DropReason::NotUnicast => 8,
            DropReason::Pending => 9,
            DropReason::Refused => 10,
        }
    }

    fn get(&self, reason: DropReason) -> u64 {
        self.0[Self::index(reason)].load(Ordering::Relaxed)
    }
}

impl Stack {
    /// Every connection, TIME_WAIT records included (`ss -tani`), sorted by
    /// local then remote address. Takes the stack's locks: for listings,
    /// not for the data path.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        let now = self.inner.clock.now();
        let (live, tw): (Vec<_>, Vec<_>) = {
            let ep = self.inner.endpoint();
            let live = ep
                .values()
                .map(|e| (e.shared.clone(), ep.is_queued(e.shared.handle)))
                .collect();
            (live, ep.time_wait_records().collect())
        };
        let mut out: Vec<ConnectionInfo> = live
            .into_iter()
            .map(|(s, queued)| {
                let g = s.lock();
                ConnectionInfo {
                    local: s.local,
                    remote: s.remote,
                    state: g.conn.state(),
                    passive: g.conn.is_passive(),
                    queued,
                    recv_queue: g.conn.readable(),
                    send_queue: g.conn.send_queued(),
                    stats: Some(g.conn.stats()),
                    time_wait_left: None,
                }
            })
            .collect();
        out.extend(tw.into_iter().map(|(local, remote, ends)| ConnectionInfo {
            local,
            remote,
            state: State::TimeWait,
            passive: false,
            queued: false,
            recv_queue: 0,
            send_queue: 0,
            stats: None,
            time_wait_left: Some(ends.saturating_duration_since(now)),
        }));
        out.sort_by_key(|c| (c.local, c.remote));
        out
    }

    /// Every listener, in the order they were opened.
    pub fn listeners(&self) -> Vec<ListenerInfo> {
        let ep = self.inner.endpoint();
        ep.listener_list()
            .into_iter()
            .map(|l| ListenerInfo {
                local: l.addr,
                any: l.any,
                decides: l.decides,
                backlog: l.backlog,
                syn_queue: l.syn_queue,
                half_open: l.half_open,
                unaccepted: l.unaccepted,
            })
            .collect()
    }

    /// The TCP MIB counters ([`TcpMib`]).
    pub fn mib(&self) -> TcpMib {
        let c = &self.inner.counters;
        let live_retrans: u64 = {
            let conns: Vec<_> = {
                let ep = self.inner.endpoint();
                ep.values().map(|e| e.shared.clone()).collect()
            };
            conns
                .iter()
                .map(|s| s.lock().conn.stats().segments_retransmitted)
                .sum()
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TcpMib {
            active_opens: load(&c.active_opens),
            passive_opens: load(&c.passive_opens),
            attempt_fails: load(&c.attempt_fails),
            estab_resets: load(&c.estab_resets),
            curr_estab: load(&c.curr_estab),
            in_segs: load(&c.in_segs),
            out_segs: load(&c.out_segs),
            retrans_segs: load(&c.ended_retrans) + live_retrans,
            in_csum_errors: load(&c.rx_csum_errors),
            out_rsts: load(&c.out_rsts),
        }
    }

    /// Every dropped packet so far, by reason ([`DropCounts`]).
    pub fn drops(&self) -> DropCounts {
        let c = &self.inner.counters;
        let d = &c.drops;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        DropCounts {
            checksum: load(&c.rx_csum_errors),
            malformed: load(&c.rx_malformed).saturating_sub(load(&c.rx_csum_errors)),
            not_tcp: load(&c.rx_non_tcp_dropped),
            not_local: d.get(DropReason::NotLocal),
            not_unicast: d.get(DropReason::NotUnicast),
            unmatched_rst: d.get(DropReason::UnmatchedRst),
            not_syn: d.get(DropReason::NotSyn),
            syn_fin: d.get(DropReason::SynFin),
            backlog_full: d.get(DropReason::BacklogFull),
            accept_queue_full: d.get(DropReason::AcceptQueueFull),
            syn_queue_full: d.get(DropReason::SynQueueFull),
            connection_limit: d.get(DropReason::ConnectionLimit),
            pending: d.get(DropReason::Pending),
            refused: d.get(DropReason::Refused),
            inbox_full: load(&c.inbox_drops),
        }
    }
}
