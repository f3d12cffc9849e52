//! The decision API over real HTTPS on loopback (rcgen certificate, rustls client), with the API
//! server's TokenReview and SubjectAccessReview answered by a tower-test mock from a small table.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use kube::client::Body;
use kube::runtime::watcher;
use rolegate::api::*;
use rolegate::engine::Index;
use rolegate::metrics::Metrics;
use rolegate::state::Shared;
use serde_json::{Value, json};
use support::*;

/// Tokens the fake API server knows, and who may `create` what where.
const TOKENS: &[(&str, &str)] = &[
    ("gateway-token", "system:serviceaccount:platform:gateway"),
    ("intruder-token", "system:serviceaccount:platform:intruder"),
];
const GRANTS: &[(&str, &str, &str)] = &[
    ("system:serviceaccount:platform:gateway", NS, "checks"),
    ("system:serviceaccount:platform:gateway", NS, "lookups"),
];

#[derive(Default)]
struct Asked {
    token_reviews: AtomicUsize,
    access_reviews: AtomicUsize,
}

struct Server {
    addr: SocketAddr,
    dir: PathBuf,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    asked: Arc<Asked>,
}

/// Answers TokenReviews and SubjectAccessReviews from [`TOKENS`] and [`GRANTS`].
async fn api_server(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
    asked: Arc<Asked>,
) {
    while let Some((request, send)) = handle.next_request().await {
        let path = request.uri().path().to_owned();
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        let mut body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let status = if path.ends_with("/tokenreviews") {
            asked.token_reviews.fetch_add(1, Ordering::SeqCst);
            let token = body["spec"]["token"].as_str().unwrap_or_default();
            match TOKENS.iter().find(|(t, _)| *t == token) {
                Some((_, user)) => {
                    json!({"authenticated": true, "user": {"username": user, "groups": ["system:serviceaccounts"]}})
                }
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            }
        } else if path.ends_with("/subjectaccessreviews") {
            asked.access_reviews.fetch_add(1, Ordering::SeqCst);
            let spec = &body["spec"];
            let attrs = &spec["resourceAttributes"];
            let allowed = attrs["group"] == "rolegate.dev"
                && attrs["verb"] == "create"
                && GRANTS.iter().any(|(u, ns, r)| {
                    spec["user"] == *u && attrs["namespace"] == *ns && attrs["resource"] == *r
                });
            json!({"allowed": allowed})
        } else {
            json!({})
        };
        body["status"] = status;
        send.send_response(
            Response::builder()
                .status(201)
                .body(Body::from(serde_json::to_vec(&body).expect("json")))
                .expect("response"),
        );
    }
}

fn write_cert(dir: &Path) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("certificate");
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).expect("write cert");
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).expect("write key");
}

/// bob holds `project.manage` on shop (identity bob@acme.example); carol holds `project.view`
/// everywhere through the team `web`; alice owns the account.
fn agency() -> Index {
    let mut index = owned_account();
    let mut bob = mk_member("bob", "acme", MemberType::User);
    bob.spec.identity = Some("bob@acme.example".to_owned());
    index.apply(bob.into());
    index.apply(mk_member("carol", "acme", MemberType::User).into());
    index.apply(
        mk_role(
            "shop-admin",
            RoleScope::Project,
            &["project.manage", "project.view"],
        )
        .into(),
    );
    index.apply(mk_role("viewer", RoleScope::Account, &["project.view"]).into());
    index.apply(mk_binding("bob-shop", "acme", "bob", "shop-admin", Some("shop")).into());
    index.apply(mk_team("web", "acme", &["carol"]).into());
    index.apply(mk_team_binding("web-viewer", "acme", "web", "viewer", None).into());
    index
}

async fn start(test: &str, index: Option<Index>, freshness: Duration) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("decision-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    write_cert(&dir);
    let shared = Shared::new();
    if let Some(index) = index {
        shared.load(index);
    }
    let metrics = Arc::new(Metrics::default());
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let asked = Arc::new(Asked::default());
    tokio::spawn(api_server(handle, asked.clone()));
    let client = kube::Client::new(service, NS);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let options = rolegate::decision::Options {
        https: rolegate::https::Options {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            drain_timeout: Duration::from_secs(1),
        },
        freshness_timeout: freshness,
    };
    tokio::spawn(rolegate::decision::serve_on(
        listener,
        options,
        client,
        shared.clone(),
        metrics.clone(),
        None,
        std::future::pending(),
    ));
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
        asked,
    }
}

