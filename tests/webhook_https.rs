//! The webhook over real HTTPS on loopback: a self-signed certificate from rcgen, a rustls client,
//! and AdmissionReview bodies as the API server sends them.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rolegate::api::*;
use rolegate::metrics::Metrics;
use rolegate::state::Shared;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

struct Server {
    addr: SocketAddr,
    dir: PathBuf,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
}

fn write_cert(dir: &Path) -> String {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("certificate");
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).expect("write cert");
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).expect("write key");
    cert.cert.pem()
}

async fn start(test: &str, index: Option<rolegate::engine::Index>) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    write_cert(&dir);
    let shared = Shared::new();
    if let Some(index) = index {
        shared.load(index);
    }
    let metrics = Arc::new(Metrics::default());
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let serve = rolegate::webhook::serve(
        addr,
        dir.join("tls.crt"),
        dir.join("tls.key"),
        shared.clone(),
        metrics.clone(),
        std::future::pending(),
    );
    tokio::spawn(serve);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Server {
        addr,
        dir,
        shared,
        metrics,
    }
}

impl Server {
    fn client(&self) -> (tokio_rustls::TlsConnector, CertificateDer<'static>) {
        let pem = std::fs::read(self.dir.join("tls.crt")).expect("cert");
        let cert = CertificateDer::from_pem_slice(&pem).expect("pem");
        let mut roots = RootCertStore::empty();
        roots.add(cert.clone()).expect("root");
        let config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (tokio_rustls::TlsConnector::from(Arc::new(config)), cert)
    }

