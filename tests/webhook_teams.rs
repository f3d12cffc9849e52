//! Scoped delegation and the bind right through the webhook over real HTTPS, with `userInfo`
//! naming the requester: a hosting Admin delegates on its own hosting only, a User Administrator
//! grants roles it does not hold through the bind right, and a Team change is judged like the
//! grants it makes. The HTTPS helpers are copied from `webhook_https.rs`.

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

#[allow(dead_code)]
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

/// The hosting control panel: mona is hosting Admin of `shop` (permissions.manage there), uma a
/// User Administrator holding the bind right at account scope and nothing else, team `devs`
/// (dan) bound hosting-web on shop.
fn panel() -> rolegate::engine::Index {
    let mut index = owned_account();
    let mut account = mk_account("acme", &["shop", "web"]);
    account.spec.member_admin_permission = Some("permissions.manage".into());
    account.spec.bind_permission = Some("roles.bind".into());
    index.apply(account.into());
    let mut web = mk_role("hosting-web", RoleScope::Project, &["web.manage"]);
    web.spec.exclusive_groups = vec!["hosting-specific".into()];
    let mut mail = mk_role("hosting-mail", RoleScope::Project, &["mail.manage"]);
    mail.spec.exclusive_groups = vec!["hosting-specific".into()];
    let mut admin = mk_role("hosting-admin", RoleScope::Project, &["permissions.manage"]);
    admin.spec.includes = vec!["hosting-web".into(), "hosting-mail".into()];
    index.apply(web.into());
    index.apply(mail.into());
    index.apply(admin.into());
    index.apply(
        mk_role(
            "user-admin",
            RoleScope::Account,
            &["permissions.manage", "roles.bind"],
        )
        .into(),
    );
    index.apply(mk_role("billing", RoleScope::Account, &["billing.manage"]).into());
    for (name, identity) in [
        ("mona", "mona@client.example"),
        ("uma", "uma@client.example"),
    ] {
        let mut m = mk_member(name, "acme", MemberType::User);
        m.spec.identity = Some(identity.into());
        index.apply(m.into());
    }
    index.apply(mk_member("dan", "acme", MemberType::User).into());
    index.apply(mk_member("walt", "acme", MemberType::User).into());
    index.apply(
        mk_binding(
            "mona-admin-shop",
            "acme",
            "mona",
            "hosting-admin",
            Some("shop"),
        )
        .into(),
    );
    index.apply(mk_binding("uma-users", "acme", "uma", "user-admin", None).into());
    index.apply(
        mk_binding(
            "walt-mail-shop",
            "acme",
            "walt",
            "hosting-mail",
            Some("shop"),
        )
        .into(),
    );
    index.apply(mk_team("devs", "acme", &["dan"]).into());
    index.apply(
        mk_team_binding("devs-web-shop", "acme", "devs", "hosting-web", Some("shop")).into(),
    );
    index
}

fn team_admission(
    operation: &str,
    object: Option<serde_json::Value>,
    old: Option<serde_json::Value>,
    user: &str,
) -> serde_json::Value {
    let mut review = admission(operation, object, old, user);
    review["request"]["resource"]["resource"] = "teams".into();
    review
}

#[tokio::test]
async fn a_hosting_admin_delegates_on_its_own_hosting_only() {
    let server = start("teams-scoped", Some(panel())).await;
    let mona = "mona@client.example";
    let on_shop = json(&mk_binding(
        "dan-mail-web",
        "acme",
        "dan",
        "hosting-mail",
        Some("shop"),
    ));
    let r = server
        .review(admission("CREATE", Some(on_shop), None, mona))
        .await;
    // dan already holds hosting-web on shop through team devs: R5, not R13.
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["status"]["reason"], "ExclusiveRoleConflict");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("binding devs-web-shop of team devs"),
        "{r}"
    );
    let on_shop = json(&mk_binding(
        "walt-web",
        "acme",
        "dan",
        "hosting-web",
        Some("shop"),
    ));
    let r = server
        .review(admission("CREATE", Some(on_shop), None, mona))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    let on_web = json(&mk_binding(
        "dan-web-web",
        "acme",
        "dan",
        "hosting-web",
        Some("web"),
    ));
    let r = server
        .review(admission("CREATE", Some(on_web.clone()), None, mona))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["status"]["reason"], "DelegationDenied");
    assert_eq!(
        r["status"]["message"],
        "[R13] mona@client.example is member mona of account acme and lacks permission permissions.manage on project web, which managing bindings on project web requires"
    );
    // The same request from someone who is no member is left to Kubernetes RBAC.
    let r = server
        .review(admission("CREATE", Some(on_web), None, "platform-admin"))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    // Teams need the permission at account scope.
    let team = json(&mk_team("agency", "acme", &["dan"]));
    let r = server
        .review(team_admission("CREATE", Some(team), None, mona))
        .await;
    assert_eq!(r["status"]["reason"], "DelegationDenied", "{r}");
}

