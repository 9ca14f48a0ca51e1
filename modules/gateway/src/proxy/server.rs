//! The gateway's listeners: accept, refuse beyond `limits.max_connections`, serve
//! HTTP/1.1 with keep-alive and protocol switches, bound the time a client may take to
//! send its head (slowloris, `head_watch.rs`: one interval per connection rather than
//! hyper's timer per request) and its size (431), and on stop close idle connections
//! and let requests in flight finish within the drain deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::head_watch::{HeadWatch, Marked};
use super::side_wake::{First, first_of};
use super::{ConnectionState, DataPlane, Slot};

/// What a connection's watchers saw.
enum Watched {
    Stop,
    SlowHead,
}

pub async fn serve(
    listener: TcpListener,
    plane: Arc<DataPlane>,
    connections: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) {
    let max_connections = plane.limits.max_connections;
    let mut builder = http1::Builder::new();
    let header_read_timeout = Duration::from_millis(plane.limits.header_read_timeout_ms);
    builder
        // Each connection's `HeadWatch` bounds the wait for a head instead.
        .header_read_timeout(None)
        .max_buf_size(plane.limits.max_header_bytes.max(8192))
        // Each response's head and body are copied into one buffer and go out in one
        // `write`: with vectored writes (hyper's choice for a TCP stream) every response
        // queued its body in a list, filled an array of 64 slices and made a `writev`.
        .writev(false)
        .keep_alive(true);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: pause rather than spin.
                Err(_) => { tokio::time::sleep(Duration::from_millis(50)).await; continue }
            },
            _ = async { let _ = stop.wait_for(|stopped| *stopped).await; } => break,
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let open = plane.metrics.open_connections.clone();
        let service_plane = Arc::clone(&plane);
        let watch = Arc::new(HeadWatch::default());
        let service_watch = Arc::clone(&watch);
        let states = Arc::new(Slot::<ConnectionState>::default());
        let service = service_fn(move |request| {
            let plane = Arc::clone(&service_plane);
            let mark = service_watch.request_started();
            let states = Arc::clone(&states);
            async move {
                let mut state = states.take_or(|| ConnectionState::new(&plane));
                let response = plane.handle(client, request, &mut state).await;
                states.put(state);
                Ok::<_, std::convert::Infallible>(response.map(|body| Marked::new(body, mark)))
            }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            open.add(1.0);
            let mut connection = std::pin::pin!(connection);
            // The watchers are polled only when they wake (`side_wake.rs`), not on
            // every read and write of the connection.
            let watchers = async {
                tokio::select! {
                    biased;
                    _ = stop.wait_for(|stopped| *stopped) => Watched::Stop,
                    _ = watch.expired(header_read_timeout) => Watched::SlowHead,
                }
            };
            match first_of(connection.as_mut(), watchers).await {
                // Dropping the connection closes it.
                First::Main(_) | First::Side(Watched::SlowHead) => {}
                First::Side(Watched::Stop) => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            open.add(-1.0);
            drop(permit);
        });
    }
    drop(listener);
    // Drained when every connection gave its permit back (or the deadline passed).
    let deadline = Instant::now() + drain;
    while connections.available_permits() < max_connections && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
