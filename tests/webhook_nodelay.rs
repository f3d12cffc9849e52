//! The webhook sets `TCP_NODELAY` on every connection it accepts: without it, Nagle's algorithm
//! holds back part of a small response until the client's delayed ACK (~40 ms on a fresh
//! connection, see `benches/webhook_connect.rs`). This process holds both ends of a loopback
//! connection, so the test reads the option on the accepted socket itself: no timing involved.
#![cfg(target_os = "linux")]

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rolegate::metrics::Metrics;
use rolegate::state::Shared;
use socket2::SockRef;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// `TCP_NODELAY` on the socket of this process whose local address is `local` and whose peer is
/// `peer`; `None` if there is no such socket.
fn nodelay_of(local: SocketAddr, peer: SocketAddr) -> Option<bool> {
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor is only borrowed for the calls below. If it was closed (and its
        // number reused) meanwhile, the calls fail or the addresses do not match, and it is skipped.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = SockRef::from(&fd);
        let (Ok(at), Ok(to)) = (socket.local_addr(), socket.peer_addr()) else {
            continue;
        };
        if at.as_socket() == Some(local) && to.as_socket() == Some(peer) {
            return socket.tcp_nodelay().ok();
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_connection_has_tcp_nodelay() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("webhook_nodelay");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).expect("write cert");
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).expect("write key");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let server = listener.local_addr().expect("address");
    let options = rolegate::webhook::Options {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        drain_timeout: Duration::from_secs(1),
    };
    tokio::spawn(rolegate::webhook::serve_on(
        listener,
        options,
        Shared::new(),
        Arc::new(Metrics::default()),
        std::future::pending(),
    ));

    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cert.cert.pem().as_bytes()).expect("pem"))
        .expect("root");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ));
    for _ in 0..3 {
        let tcp = tokio::net::TcpStream::connect(server)
            .await
            .expect("connect");
        let client = tcp.local_addr().expect("client address");
        // The handshake completes only once the server has accepted the connection and run its
        // acceptors (TCP_NODELAY first, then TLS).
        let tls = connector
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("TLS handshake");
        assert_eq!(
            nodelay_of(client, server),
            Some(false),
            "the client's own end, which never set it, reads false: the option is read per socket"
        );
        assert_eq!(
            nodelay_of(server, client),
            Some(true),
            "the webhook's end of the connection must have TCP_NODELAY"
        );
        drop(tls);
    }
}