#[tokio::test]
async fn the_bind_right_grants_what_the_requester_does_not_hold() {
    let server = start("teams-bind", Some(panel())).await;
    let uma = "uma@client.example";
    let billing = json(&mk_binding("dan-billing", "acme", "dan", "billing", None));
    let r = server
        .review(admission("CREATE", Some(billing), None, uma))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    // Never the owner role, and never a binding that reaches herself.
    let own = json(&mk_binding("uma-billing", "acme", "uma", "billing", None));
    let r = server
        .review(admission("CREATE", Some(own), None, uma))
        .await;
    assert_eq!(r["status"]["reason"], "DelegationDenied", "{r}");
    // mona has no bind right: billing is beyond what she holds even where she may delegate.
    let r = server
        .review(admission(
            "CREATE",
            Some(json(&mk_binding(
                "dan-billing",
                "acme",
                "dan",
                "billing",
                None,
            ))),
            None,
            "mona@client.example",
        ))
        .await;
    assert_eq!(r["status"]["reason"], "DelegationDenied", "{r}");
}

#[tokio::test]
async fn a_team_change_is_judged_like_the_grants_it_makes() {
    let server = start("teams-change", Some(panel())).await;
    let uma = "uma@client.example";
    let old = json(&mk_team("devs", "acme", &["dan"]));
    // walt holds mail on shop: adding him to devs (web on shop) is R5, with rolegate's message.
    let with_walt = json(&mk_team("devs", "acme", &["dan", "walt"]));
    let r = server
        .review(team_admission(
            "UPDATE",
            Some(with_walt),
            Some(old.clone()),
            uma,
        ))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["status"]["reason"], "ExclusiveRoleConflict");
    // Adding herself is R13; removing dan is fine.
    let with_uma = json(&mk_team("devs", "acme", &["dan", "uma"]));
    let r = server
        .review(team_admission(
            "UPDATE",
            Some(with_uma),
            Some(old.clone()),
            uma,
        ))
        .await;
    assert_eq!(r["status"]["reason"], "DelegationDenied", "{r}");
    let empty = json(&mk_team("devs", "acme", &[]));
    let r = server
        .review(team_admission("UPDATE", Some(empty), Some(old), uma))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
}

/// Issue 24's managed-WordPress shape: `wpco` transfers to a holder of company-admin, kim owns
/// it, ann is in team `admins`, bound company-admin (from `valid_from` when given).
fn wpco(valid_from: Option<&str>) -> rolegate::engine::Index {
    let mut index = rolegate::engine::Index::new();
    let mut account = mk_account("wpco", &[]);
    account.spec.ownership.successor_role = Some("company-admin".into());
    index.apply(account.into());
    index.apply(mk_role("company-admin", RoleScope::Account, &["company.admin"]).into());
    let mut owner = mk_owner_role("company-owner");
    owner.spec.includes = vec!["company-admin".into()];
    index.apply(owner.into());
    index.apply(mk_member("kim", "wpco", MemberType::User).into());
    index.apply(mk_member("ann", "wpco", MemberType::User).into());
    index.apply(mk_binding("wpco-owner", "wpco", "kim", "company-owner", None).into());
    index.apply(mk_team("admins", "wpco", &["ann"]).into());
    let mut grant = mk_team_binding(
        "admins-company-admin",
        "wpco",
        "admins",
        "company-admin",
        None,
    );
    grant.spec.valid_from = valid_from
        .map(|t| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t.parse().expect("instant")));
    index.apply(grant.into());
    index
}

#[tokio::test]
async fn an_ownership_transfer_to_a_holder_of_the_successor_role_through_a_team() {
    let transfer = || {
        admission(
            "UPDATE",
            Some(json(&mk_binding(
                "wpco-owner",
                "wpco",
                "ann",
                "company-owner",
                None,
            ))),
            Some(json(&mk_binding(
                "wpco-owner",
                "wpco",
                "kim",
                "company-owner",
                None,
            ))),
            "platform-admin",
        )
    };
    let server = start("teams-transfer", Some(wpco(None))).await;
    let r = server.review(transfer()).await;
    assert_eq!(r["allowed"], true, "{r}");
    // The team binding's window has not opened: ann does not hold company-admin yet.
    let server = start(
        "teams-transfer-later",
        Some(wpco(Some("2999-01-01T00:00:00Z"))),
    )
    .await;
    let r = server.review(transfer()).await;
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["status"]["reason"], "OwnerTransferDenied");
    assert_eq!(
        r["status"]["message"],
        "[R4] ann cannot become the owner of account wpco: a new owner must already hold role company-admin on the account"
    );
}
