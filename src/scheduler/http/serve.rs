//! Accepting connections for the API, with the limits `axum::serve` cannot set: a client
//! gets [`Limits::header_read_timeout`] to send a request's first byte and then its headers
//! (hyper's timer-driven `header_read_timeout`), so a slow-loris client that trickles
//! headers, or opens a connection and sends nothing, is disconnected instead of holding a
//! task forever. Each request carries `ConnectInfo<SocketAddr>`, as under axum's
//! `into_make_service_with_connect_info`. With TLS, the handshake must also finish within
//! the header timeout, and a request on a connection whose client presented a certificate
//! carries it as a [`PeerCertificate`] (agents prove their host name with it).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::tls::PeerCertificate;

/// Limits on one connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to send a request's headers (from the connection's
    /// start, or from the end of the previous response on a kept-alive connection).
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` (over TLS with `tls`, else plain HTTP) until `stop`
/// resolves, then stops accepting and lets the connections in flight finish for up to
/// `grace` (event streams never finish by themselves, so past it they are dropped).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: impl Future<Output = ()>,
    grace: Duration,
) -> anyhow::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, do not spin or stop.
                    tracing::warn!(%error, "cannot accept an API connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let router = router.clone();
        let timeout = limits.header_read_timeout;
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let acceptor = tls.clone().map(TlsAcceptor::from);
        tokio::spawn(async move {
            // hyper's header timer starts with the first byte: a client that connects and
            // sends nothing would otherwise hold its connection forever.
            let mut first = [0u8; 1];
            match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => {
                    tracing::debug!(%peer, "API client sent nothing in {timeout:?}; closing");
                    return;
                }
            }
            let Some(acceptor) = acceptor else {
                let io = TokioIo::new(stream);
                return serve_connection(&builder, watcher, io, router, peer, None).await;
            };
            let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, "API client's TLS handshake failed: {error}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "API client's TLS handshake took over {timeout:?}");
                    return;
                }
            };
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| PeerCertificate(Arc::new(cert.clone().into_owned())));
            let io = TokioIo::new(stream);
            serve_connection(&builder, watcher, io, router, peer, certificate).await
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("connections still open after the grace period; stopping anyway");
    }
    Ok(())
}

/// Serves HTTP on one accepted (and, with TLS, handshaken) connection.
async fn serve_connection<I>(
    builder: &Builder<TokioExecutor>,
    watcher: Watcher,
    io: TokioIo<I>,
    router: Router,
    peer: SocketAddr,
    certificate: Option<PeerCertificate>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        if let Some(certificate) = &certificate {
            request.extensions_mut().insert(certificate.clone());
        }
        router.clone().oneshot(request.map(axum::body::Body::new))
    });
    let connection = builder
        .serve_connection_with_upgrades(io, service)
        .into_owned();
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%peer, "API connection ended: {error}");
    }
}
