//! Compile-time checks of the public types' auto traits.

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn unpin<T: Unpin>() {}

#[test]
fn public_types_are_send_sync_unpin() {
    send::<utcp::TcpStream>();
    sync::<utcp::TcpStream>();
    unpin::<utcp::TcpStream>();
    send::<utcp::TcpListener>();
    sync::<utcp::TcpListener>();
    send::<utcp::OwnedReadHalf>();
    send::<utcp::OwnedWriteHalf>();
    unpin::<utcp::OwnedReadHalf>();
    unpin::<utcp::OwnedWriteHalf>();
    send::<utcp::ReadHalf<'static>>();
    send::<utcp::WriteHalf<'static>>();
    send::<utcp::Stack>();
    sync::<utcp::Stack>();
    send::<utcp::sim::SimNetwork>();
    sync::<utcp::sim::SimNetwork>();
}

/// Compile-time only: the futures of the tokio-parity methods are `Send`.
#[allow(dead_code)]
fn futures_of_the_parity_methods_are_send(
    s: &'static utcp::TcpStream,
    r: &'static mut utcp::OwnedReadHalf,
    w: &'static utcp::OwnedWriteHalf,
) {
    fn is_send<T: Send>(_: &T) {}
    let buf: &'static mut [u8] = Box::leak(Box::new([0u8; 4])).as_mut_slice();
    is_send(&s.ready(tokio::io::Interest::READABLE));
    is_send(&s.readable());
    is_send(&s.writable());
    is_send(&w.writable());
    is_send(&r.peek(buf));
}

#[test]
fn parity_types_are_send_sync() {
    send::<utcp::ReuniteError>();
    sync::<utcp::ReuniteError>();
}
