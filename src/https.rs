//! Serving an axum router over HTTPS (rustls, ring): HTTP/1.1 and HTTP/2 (ALPN `h2`),
//! `TCP_NODELAY` on every connection, the certificate reloaded from disk when it rotates, and a
//! graceful stop. The admission webhook and the decision API share it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("loading the TLS certificate {cert} and key {key}: {source}")]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        source: std::io::Error,
    },
    #[error("serving the {what} on {addr}: {source}")]
    Serve {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// How a listener serves: its certificate pair and how long in-flight requests may take to
/// finish once shutdown begins.
#[derive(Debug, Clone)]
pub struct Options {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub drain_timeout: Duration,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reloads the certificate when either file changes (a cert-manager or kubelet rotation).
async fn reload_on_rotation(config: RustlsConfig, cert: PathBuf, key: PathBuf) {
    let mut seen = (modified(&cert), modified(&key));
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = (modified(&cert), modified(&key));
        if now == seen {
            continue;
        }
        match config.reload_from_pem_file(&cert, &key).await {
            Ok(()) => {
                tracing::info!(cert = %cert.display(), "reloaded the TLS certificate");
                seen = now;
            }
            // A half-written pair: keep serving the old certificate and try again.
            Err(error) => tracing::warn!(%error, "reloading the TLS certificate failed"),
        }
    }
}

/// Serves `router` on a bound (non-blocking) listener until `stop` resolves, then stops
/// accepting and waits at most `drain_timeout` for in-flight requests. `TCP_NODELAY` on every
/// connection, or a small response can wait ~40 ms for the client's delayed ACK. `what` names
/// the server in errors; `serving`, when given, is set once the certificate is loaded and the
/// server accepts, and cleared when it stops (a readiness gate).
pub async fn serve_on(
    what: &'static str,
    listener: std::net::TcpListener,
    options: Options,
    router: Router,
    serving: Option<Arc<AtomicBool>>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let Options {
        cert,
        key,
        drain_timeout,
    } = options;
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let config = RustlsConfig::from_pem_file(&cert, &key)
        .await
        .map_err(|source| Error::Tls {
            cert: cert.clone(),
            key: key.clone(),
            source,
        })?;
    let reload = tokio::spawn(reload_on_rotation(config.clone(), cert, key));
    let handle = axum_server::Handle::new();
    let graceful = handle.clone();
    tokio::spawn(async move {
        stop.await;
        graceful.graceful_shutdown(Some(drain_timeout));
    });
    let acceptor = RustlsAcceptor::new(config).acceptor(NoDelayAcceptor::new());
    let served = match axum_server::from_tcp(listener) {
        Ok(server) => {
            if let Some(serving) = &serving {
                serving.store(true, Ordering::SeqCst);
            }
            server
                .acceptor(acceptor)
                .handle(handle)
                .serve(router.into_make_service())
                .await
        }
        Err(e) => Err(e),
    }
    .map_err(|source| Error::Serve { what, addr, source });
    reload.abort();
    if let Some(serving) = &serving {
        serving.store(false, Ordering::SeqCst);
    }
    served
}

/// Binds `addr` (non-blocking, for [`serve_on`]).
pub fn bind(what: &'static str, addr: SocketAddr) -> Result<std::net::TcpListener, Error> {
    std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| Error::Serve { what, addr, source })
}
