//! The AF_PACKET socket of a [`super::RawDevice`], on our own I/O (libc):
//! opened with a classic BPF filter for our MAC, broadcast and the two
//! EtherTypes we speak, `PACKET_VNET_HDR` where asked (so the veth's or NIC's
//! offloads may stay on), `PACKET_QDISC_BYPASS` and `PACKET_IGNORE_OUTGOING`;
//! received in `recvmmsg` batches into reused slots, sent in `sendmmsg`
//! batches that gather each frame from its pieces (no payload copy).
//!
//! Nothing here takes a lock: the socket is used by the polling task (one at
//! a time, through the device's receive state) and by any number of senders
//! at once, which the kernel serializes itself.

use super::arp::Mac;
use crate::device::arena::{RxArena, RxMemory};
use crate::device::vnet::{VNET_HDR_LEN, VnetHdr};
use crate::device::{Offload, RxPacket};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

// Linux constants (linux/if_packet.h, linux/if_ether.h), kept here so the
// module does not depend on which of them the libc crate exports.
const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_MR_PROMISC: libc::c_ushort = 1;
const PACKET_VNET_HDR: libc::c_int = 15;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const ETH_P_ALL: u16 = 0x0003;

/// Socket buffer sizes asked for (the kernel may cap them).
const SOCKET_BUFFER: libc::c_int = 4 << 20;

/// The most frames one `recvmmsg` or `sendmmsg` moves.
pub(super) const BATCH: usize = 64;

/// Frames at most this long, or a quarter of a slot if that is more, are
/// copied out of their slot into a shared chunk (the slot is reused at
/// once); longer ones leave in their slot without a copy, so a frame never
/// pins more than four times its size.
const COPY_BELOW: usize = 2048;
/// The shared chunk small frames are copied into.
const ARENA: usize = 256 * 1024;

/// `struct packet_mreq` (linux/if_packet.h).
#[repr(C)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: libc::c_ushort,
    mr_alen: libc::c_ushort,
    mr_address: [u8; 8],
}

