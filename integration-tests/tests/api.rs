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