    /// POSTs `body` to /validate over TLS; returns the status code and the body.
    async fn post(&self, content_type: &str, body: &[u8]) -> (u16, String) {
        let (connector, _) = self.client();
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let mut tls = connector
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("TLS handshake");
        let head = format!(
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes()).await.expect("write head");
        tls.write_all(body).await.expect("write body");
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    async fn review(&self, body: serde_json::Value) -> serde_json::Value {
        let (status, text) = self
            .post(
                "application/json",
                &serde_json::to_vec(&body).expect("json"),
            )
            .await;
        assert_eq!(status, 200, "{text}");
        serde_json::from_str::<serde_json::Value>(&text).expect("JSON response")["response"].clone()
    }
}

fn admission(
    operation: &str,
    object: Option<serde_json::Value>,
    old: Option<serde_json::Value>,
    user: &str,
) -> serde_json::Value {
    let subject = object
        .as_ref()
        .or(old.as_ref())
        .cloned()
        .unwrap_or_default();
    let kind = subject["kind"].as_str().unwrap_or_default().to_owned();
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "rolegate.dev", "version": "v1alpha1", "kind": kind},
            "resource": {"group": "rolegate.dev", "version": "v1alpha1", "resource": "rolebindings"},
            "name": subject["metadata"]["name"],
            "namespace": NS,
            "operation": operation,
            "userInfo": {"username": user, "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}

fn json<T: serde::Serialize>(o: &T) -> serde_json::Value {
    let mut v = serde_json::to_value(o).expect("json");
    v["apiVersion"] = API_VERSION.into();
    v
}

fn with_project_roles() -> rolegate::engine::Index {
    let mut index = owned_account();
    let mut admin = mk_role(
        "project-admin",
        RoleScope::Project,
        &["project.manage", "project.view"],
    );
    admin.spec.exclusive_groups = vec!["project-access".into()];
    let mut viewer = mk_role("project-viewer", RoleScope::Project, &["project.view"]);
    viewer.spec.exclusive_groups = vec!["project-access".into()];
    index.apply(admin.into());
    index.apply(viewer.into());
    index
}

#[tokio::test]
async fn an_illegal_combination_is_denied_with_the_rule_and_message() {
    let server = start("deny", Some(with_project_roles())).await;
    let first = json(&mk_binding(
        "bob-pv-web",
        "acme",
        "bob",
        "project-viewer",
        Some("web"),
    ));
    let response = server
        .review(admission("CREATE", Some(first), None, "admin"))
        .await;
    assert_eq!(response["allowed"], true);
    assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");

    let second = json(&mk_binding(
        "bob-pa-web",
        "acme",
        "bob",
        "project-admin",
        Some("web"),
    ));
    let response = server
        .review(admission("CREATE", Some(second), None, "admin"))
        .await;
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(response["status"]["reason"], "ExclusiveRoleConflict");
    assert_eq!(
        response["status"]["message"],
        "[R5] bob already holds project-viewer on project web through binding bob-pv-web; project-admin and project-viewer are exclusive (group project-access)"
    );
    let metrics = server.metrics.encode();
    assert!(metrics.contains(r#"rolegate_admission_decisions_total{operation="CREATE",kind="RoleBinding",result="denied",rule="R5"} 1"#), "{metrics}");
}

#[tokio::test]
async fn a_redundant_binding_is_allowed_with_a_warning() {
    let server = start("warn", Some(with_project_roles())).await;
    server
        .review(admission(
            "CREATE",
            Some(json(&mk_binding(
                "a",
                "acme",
                "bob",
                "project-admin",
                Some("web"),
            ))),
            None,
            "x",
        ))
        .await;
    let again = json(&mk_binding(
        "b",
        "acme",
        "bob",
        "project-admin",
        Some("web"),
    ));
    let response = server
        .review(admission("CREATE", Some(again), None, "x"))
        .await;
    assert_eq!(response["allowed"], true);
    let warnings = response["warnings"].as_array().expect("warnings");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.starts_with("[R9] binding b gives bob role project-admin")),
        "{warnings:?}"
    );
}

/// bob's project-viewer (older) and project-admin (newer) on web got in while the webhook was
/// down: the index holds both, the viewer wins.
fn with_conflict() -> rolegate::engine::Index {
    let mut index = with_project_roles();
    for (name, role, second) in [
        ("bob-pv-web", "project-viewer", 1),
        ("bob-pa-web", "project-admin", 2),
    ] {
        index.apply(created_at(mk_binding(name, "acme", "bob", role, Some("web")), second).into());
    }
    index
}

fn stored(name: &str, role: &str, second: i64) -> serde_json::Value {
    json(&created_at(
        mk_binding(name, "acme", "bob", role, Some("web")),
        second,
    ))
}

#[tokio::test]
async fn metadata_only_updates_of_conflicting_bindings_are_allowed() {
    let server = start("ratchet", Some(with_conflict())).await;
    for (name, role, second) in [
        ("bob-pv-web", "project-viewer", 1),
        ("bob-pa-web", "project-admin", 2),
    ] {
        let old = stored(name, role, second);
        let mut new = old.clone();
        new["metadata"]["labels"] = serde_json::json!({"argocd.argoproj.io/instance": "tenants"});
        let response = server
            .review(admission("UPDATE", Some(new), Some(old), "argocd"))
            .await;
        assert_eq!(response["allowed"], true, "label on {name}: {response}");
        assert!(
            response.get("warnings").is_none_or(|w| w.is_null()),
            "{response}"
        );
    }
    // Foreground deletion of the loser: the finalizer comes off an object being deleted.
    let mut deleting = stored("bob-pa-web", "project-admin", 2);
    deleting["metadata"]["finalizers"] = serde_json::json!(["foregroundDeletion"]);
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
    let mut finished = deleting.clone();
    finished["metadata"]["finalizers"] = serde_json::json!([]);
    let response = server
        .review(admission(
            "UPDATE",
            Some(finished),
            Some(deleting),
            "system:serviceaccount:kube-system:generic-garbage-collector",
        ))
        .await;
    assert_eq!(response["allowed"], true, "{response}");
}

#[tokio::test]
async fn an_ownership_transfer_through_the_moved_binding_is_denied() {
    let mut index = owned_account();
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.ownership.successor_role = Some("company-admin".into());
    index.apply(account.into());
    let mut owner = mk_owner_role("owner");
    owner.spec.includes = vec!["company-admin".into()];
    index.apply(owner.into());
    index.apply(mk_role("company-admin", RoleScope::Account, &["company.admin"]).into());
    let server = start("transfer", Some(index)).await;
    let old = json(&mk_binding("acme-owner", "acme", "alice", "owner", None));
    let mut new = old.clone();
    new["spec"]["member"] = "bob".into();
    let response = server
        .review(admission("UPDATE", Some(new), Some(old), "admin"))
        .await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["reason"], "OwnerTransferDenied");
    assert_eq!(
        response["status"]["message"],
        "[R4] bob cannot become the owner of account acme: a new owner must already hold role company-admin on the account"
    );
}

#[tokio::test]
async fn deleting_the_owner_binding_is_refused_and_dry_runs_are_judged_alike() {
    let server = start("owner", Some(owned_account())).await;
    let owner = json(&mk_binding("acme-owner", "acme", "alice", "owner", None));
    let mut request = admission("DELETE", None, Some(owner), "admin");
    request["request"]["dryRun"] = true.into();
    let response = server.review(request).await;
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("[R3] RoleBinding acme-owner makes alice the owner"))
    );
}