/// The open socket and what it was set up with.
#[derive(Debug)]
pub(super) struct PacketSocket {
    fd: OwnedFd,
    /// Every frame each way starts with a virtio-net header.
    pub vnet: bool,
    /// Why `PACKET_VNET_HDR` is off although asked for (the kernel's answer).
    pub vnet_refused: Option<String>,
    /// Frames skip the interface's queueing discipline.
    pub qdisc_bypass: bool,
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Sets an `int` socket option.
fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` outlives the call and its size is passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The classic BPF program that passes frames to `mac` or broadcast whose
/// EtherType is IPv4 or ARP, whole, and drops every other frame in the
/// kernel.
pub(super) fn filter_program(mac: Mac) -> [libc::sock_filter; 12] {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const LD_H_ABS: u16 = 0x28; // BPF_LD | BPF_H | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    let hi = u32::from_be_bytes([mac[0], mac[1], mac[2], mac[3]]);
    let lo = u32::from(u16::from_be_bytes([mac[4], mac[5]]));
    [
        /* 0 */ op(LD_W_ABS, 0, 0, 0), // destination MAC, first 4 bytes
        /* 1 */ op(JEQ_K, 0, 2, hi), // ours? else try broadcast (4)
        /* 2 */ op(LD_H_ABS, 0, 0, 4),
        /* 3 */ op(JEQ_K, 3, 7, lo), // ours: to the EtherType (7), else drop (11)
        /* 4 */ op(JEQ_K, 0, 6, 0xffff_ffff), // broadcast? else drop (11)
        /* 5 */ op(LD_H_ABS, 0, 0, 4),
        /* 6 */ op(JEQ_K, 0, 4, 0xffff), // else drop (11)
        /* 7 */ op(LD_H_ABS, 0, 0, 12), // EtherType
        /* 8 */ op(JEQ_K, 1, 0, 0x0800), // IPv4: pass (10)
        /* 9 */ op(JEQ_K, 0, 1, 0x0806), // ARP: pass (10), else drop (11)
        /* 10 */ op(RET_K, 0, 0, u32::MAX), // the whole frame
        /* 11 */ op(RET_K, 0, 0, 0),
    ]
}

impl PacketSocket {
    /// Opens the socket on interface `index` for frames to `mac`: filtered,
    /// with `PACKET_VNET_HDR` when `vnet` (falling back without it where the
    /// kernel refuses), bound, promiscuous when `promisc`, non-blocking.
    pub fn open(index: u32, mac: Mac, promisc: bool, vnet: bool) -> io::Result<PacketSocket> {
        // Protocol 0: nothing is received until bind, so no frame gets past
        // the filter attached before it.
        // SAFETY: plain socket call; the descriptor is owned at once.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let raw = fd.as_raw_fd();
        let program = filter_program(mac);
        let prog = libc::sock_fprog {
            len: program.len() as libc::c_ushort,
            filter: program.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `program`, which outlives the call (the
        // kernel copies it).
        let r = unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_ATTACH_FILTER,
                (&prog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        // Best effort: our own frames are not looped back, big buffers.
        let _ = set_int(raw, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1);
        if set_int(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, SOCKET_BUFFER).is_err() {
            let _ = set_int(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, SOCKET_BUFFER);
        }
        if set_int(raw, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, SOCKET_BUFFER).is_err() {
            let _ = set_int(raw, libc::SOL_SOCKET, libc::SO_SNDBUF, SOCKET_BUFFER);
        }
        let qdisc_bypass = set_int(raw, SOL_PACKET, PACKET_QDISC_BYPASS, 1).is_ok();
        let (vnet, vnet_refused) = if vnet {
            match set_int(raw, SOL_PACKET, PACKET_VNET_HDR, 1) {
                Ok(()) => (true, None),
                Err(e) => (false, Some(format!("PACKET_VNET_HDR: {e}"))),
            }
        } else {
            (false, None)
        };
        // SAFETY: an all-zero sockaddr_ll is valid; the fields are set below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = index as libc::c_int;
        // SAFETY: `addr` is a valid sockaddr_ll of the size passed.
        let r = unsafe {
            libc::bind(
                raw,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if promisc {
            let mreq = PacketMreq {
                mr_ifindex: index as libc::c_int,
                mr_type: PACKET_MR_PROMISC,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            // SAFETY: `mreq` is a valid packet_mreq of the size passed.
            let r = unsafe {
                libc::setsockopt(
                    raw,
                    SOL_PACKET,
                    PACKET_ADD_MEMBERSHIP,
                    (&mreq as *const PacketMreq).cast(),
                    std::mem::size_of::<PacketMreq>() as libc::socklen_t,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(PacketSocket {
            fd,
            vnet,
            vnet_refused,
            qdisc_bypass,
        })
    }

    /// Sends `frames` with `sendmmsg` (in runs of at most [`BATCH`]),
    /// without blocking. Returns how many left, how many found the socket's
    /// buffer full (dropped), and the first other error with how many frames
    /// it cost.
    pub fn send(&self, frames: &[TxFrame<'_>]) -> SendOutcome {
        let mut outcome = SendOutcome::default();
        for run in frames.chunks(BATCH) {
            // SAFETY: all-zero iovecs and mmsghdrs are valid (null pointers,
            // zero lengths); every one used is filled in below.
            let mut iov: [[libc::iovec; 6]; BATCH] = unsafe { std::mem::zeroed() };
            let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for (i, f) in run.iter().enumerate() {
                let parts: [&[u8]; 6] = [
                    if self.vnet { &f.vnet[..] } else { &[] },
                    &f.eth,
                    f.header,
                    f.payload,
                    f.payload_tail,
                    &PAD[..f.pad],
                ];
                let mut n = 0;
                for part in parts {
                    if !part.is_empty() {
                        iov[i][n] = libc::iovec {
                            iov_base: part.as_ptr().cast_mut().cast(),
                            iov_len: part.len(),
                        };
                        n += 1;
                    }
                }
                msgs[i].msg_hdr.msg_iov = iov[i].as_mut_ptr();
                msgs[i].msg_hdr.msg_iovlen = n as _;
            }
            let mut off = 0;
            // Bounded: each pass sends at least one frame or gives up on one.
            while off < run.len() {
                let left = &mut msgs[off..run.len()];
                // SAFETY: every message points at iovecs describing slices
                // that outlive the call; the kernel only reads them.
                let r = unsafe {
                    libc::sendmmsg(
                        self.fd.as_raw_fd(),
                        left.as_mut_ptr(),
                        left.len() as _,
                        libc::MSG_DONTWAIT as _,
                    )
                };
                outcome.calls += 1;
                if r > 0 {
                    off += r as usize;
                    outcome.sent += r as usize;
                    continue;
                }
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) | Some(libc::ENOBUFS) => {
                        outcome.queue_full += run.len() - off;
                        break;
                    }
                    _ => {
                        // This frame is refused; the rest may still go.
                        outcome.errors += 1;
                        outcome.first_error.get_or_insert(e);
                        off += 1;
                    }
                }
            }
        }
        outcome
    }

    /// Sends one frame (ARP, a packet that waited for ARP), counted like any
    /// other.
    pub fn send_one(&self, frame: &TxFrame<'_>) -> SendOutcome {
        self.send(std::slice::from_ref(frame))
    }
}

/// Zeros to pad short frames to Ethernet's 60-byte minimum.
static PAD: [u8; 60] = [0; 60];

/// One frame to send, in pieces: the virtio-net header (used only when the
/// socket has `PACKET_VNET_HDR`), the Ethernet header, the IP and TCP
/// headers, the payload, and `pad` zero bytes.
#[derive(Clone, Copy, Debug)]
pub(super) struct TxFrame<'a> {
    pub vnet: [u8; VNET_HDR_LEN],
    pub eth: [u8; 14],
    pub header: &'a [u8],
    pub payload: &'a [u8],
    /// The rest of the payload (from the next send-buffer chunk).
    pub payload_tail: &'a [u8],
    pub pad: usize,
}

impl<'a> TxFrame<'a> {
    /// A frame of `eth` + `header` + `payload` + `payload_tail`, padded to
    /// 60 bytes, with a plain virtio-net header (complete checksums, no
    /// segmentation).
    pub fn new(
        eth: [u8; 14],
        header: &'a [u8],
        payload: &'a [u8],
        payload_tail: &'a [u8],
    ) -> TxFrame<'a> {
        let len = eth.len() + header.len() + payload.len() + payload_tail.len();
        TxFrame {
            vnet: [0; VNET_HDR_LEN],
            eth,
            header,
            payload,
            payload_tail,
            pad: 60usize.saturating_sub(len),
        }
    }

    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.eth.len() + self.header.len() + self.payload.len() + self.payload_tail.len() + self.pad
    }
}

/// What one [`PacketSocket::send`] did.
#[derive(Debug, Default)]
pub(super) struct SendOutcome {
    /// Frames the kernel took.
    pub sent: usize,
    /// `sendmmsg` calls made.
    pub calls: usize,
    /// Frames dropped: the socket's buffer (or the driver's queue) was full.
    pub queue_full: usize,
    /// Frames refused with another error.
    pub errors: usize,
    /// The first of those errors.
    pub first_error: Option<io::Error>,
}

/// One received frame's place in a batch.
#[derive(Clone, Copy, Debug, Default)]
struct Got {
    len: usize,
    truncated: bool,
}

/// The receive side: slots that `recvmmsg` fills, reused from batch to
/// batch; small frames are copied out of them into a shared chunk, large
/// ones (super-frames) leave in their slot without a copy and the slot gets
/// a new buffer (or its old one back, once that frame is gone). Slots and
/// chunks are [`RxArena`]s: their memory is measured while any frame
/// references it.
#[derive(Debug)]
pub(super) struct RxBatch {
    slot_len: usize,
    /// One arena per slot, of one frame of `slot_len` bytes each.
    slots: Vec<RxArena>,
    hdrs: Vec<[u8; VNET_HDR_LEN]>,
    got: Vec<Got>,
    /// Where small frames are copied.
    arena: RxArena,
    gauge: RxMemory,
    vnet: bool,
    /// The last batch's frames, in order (truncated ones left out).
    frames: Vec<RxPacket>,
}

impl RxBatch {
    /// Slots of `slot_len` bytes (a frame that fills one is known to be cut);
    /// `vnet` when a virtio-net header precedes each frame; memory counted
    /// in `gauge`.
    pub fn new(slot_len: usize, vnet: bool, gauge: RxMemory) -> RxBatch {
        RxBatch {
            slot_len,
            slots: Vec::new(),
            hdrs: Vec::new(),
            got: Vec::new(),
            arena: RxArena::new(ARENA, Self::copy_limit(slot_len), gauge.clone()),
            gauge,
            vnet,
            frames: Vec::new(),
        }
    }

    /// Frames at most this long are copied out of their slot.
    fn copy_limit(slot_len: usize) -> usize {
        COPY_BELOW.max(slot_len / 4)
    }

    /// Receives up to `max` frames (at most [`BATCH`]) with one `recvmmsg`,
    /// without blocking. Returns how many arrived (`WouldBlock` when none).
    pub fn recv(&mut self, sock: &PacketSocket, max: usize) -> io::Result<usize> {
        let max = max.clamp(1, BATCH);
        while self.slots.len() < max {
            self.slots.push(RxArena::new(
                self.slot_len,
                self.slot_len,
                self.gauge.clone(),
            ));
            self.hdrs.push([0; VNET_HDR_LEN]);
        }
        self.got.clear();
        // SAFETY: all-zero iovecs and mmsghdrs are valid; the used ones are
        // filled in below.
        let mut iov: [[libc::iovec; 2]; BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..max {
            // No frame is pending in a slot (each is handed out at once).
            let spare = self.slots[i].spare(&mut self.frames);
            let mut n = 0;
            if self.vnet {
                iov[i][0] = libc::iovec {
                    iov_base: self.hdrs[i].as_mut_ptr().cast(),
                    iov_len: VNET_HDR_LEN,
                };
                n = 1;
            }
            iov[i][n] = libc::iovec {
                iov_base: spare.as_mut_ptr().cast(),
                iov_len: spare.len(),
            };
            msgs[i].msg_hdr.msg_iov = iov[i].as_mut_ptr();
            msgs[i].msg_hdr.msg_iovlen = (n + 1) as _;
        }
        // SAFETY: every message points at iovecs into buffers owned by
        // `self`, writable for their lengths, alive for the call.
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                msgs.as_mut_ptr(),
                max as _,
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let head = if self.vnet { VNET_HDR_LEN } else { 0 };
        for m in &msgs[..r as usize] {
            let len = (m.msg_len as usize).saturating_sub(head);
            let truncated = m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || len >= self.slot_len;
            self.got.push(Got { len, truncated });
        }
        Ok(r as usize)
    }

    /// Whether frame `i` of the last batch was cut (dropped).
    pub fn truncated(&self, i: usize) -> bool {
        self.got[i].truncated
    }

    /// The frames `0..n` of the last batch that were not cut, in order, with
    /// their offload metadata from their virtio-net headers (offsets
    /// relative to the frame, Ethernet header included): small ones copied
    /// into the shared chunk, large ones in their slot.
    pub fn take_frames(&mut self, n: usize) -> std::vec::Drain<'_, RxPacket> {
        let small = Self::copy_limit(self.slot_len);
        for i in 0..n {
            let Got { len, truncated } = self.got[i];
            if truncated {
                continue;
            }
            let meta = if self.vnet {
                VnetHdr::parse(&self.hdrs[i]).map_or(Offload::default(), |h| h.rx_offload(len))
            } else {
                Offload::default()
            };
            if len <= small {
                // SAFETY: the kernel initialized the first `len` spare bytes
                // of the slot (`len` < slot_len).
                let frame = unsafe { self.slots[i].written(len) };
                self.arena.push(frame, meta, &mut self.frames);
            } else {
                // In order: the copied frames before it first.
                self.arena.flush(&mut self.frames);
                // SAFETY: as above.
                unsafe { self.slots[i].commit(len, meta) };
                self.slots[i].flush(&mut self.frames);
            }
        }
        self.arena.flush(&mut self.frames);
        self.frames.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a classic BPF program of the opcodes `filter_program` uses, as
    /// the kernel would, and returns what it returns (0: drop).
    fn run(program: &[libc::sock_filter], frame: &[u8]) -> u32 {
        let mut a: u32 = 0;
        let mut pc = 0;
        for _ in 0..program.len() {
            let op = program[pc];
            let k = op.k as usize;
            match op.code {
                0x20 => {
                    let Some(b) = frame.get(k..k + 4) else {
                        return 0;
                    };
                    a = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                }
                0x28 => {
                    let Some(b) = frame.get(k..k + 2) else {
                        return 0;
                    };
                    a = u32::from(u16::from_be_bytes([b[0], b[1]]));
                }
                0x15 => {
                    pc += usize::from(if a == op.k { op.jt } else { op.jf });
                }
                0x06 => return op.k,
                other => panic!("opcode {other:#x} not in the program"),
            }
            pc += 1;
        }
        panic!("the program ran off its end");
    }

    fn frame(dst: Mac, ethertype: u16) -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f
    }

    #[test]
    fn the_filter_passes_ours_and_broadcast_ipv4_and_arp_only() {
        let mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
        let p = filter_program(mac);
        assert_eq!(run(&p, &frame(mac, 0x0800)), u32::MAX);
        assert_eq!(run(&p, &frame(mac, 0x0806)), u32::MAX);
        assert_eq!(run(&p, &frame([0xff; 6], 0x0806)), u32::MAX);
        assert_eq!(run(&p, &frame([0xff; 6], 0x0800)), u32::MAX);
        // Another EtherType, another MAC (differing in either half), a MAC
        // that is broadcast in one half only, a runt.
        assert_eq!(run(&p, &frame(mac, 0x86dd)), 0);
        assert_eq!(
            run(&p, &frame([0x02, 0x11, 0x22, 0x33, 0x44, 0x56], 0x0800)),
            0
        );
        assert_eq!(
            run(&p, &frame([0x02, 0x11, 0x22, 0x34, 0x44, 0x55], 0x0800)),
            0
        );
        assert_eq!(
            run(&p, &frame([0xff, 0xff, 0xff, 0xff, 0x44, 0x55], 0x0800)),
            0
        );
        assert_eq!(
            run(&p, &frame([0x02, 0x11, 0x22, 0x33, 0xff, 0xff], 0x0800)),
            0
        );
        assert_eq!(run(&p, &[0x02, 0x11]), 0);
    }

    #[test]
    fn frames_are_padded_to_the_ethernet_minimum() {
        let f = TxFrame::new([0; 14], &[0x45; 20], &[], &[]);
        assert_eq!((f.pad, f.len()), (26, 60));
        let f = TxFrame::new([0; 14], &[0x45; 40], &[1; 100], &[]);
        assert_eq!((f.pad, f.len()), (0, 154));
    }
}