struct Answer {
    status: u16,
    version: http::Version,
    headers: http::HeaderMap,
    body: Value,
}

impl Server {
    /// POSTs `body` to `path` on a fresh TLS connection offering `alpn`.
    async fn post_over(
        &self,
        alpn: &[u8],
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Answer {
        let tls = tls_connect(&self.dir.join("tls.crt"), self.addr, alpn).await;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = hyper_util::rt::TokioIo::new(tls);
        let mut request =
            http::Request::post(format!("https://localhost:{}{path}", self.addr.port()))
                .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(axum::body::Bytes::from(
                serde_json::to_vec(body).expect("json"),
            )))
            .expect("request");
        let response = if h2 {
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
        let (status, version, headers) = (
            response.status().as_u16(),
            response.version(),
            response.headers().clone(),
        );
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            version,
            headers,
            body,
        }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.post_over(b"http/1.1", path, token, body).await
    }

    async fn check(&self, body: Value) -> Answer {
        self.post("/v1/check", Some("gateway-token"), &body).await
    }
}

fn ask(member: &str, permission: &str, project: Option<&str>) -> Value {
    let mut body =
        json!({"namespace": NS, "account": "acme", "member": member, "permission": permission});
    if let Some(p) = project {
        body["project"] = json!(p);
    }
    body
}

#[tokio::test]
async fn a_check_answers_with_the_grant_and_the_state_version() {
    let server = start("check", Some(agency()), Duration::from_secs(1)).await;
    server.shared.revisions.set_floor(41);
    let answer = server
        .check(ask("bob", "project.manage", Some("shop")))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body,
        json!({"allowed": true, "resourceVersion": "41", "via": {"binding": "bob-shop", "role": "shop-admin"}})
    );
    // Not on the other project, and the reason says so.
    let answer = server
        .check(ask("bob", "project.manage", Some("web")))
        .await;
    assert_eq!(answer.body["allowed"], false);
    assert_eq!(answer.body["via"], Value::Null);
    assert_eq!(
        answer.body["reason"],
        "member bob does not hold project.manage on project web"
    );
    // Through a team, account-wide, asked at a project: implicit (R15).
    let answer = server
        .check(ask("carol", "project.view", Some("web")))
        .await;
    assert_eq!(
        answer.body["via"],
        json!({"binding": "web-viewer", "role": "viewer", "team": "web", "implicit": true})
    );
    // By identity, the user name the platform's login knows.
    let by_identity = json!({"namespace": NS, "account": "acme", "identity": "bob@acme.example", "permission": "project.manage", "project": "shop"});
    assert_eq!(server.check(by_identity).await.body["allowed"], true);
    // Fails closed on what does not exist.
    for body in [
        ask("nobody", "project.view", None),
        ask("bob", "project.manage", Some("no-such-project")),
        json!({"namespace": NS, "account": "globex", "member": "bob", "permission": "x"}),
    ] {
        let answer = server.check(body).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["allowed"], false, "{}", answer.body);
        assert!(answer.body["reason"].is_string(), "{}", answer.body);
    }
    // Both member and identity, or neither: 400.
    let both = json!({"namespace": NS, "account": "acme", "member": "bob", "identity": "bob@acme.example", "permission": "x"});
    assert_eq!(server.check(both).await.status, 400);
    let text = server.metrics.encode();
    assert!(
        text.contains(r#"rolegate_decision_requests_total{endpoint="check",result="allowed"} 3"#),
        "{text}"
    );
    assert!(text.contains("rolegate_decision_request_duration_seconds_count{endpoint=\"check\"}"));
}