#[tokio::test]
async fn parallel_owner_creates_admit_exactly_the_one_named_after_the_account() {
    let mut index = owned_account();
    index.delete(Kind::RoleBinding, NS, "acme-owner");
    for name in ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"] {
        index.apply(mk_member(name, "acme", MemberType::User).into());
    }
    let server = Arc::new(start("parallel-owner", Some(index)).await);
    let mut tasks = Vec::new();
    for (i, member) in ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"]
        .into_iter()
        .enumerate()
    {
        let name = if i == 5 {
            "acme-owner".to_owned()
        } else {
            format!("{member}-owner")
        };
        let body = admission(
            "CREATE",
            Some(json(&mk_binding(&name, "acme", member, "owner", None))),
            None,
            "x",
        );
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            (name, server.review(body).await["allowed"].as_bool())
        }));
    }
    let mut allowed = Vec::new();
    for task in tasks {
        let (name, ok) = task.await.expect("joined");
        if ok == Some(true) {
            allowed.push(name);
        }
    }
    assert_eq!(allowed, vec!["acme-owner".to_owned()]);
}

#[tokio::test]
async fn parallel_conflicting_bindings_cannot_both_pass_one_replica() {
    let server = Arc::new(start("parallel-exclusive", Some(with_project_roles())).await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let role = if i % 2 == 0 {
            "project-admin"
        } else {
            "project-viewer"
        };
        let body = admission(
            "CREATE",
            Some(json(&mk_binding(
                &format!("b{i}"),
                "acme",
                "bob",
                role,
                Some("shop"),
            ))),
            None,
            "x",
        );
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            (
                role,
                server.review(body).await["allowed"].as_bool() == Some(true),
            )
        }));
    }
    let mut roles_allowed = std::collections::BTreeSet::new();
    for task in tasks {
        let (role, ok) = task.await.expect("joined");
        if ok {
            roles_allowed.insert(role);
        }
    }
    assert_eq!(
        roles_allowed.len(),
        1,
        "only one of two exclusive roles passes: {roles_allowed:?}"
    );
}

#[tokio::test]
async fn the_webhook_denies_until_the_caches_have_synced() {
    let server = start("unsynced", None).await;
    let body = admission(
        "CREATE",
        Some(json(&mk_member("x", "acme", MemberType::User))),
        None,
        "x",
    );
    let response = server.review(body).await;
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("caches not synced"))
    );
    server.shared.load(owned_account());
    let body = admission(
        "CREATE",
        Some(json(&mk_member("x", "acme", MemberType::User))),
        None,
        "x",
    );
    assert_eq!(server.review(body).await["allowed"], true);
}

