//! First-response latency of the webhook on fresh TLS connections, as the API server sees it when
//! it opens a new connection: TCP connect + TLS handshake, then one AdmissionReview POST; the time
//! measured is from writing the request to having read the whole response.
//!
//! Two servers in this process, measured in alternating rounds (A, B, A, B…): "before" is the
//! server as it was (`axum_server::bind_rustls`, no `TCP_NODELAY`), "after" is
//! `rolegate::webhook::serve` (`TCP_NODELAY` on every accepted connection). The client sets
//! `TCP_NODELAY` itself, as Go's net/http does. Run: `cargo bench --bench webhook_connect`
//! (`ROUNDS`, `CONNECTIONS` override 6 and 200).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

const REVIEW: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":{"group":"rolegate.dev","version":"v1alpha1","kind":"Member"},"resource":{"group":"rolegate.dev","version":"v1alpha1","resource":"members"},"name":"x","namespace":"bench","operation":"CREATE","userInfo":{"username":"x","groups":["system:authenticated"]},"object":{"apiVersion":"rolegate.dev/v1alpha1","kind":"Member","metadata":{"name":"x","namespace":"bench"},"spec":{"account":"acme","type":"User"}},"oldObject":null,"dryRun":false}}"#;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One fresh connection, one review: the time from writing the request to the end of the response.
async fn one(addr: SocketAddr, connector: &tokio_rustls::TlsConnector) -> Duration {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let mut tls = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    let request = format!(
        "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{REVIEW}",
        REVIEW.len()
    );
    let started = Instant::now();
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = tls.read(&mut chunk).await.expect("read");
        assert!(
            n > 0,
            "the connection closed before the response was complete"
        );
        response.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= length {
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                return started.elapsed();
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rounds = env_or("ROUNDS", 6);
    let connections = env_or("CONNECTIONS", 200);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-webhook-connect");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).expect("write cert");
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).expect("write key");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let shared = rolegate::state::Shared::new();
        shared.load(rolegate::engine::Index::new());
        let metrics = Arc::new(rolegate::metrics::Metrics::default());
        let before = free_addr();
        let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(
            dir.join("tls.crt"),
            dir.join("tls.key"),
        )
        .await
        .expect("config");
        let router = rolegate::webhook::router(shared.clone(), metrics.clone());
        tokio::spawn(axum_server::bind_rustls(before, config).serve(router.into_make_service()));
        let after = free_addr();
        tokio::spawn(rolegate::webhook::serve(
            after,
            dir.join("tls.crt"),
            dir.join("tls.key"),
            shared,
            metrics,
            std::future::pending(),
        ));
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(cert.cert.pem().as_bytes()).expect("pem"))
            .expect("root");
        let mut client = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        tokio::time::sleep(Duration::from_millis(300)).await;
        println!(
            "first-response latency on fresh TLS connections, {connections} connections per round"
        );
        let mut figures: [(Vec<f64>, Vec<f64>); 2] = Default::default();
        for round in 0..rounds * 2 {
            let (name, addr) = if round % 2 == 0 {
                ("before (no TCP_NODELAY)", before)
            } else {
                ("after (TCP_NODELAY)    ", after)
            };
            let mut times = Vec::with_capacity(connections);
            for _ in 0..connections {
                times.push(one(addr, &connector).await);
            }
            times.sort();
            let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
            println!(
                "round {:>2} {name}  p50 {:>7.2} ms  p99 {:>7.2} ms",
                round / 2 + 1,
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            );
            figures[round % 2].0.push(p50.as_secs_f64() * 1e3);
            figures[round % 2].1.push(p99.as_secs_f64() * 1e3);
        }
        let [(b50, b99), (a50, a99)] = figures;
        let (b50, b99, a50, a99) = (median(b50), median(b99), median(a50), median(a99));
        println!(
            "median of rounds: before p50 {b50:.2} ms p99 {b99:.2} ms; after p50 {a50:.2} ms p99 {a99:.2} ms; \
             ratio before/after p50 {:.1}x p99 {:.1}x",
            b50 / a50,
            b99 / a99
        );
    });
}
