//! The connection task wakes only the side that can go on (lean hot path
//! issue, point 2): data arriving wakes a parked reader and not a writer
//! parked on a full send buffer, since nothing of its data was
//! acknowledged; the ACK that frees send space then wakes the writer.

mod common;

use common::{SimPair, sim_pair, write_all};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::io::ReadBuf;
use utcp_runtime::sim::FilterAction;

/// A waker that counts its wakes.
#[derive(Default)]
struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn arriving_data_wakes_the_reader_and_not_a_writer_waiting_for_space() {
    let SimPair {
        net,
        a,
        b,
        stack_a: _sa,
        stack_b: _sb,
        client: c,
        server: s,
    } = sim_pair(7, Duration::from_millis(5)).await;

    // From now on nothing a sends reaches b: a's data is never acknowledged.
    let cut = Arc::new(AtomicBool::new(true));
    let on = cut.clone();
    net.set_filter(&a, &b, move |_| {
        if on.load(Ordering::SeqCst) {
            FilterAction::Drop
        } else {
            FilterAction::Pass
        }
    });
    // Fill a's send buffer until a write waits.
    let writer = Arc::new(Counter::default());
    let wwaker = Waker::from(writer.clone());
    let chunk = vec![7u8; 64 * 1024];
    let mut filled = 0usize;
    loop {
        match c.poll_write(&mut Context::from_waker(&wwaker), &chunk) {
            Poll::Ready(Ok(n)) => filled += n,
            Poll::Ready(Err(e)) => panic!("write: {e}"),
            Poll::Pending => break,
        }
        assert!(filled < 64 << 20, "the send buffer never filled");
    }
    // A read on a waits too.
    let reader = Arc::new(Counter::default());
    let rwaker = Waker::from(reader.clone());
    let mut buf = [0u8; 64];
    let mut rb = ReadBuf::new(&mut buf);
    assert!(
        c.poll_read(&mut Context::from_waker(&rwaker), &mut rb)
            .is_pending()
    );
    let before = writer.0.load(Ordering::SeqCst);

    // b sends; its segments acknowledge nothing new of a's.
    write_all(&s, b"hello").await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        reader.0.load(Ordering::SeqCst),
        1,
        "the reader is woken by the data"
    );
    assert_eq!(
        writer.0.load(Ordering::SeqCst),
        before,
        "the writer has no more room than before and is left asleep"
    );
    let mut rb = ReadBuf::new(&mut buf);
    assert!(
        c.poll_read(&mut Context::from_waker(&rwaker), &mut rb)
            .is_ready()
    );
    assert_eq!(rb.filled(), b"hello");

    // a's data gets through (retransmitted): its ACKs free room, the
    // writer is woken.
    cut.store(false, Ordering::SeqCst);
    tokio::time::timeout(Duration::from_secs(30), async {
        while writer.0.load(Ordering::SeqCst) == before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the writer is woken once its data is acknowledged");
}