#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_reason_and_never_a_panic() {
    let server = start("bad-input", Some(owned_account())).await;
    let (status, body) = server.post("text/plain", b"{}").await;
    assert_eq!(
        (status, body.as_str()),
        (415, "expected Content-Type: application/json")
    );
    let (status, body) = server.post("application/json", b"{not json").await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("the body is not an admission.k8s.io/v1 AdmissionReview"),
        "{body}"
    );
    let (status, body) = server
        .post(
            "application/json",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (400, "the AdmissionReview has no request")
    );
    let mut pod = admission(
        "CREATE",
        Some(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})),
        None,
        "x",
    );
    pod["request"]["kind"] = serde_json::json!({"group": "", "version": "v1", "kind": "Pod"});
    let (status, body) = server
        .post("application/json", &serde_json::to_vec(&pod).expect("json"))
        .await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "rolegate does not judge /Pod: only the four rolegate.dev kinds"
        )
    );
    let huge = vec![b' '; rolegate::webhook::MAX_BODY + 1];
    let (status, _) = server.post("application/json", &huge).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let server = start("rotate", Some(owned_account())).await;
    let (_, before) = server.client();
    let new_pem = write_cert(&server.dir);
    let after = CertificateDer::from_pem_slice(new_pem.as_bytes()).expect("pem");
    assert_ne!(before, after);
    // The reloader polls every 2 s; a client trusting only the new certificate must get through.
    let mut served_new = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (connector, _) = server.client();
        let tcp = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        if connector
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .is_ok()
        {
            served_new = true;
            break;
        }
    }
    assert!(served_new, "the new certificate was never served");
}

/// Sends `review` on a fresh TLS connection that offers only `alpn`, with hyper's client for the
/// protocol the server chose; returns the negotiated protocol, the HTTP version and the response.
async fn review_over(
    server: &Server,
    alpn: &[u8],
    review: &serde_json::Value,
) -> (Option<Vec<u8>>, http::Version, serde_json::Value) {
    use http_body_util::{BodyExt, Full};
    let tls = tls_connect(&server.dir.join("tls.crt"), server.addr, alpn).await;
    let negotiated = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let io = hyper_util::rt::TokioIo::new(tls);
    let request = http::Request::post(format!("https://localhost:{}/validate", server.addr.port()))
        .header("content-type", "application/json")
        .body(Full::new(axum::body::Bytes::from(
            serde_json::to_vec(review).expect("json"),
        )))
        .expect("request");
    let response = if negotiated.as_deref() == Some(b"h2") {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .expect("h2 handshake");
        tokio::spawn(connection);
        sender.send_request(request).await.expect("h2 response")
    } else {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("http1 handshake");
        tokio::spawn(connection);
        sender.send_request(request).await.expect("http1 response")
    };
    let version = response.version();
    assert_eq!(response.status(), 200);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON response");
    (negotiated, version, json["response"].clone())
}

/// The API server may speak HTTP/2 to a webhook: ALPN offers `h2`, and an HTTP/1.1-only client
/// is still served on the same port. Both get the same decision.
#[tokio::test]
async fn reviews_are_served_over_http2_and_http1_as_alpn_chooses() {
    let server = start("alpn", Some(with_project_roles())).await;
    let member = admission(
        "CREATE",
        Some(json(&mk_member("x", "acme", MemberType::User))),
        None,
        "x",
    );
    let (alpn, version, response) = review_over(&server, b"h2", &member).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(version, http::Version::HTTP_2);
    assert_eq!(response["allowed"], true, "{response}");
    let (alpn, version, response) = review_over(&server, b"http/1.1", &member).await;
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(version, http::Version::HTTP_11);
    assert_eq!(response["allowed"], true, "{response}");
}
