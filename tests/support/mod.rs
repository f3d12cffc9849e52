//! Small builders for test objects, in the spirit of linkerd's `mk_*` helpers.
#![allow(dead_code)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use rolegate::api::*;
use rolegate::engine::{AccountKey, Index};

pub const NS: &str = "default";

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(NS.to_owned()),
        ..ObjectMeta::default()
    }
}

pub fn mk_account(name: &str, projects: &[&str]) -> Account {
    Account {
        metadata: meta(name),
        spec: AccountSpec {
            display_name: None,
            projects: projects
                .iter()
                .map(|p| Project {
                    name: (*p).to_owned(),
                    display_name: None,
                })
                .collect(),
            ownership: Ownership::default(),
            redundant_bindings: RedundantPolicy::Warn,
            member_admin_permission: None,
            bind_permission: None,
        },
        status: None,
    }
}

pub fn mk_member(name: &str, account: &str, member_type: MemberType) -> Member {
    Member {
        metadata: meta(name),
        spec: MemberSpec {
            account: account.into(),
            member_type,
            email: None,
            display_name: None,
            identity: None,
        },
        status: None,
    }
}

pub fn mk_role(name: &str, scope: RoleScope, permissions: &[&str]) -> Role {
    Role {
        metadata: meta(name),
        spec: RoleSpec {
            display_name: None,
            scope,
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            includes: Vec::new(),
            owner: false,
            default: false,
            locked: false,
            exclusive_groups: Vec::new(),
            member_types: vec![MemberType::User, MemberType::Service],
            account: None,
        },
        status: None,
    }
}

pub fn mk_owner_role(name: &str) -> Role {
    let mut role = mk_role(name, RoleScope::Account, &["account.own", "members.manage"]);
    role.spec.owner = true;
    role
}

pub fn mk_binding(
    name: &str,
    account: &str,
    member: &str,
    role: &str,
    project: Option<&str>,
) -> RoleBinding {
    RoleBinding {
        metadata: meta(name),
        spec: RoleBindingSpec {
            account: account.into(),
            member: Some(member.into()),
            team: None,
            role: role.into(),
            project: project.map(Into::into),
            valid_from: None,
            valid_until: None,
        },
        status: None,
    }
}

/// A binding that names a team instead of a member.
pub fn mk_team_binding(
    name: &str,
    account: &str,
    team: &str,
    role: &str,
    project: Option<&str>,
) -> RoleBinding {
    let mut binding = mk_binding(name, account, "", role, project);
    binding.spec.member = None;
    binding.spec.team = Some(team.into());
    binding
}

pub fn mk_team(name: &str, account: &str, members: &[&str]) -> Team {
    Team {
        metadata: meta(name),
        spec: TeamSpec {
            account: account.to_owned(),
            display_name: None,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        },
        status: None,
    }
}

/// Sets creationTimestamp to `second` after the epoch: what decides which of two conflicting
/// bindings is older.
pub fn created_at<T: kube::Resource>(mut object: T, second: i64) -> T {
    object.meta_mut().creation_timestamp = Timestamp::from_second(second).ok().map(Time);
    object
}

/// An account `acme` with projects `shop` and `web`, an owner role, an owner `alice` bound as
/// `acme-owner`, and a member `bob` with no binding.
pub fn owned_account() -> Index {
    let mut index = Index::new();
    index.apply(mk_account("acme", &["shop", "web"]).into());
    index.apply(mk_owner_role("owner").into());
    index.apply(mk_member("alice", "acme", MemberType::User).into());
    index.apply(mk_member("bob", "acme", MemberType::User).into());
    index.apply(mk_binding("acme-owner", "acme", "alice", "owner", None).into());
    index
}

pub fn acme() -> AccountKey {
    AccountKey::new(NS, "acme")
}

/// The full object behind an index entry, as the API server would hold it (the index keeps
/// only name, age and spec).
fn stored_meta(meta: &rolegate::engine::slim::Meta) -> ObjectMeta {
    ObjectMeta {
        name: meta.name.as_deref().map(str::to_owned),
        namespace: Some(NS.to_owned()),
        creation_timestamp: meta.creation_timestamp(),
        // The index keeps only whether it is being deleted; when does not matter to the rules.
        deletion_timestamp: meta.deleting.then_some(Time(Timestamp::UNIX_EPOCH)),
        ..ObjectMeta::default()
    }
}

pub fn stored_binding(index: &Index, name: &str) -> RoleBinding {
    let b = index
        .namespace(NS)
        .and_then(|ns| ns.binding(name))
        .expect("binding in the index");
    RoleBinding {
        metadata: stored_meta(&b.metadata),
        spec: b.spec.clone(),
        status: None,
    }
}

pub fn stored_account(index: &Index, name: &str) -> Account {
    let a = index
        .namespace(NS)
        .and_then(|ns| ns.account(name))
        .expect("account in the index");
    Account {
        metadata: stored_meta(&a.metadata),
        spec: a.spec.clone(),
        status: None,
    }
}

/// A fresh TLS connection to `addr` ("localhost") trusting the PEM certificate at `cert` and
/// offering only `alpn`, as an HTTPS client of the webhook or the decision API opens one.
pub async fn tls_connect(
    cert: &std::path::Path,
    addr: std::net::SocketAddr,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};
    let pem = std::fs::read(cert).expect("cert");
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&pem).expect("pem"))
        .expect("root");
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake")
}