#[tokio::test]
async fn http2_and_http1_get_the_same_answer() {
    let server = start("alpn", Some(agency()), Duration::from_secs(1)).await;
    let body = ask("bob", "project.manage", Some("shop"));
    let h2 = server
        .post_over(b"h2", "/v1/check", Some("gateway-token"), &body)
        .await;
    let h1 = server
        .post_over(b"http/1.1", "/v1/check", Some("gateway-token"), &body)
        .await;
    assert_eq!(h2.version, http::Version::HTTP_2);
    assert_eq!(h1.version, http::Version::HTTP_11);
    assert_eq!(h2.body, h1.body);
    assert_eq!(h2.body["allowed"], true);
}

#[tokio::test]
async fn a_batch_is_answered_in_order_and_bounded() {
    let server = start("batch", Some(agency()), Duration::from_secs(1)).await;
    let body = json!({"checks": [
        ask("bob", "project.manage", Some("shop")),
        ask("bob", "project.manage", Some("web")),
        ask("carol", "project.view", None),
        ask("alice", "account.own", None),
    ]});
    let answer = server
        .post("/v1/check:batch", Some("gateway-token"), &body)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let allowed: Vec<bool> = answer.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["allowed"] == true)
        .collect();
    assert_eq!(allowed, [true, false, true, true]);
    assert!(answer.body["resourceVersion"].is_string());
    let too_many: Vec<Value> = (0..=rolegate::decision::answer::MAX_BATCH)
        .map(|_| ask("bob", "x", None))
        .collect();
    let answer = server
        .post(
            "/v1/check:batch",
            Some("gateway-token"),
            &json!({"checks": too_many}),
        )
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["kind"], "Status");
}

#[tokio::test]
async fn lookups_answer_the_clis_json() {
    let server = start("lookups", Some(agency()), Duration::from_secs(1)).await;
    let answer = server
        .post(
            "/v1/lookup/subjects",
            Some("gateway-token"),
            &json!({"namespace": NS, "account": "acme", "permission": "project.view", "project": "shop"}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let members: BTreeSet<&str> = answer.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["member"].as_str())
        .collect();
    assert_eq!(members, BTreeSet::from(["bob", "carol"]));
    assert_eq!(answer.body["permission"], "project.view");
    assert!(answer.body["resourceVersion"].is_string());
    let answer = server
        .post(
            "/v1/lookup/permissions",
            Some("gateway-token"),
            &json!({"namespace": NS, "account": "acme", "identity": "bob@acme.example"}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["member"], "bob");
    assert_eq!(
        answer.body["permissions"]["projects"]["shop"],
        json!(["project.manage", "project.view"])
    );
    assert_eq!(answer.body["paths"][0]["binding"], "bob-shop");
    // The CLI's exit 2 cases are 404 here.
    let answer = server
        .post(
            "/v1/lookup/permissions",
            Some("gateway-token"),
            &json!({"namespace": NS, "account": "acme", "member": "nobody"}),
        )
        .await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body["reason"], "NotFound");
}

#[tokio::test]
async fn no_token_or_a_refused_one_is_401_and_nothing_else() {
    let server = start("authn", Some(agency()), Duration::from_secs(1)).await;
    for (path, body) in [
        ("/v1/check", ask("bob", "project.manage", Some("shop"))),
        ("/v1/check:batch", json!({"checks": []})),
        (
            "/v1/lookup/subjects",
            json!({"namespace": NS, "account": "acme", "permission": "p"}),
        ),
        (
            "/v1/lookup/permissions",
            json!({"namespace": NS, "account": "acme", "member": "bob"}),
        ),
    ] {
        for token in [None, Some("forged-token")] {
            let answer = server.post(path, token, &body).await;
            assert_eq!(answer.status, 401, "{path} {token:?}");
            assert_eq!(answer.body["reason"], "Unauthorized");
            assert!(answer.body.get("allowed").is_none() && answer.body.get("members").is_none());
            assert!(answer.headers.contains_key("www-authenticate"));
        }
    }
    // Even a malformed body is 401 first: nothing is parsed for an unauthenticated caller.
    let answer = server.post("/v1/check", None, &json!("garbage")).await;
    assert_eq!(answer.status, 401);
}

#[tokio::test]
async fn a_refused_subject_access_review_is_403() {
    let server = start("authz", Some(agency()), Duration::from_secs(1)).await;
    let answer = server
        .post(
            "/v1/check",
            Some("intruder-token"),
            &ask("bob", "project.manage", Some("shop")),
        )
        .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.body["reason"], "Forbidden");
    assert_eq!(
        answer.body["message"],
        format!(
            "system:serviceaccount:platform:intruder cannot create resource \"checks\" in API group \"rolegate.dev\" in the namespace \"{NS}\""
        )
    );
    // Another namespace in a batch is refused for the gateway too.
    let mut elsewhere = ask("bob", "p", None);
    elsewhere["namespace"] = json!("other");
    let answer = server
        .post(
            "/v1/check:batch",
            Some("gateway-token"),
            &json!({"checks": [ask("bob", "p", None), elsewhere]}),
        )
        .await;
    assert_eq!(answer.status, 403);
    assert!(answer.body.get("results").is_none());
}

