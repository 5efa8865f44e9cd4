//! Sockets as every Ferrocache gRPC server accepts them.

use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};

/// Accepted connections with Nagle off. tonic applies its own `tcp_nodelay` only to listeners
/// it binds itself; without this, a small reply sent on its own (a woken BLPOP, a heartbeat
/// answer) can wait for the peer's delayed ACK, about 40 ms.
pub fn nodelay_incoming(listener: TcpListener) -> impl Stream<Item = std::io::Result<TcpStream>> {
    TcpListenerStream::new(listener).map(|s| {
        if let Ok(s) = &s {
            let _ = s.set_nodelay(true);
        }
        s
    })
}