#[tokio::test]
async fn authentication_and_authorization_are_cached() {
    let server = start("cache", Some(agency()), Duration::from_secs(1)).await;
    for _ in 0..5 {
        assert_eq!(
            server
                .check(ask("bob", "project.manage", Some("shop")))
                .await
                .status,
            200
        );
    }
    assert_eq!(server.asked.token_reviews.load(Ordering::SeqCst), 1);
    assert_eq!(server.asked.access_reviews.load(Ordering::SeqCst), 1);
    let text = server.metrics.encode();
    assert!(
        text.contains(
            r#"rolegate_decision_delegate_cache_total{cache="authentication",result="hit"} 4"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"rolegate_decision_delegate_cache_total{cache="authorization",result="miss"} 1"#
    ));
}

#[tokio::test]
async fn before_the_caches_sync_the_answer_is_503() {
    let server = start("unsynced", None, Duration::from_secs(1)).await;
    let answer = server
        .check(ask("bob", "project.manage", Some("shop")))
        .await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(
        answer.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert!(answer.body.get("allowed").is_none());
    // Still 401 without a token: authentication comes first.
    assert_eq!(
        server
            .post("/v1/check", None, &ask("bob", "x", None))
            .await
            .status,
        401
    );
}

fn with_version<K: kube::Resource>(mut object: K, rv: &str) -> K {
    object.meta_mut().resource_version = Some(rv.to_owned());
    object
}

#[tokio::test]
async fn an_unreached_min_resource_version_is_503_and_a_reached_one_is_answered_fresh() {
    let server = start("fresh", Some(agency()), Duration::from_millis(300)).await;
    server.shared.revisions.set_floor(100);
    let mut revoke = ask("bob", "project.manage", Some("shop"));
    revoke["minResourceVersion"] = json!("120");
    // The deletion at 120 has not come in: no answer from the state before it.
    let answer = server.check(revoke.clone()).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(
        answer.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    // An older write is answered at once.
    let mut older = revoke.clone();
    older["minResourceVersion"] = json!("90");
    assert_eq!(server.check(older).await.body["allowed"], true);
    // A request waiting for 120 is answered when the watch delivers the deletion.
    let waiting = {
        let server = Arc::new(server);
        let s = server.clone();
        let mut patient = revoke.clone();
        patient["minResourceVersion"] = json!("120");
        let task = tokio::spawn(async move { s.check(patient).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A change to another kind at 121 is not the deletion: still waiting.
        rolegate::runtime::ingest::observe(
            &server.shared,
            watcher::Event::Apply(with_version(
                mk_member("dave", "acme", MemberType::User),
                "121",
            )),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!task.is_finished());
        rolegate::runtime::ingest::observe(
            &server.shared,
            watcher::Event::Delete(with_version(
                mk_binding("bob-shop", "acme", "bob", "shop-admin", Some("shop")),
                "120",
            )),
        );
        (task.await.expect("answered"), server)
    };
    let (answer, server) = waiting;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["allowed"], false);
    assert_eq!(answer.body["resourceVersion"], "121");
    // Malformed versions are the caller's error.
    let mut bad = ask("bob", "x", None);
    bad["minResourceVersion"] = json!("abc");
    assert_eq!(server.check(bad).await.status, 400);
    let text = server.metrics.encode();
    assert!(
        text.contains(r#"rolegate_decision_requests_total{endpoint="check",result="stale"} 1"#),
        "{text}"
    );
}
