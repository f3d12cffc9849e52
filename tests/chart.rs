//! The Helm chart, rendered by the real helm binary (`scripts/install-helm.sh` fetches it) with
//! every values file under `charts/rolegate/ci/`. Every rendered object must parse as its
//! Kubernetes type without losing a field (a misspelt or misplaced key fails), and the objects
//! must fit together: the webhook calls the Service, the Service reaches the pods, the pods mount
//! the Secret the certificate lands in. The generated certificate is served by the real webhook
//! and verified against the rendered `caBundle`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::Parser;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde_json::Value;

const RELEASE: &str = "rg";
/// The chart's full name for [`RELEASE`] (no CI values file overrides it).
const FULLNAME: &str = "rg-rolegate";

/// `rolegate run`'s arguments, parsed as the binary parses them.
#[derive(clap::Parser)]
struct RunCommand {
    #[command(flatten)]
    run: rolegate::runtime::RunArgs,
}
const NAMESPACE: &str = "rolegate-system";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The helm binary: `.tools/bin/helm`, installed once per test process on first use (the tests
/// run in parallel, so the install is guarded).
fn helm() -> PathBuf {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let local = repo().join(".tools/bin/helm");
        if !local.exists() {
            let out = Command::new("bash")
                .arg(repo().join("scripts/install-helm.sh"))
                .output()
                .expect("run scripts/install-helm.sh");
            assert!(
                out.status.success(),
                "scripts/install-helm.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        local
    })
    .clone()
}

/// `helm template` with extra arguments; Ok(stdout) or Err(stderr).
fn template(args: &[&str]) -> Result<String, String> {
    let out = Command::new(helm())
        .args(["template", RELEASE])
        .arg(repo().join("charts/rolegate"))
        .args(["--namespace", NAMESPACE, "--include-crds"])
        .args(args)
        .output()
        .expect("run helm");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn ci_values() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("charts/rolegate/ci"))
        .expect("charts/rolegate/ci")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with("-values.yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "the CI values matrix: {files:?}");
    files
}

/// The rendered objects by (kind, name).
struct Rendered {
    source: String,
    objects: BTreeMap<(String, String), Value>,
}

impl Rendered {
    fn of(values: &Path) -> Self {
        let source = values.display().to_string();
        let text = template(&["-f", &source]).unwrap_or_else(|e| panic!("{source}: {e}"));
        let mut objects = BTreeMap::new();
        for doc in yaml_serde::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{source}: rendered YAML: {e}"));
            if value.is_null() {
                continue;
            }
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            let name = value["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                !kind.is_empty() && !name.is_empty(),
                "{source}: object without kind or name: {value}"
            );
            let previous = objects.insert((kind.clone(), name.clone()), value);
            assert!(previous.is_none(), "{source}: {kind}/{name} rendered twice");
        }
        Rendered { source, objects }
    }

    fn all(&self, kind: &str) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|(_, v)| v)
            .collect()
    }

    /// The one object of `kind`, as its Kubernetes type.
    fn one<T: DeserializeOwned>(&self, kind: &str) -> T {
        let all = self.all(kind);
        assert_eq!(all.len(), 1, "{}: one {kind}", self.source);
        serde_json::from_value(all[0].clone()).expect("typed")
    }

    /// The object of `kind` named `name`, as its Kubernetes type.
    fn named<T: DeserializeOwned>(&self, kind: &str, name: &str) -> T {
        let value = self
            .objects
            .get(&(kind.to_owned(), name.to_owned()))
            .unwrap_or_else(|| panic!("{}: no {kind}/{name}", self.source));
        serde_json::from_value(value.clone()).expect("typed")
    }

    fn values(&self) -> yaml_serde::Value {
        yaml_serde::from_str(&std::fs::read_to_string(&self.source).expect("values")).expect("yaml")
    }
}

/// Parses `value` as `T` and back; any field the type does not know is lost on the way.
fn round_trips<T: DeserializeOwned + serde::Serialize>(source: &str, value: &Value) {
    let typed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{source}: {}: {e}", value["kind"]));
    let back = serde_json::to_value(&typed).expect("serialize");
    assert_eq!(
        &back, value,
        "{source}: {} {} does not survive a parse as its Kubernetes type (unknown or misplaced field?)",
        value["kind"], value["metadata"]["name"]
    );
}

#[test]
fn every_rendered_object_parses_as_its_kubernetes_type() {
    for values in ci_values() {
        let r = Rendered::of(&values);
        for ((kind, _), value) in &r.objects {
            let s = &r.source;
            match kind.as_str() {
                "CustomResourceDefinition" => round_trips::<CustomResourceDefinition>(s, value),
                "Deployment" => round_trips::<Deployment>(s, value),
                "Service" => round_trips::<Service>(s, value),
                "ServiceAccount" => round_trips::<ServiceAccount>(s, value),
                "Secret" => round_trips::<Secret>(s, value),
                "ClusterRole" => round_trips::<ClusterRole>(s, value),
                "ClusterRoleBinding" => round_trips::<ClusterRoleBinding>(s, value),
                "Role" => round_trips::<Role>(s, value),
                "RoleBinding" => round_trips::<RoleBinding>(s, value),
                "PodDisruptionBudget" => round_trips::<PodDisruptionBudget>(s, value),
                "ValidatingWebhookConfiguration" => {
                    round_trips::<ValidatingWebhookConfiguration>(s, value)
                }
                // CRD-defined kinds k8s-openapi has no type for: check their shape here.
                "Certificate" | "Issuer" => {
                    assert_eq!(value["apiVersion"], "cert-manager.io/v1", "{s}")
                }
                "ServiceMonitor" => {
                    assert_eq!(value["apiVersion"], "monitoring.coreos.com/v1", "{s}");
                    assert_eq!(value["spec"]["endpoints"][0]["port"], "http-metrics", "{s}");
                }
                other => panic!("{s}: unexpected kind {other}"),
            }
            if kind != "CustomResourceDefinition" {
                assert_eq!(
                    value["metadata"]["labels"]["app.kubernetes.io/instance"], RELEASE,
                    "{s}: {kind} carries the chart's labels"
                );
            }
        }
        assert_eq!(r.all("CustomResourceDefinition").len(), 5, "{}", r.source);
    }
}

#[test]
fn the_webhook_configuration_matches_the_contract() {
    for values in ci_values() {
        let r = Rendered::of(&values);
        let v = r.values();
        let enabled = v["webhook"]["enabled"].as_bool().unwrap_or(true);
        let configs = r.all("ValidatingWebhookConfiguration");
        if !enabled {
            assert!(configs.is_empty(), "{}", r.source);
            continue;
        }
        let config: ValidatingWebhookConfiguration = r.one("ValidatingWebhookConfiguration");
        let hooks = config.webhooks.clone().unwrap_or_default();
        assert_eq!(hooks.len(), 1, "{}", r.source);
        let hook = &hooks[0];
        assert_eq!(hook.side_effects, "None");
        assert_eq!(hook.admission_review_versions, vec!["v1".to_owned()]);
        assert_eq!(hook.match_policy.as_deref(), Some("Equivalent"));
        let timeout = v["webhook"]["timeoutSeconds"].as_i64().unwrap_or(5);
        assert_eq!(hook.timeout_seconds, Some(timeout as i32), "{}", r.source);
        let policy = v["webhook"]["failurePolicy"].as_str().unwrap_or("Fail");
        assert_eq!(hook.failure_policy.as_deref(), Some(policy), "{}", r.source);
        let rules = hook.rules.clone().unwrap_or_default();
        assert_eq!(rules.len(), 1);
        let rule = &rules[0];
        assert_eq!(
            rule.api_groups.as_deref(),
            Some(&["rolegate.dev".to_owned()][..])
        );
        let mut operations = rule.operations.clone().unwrap_or_default();
        operations.sort();
        assert_eq!(operations, ["CREATE", "DELETE", "UPDATE"]);
        let mut resources = rule.resources.clone().unwrap_or_default();
        resources.sort();
        assert_eq!(
            resources,
            ["accounts", "members", "rolebindings", "roles", "teams"]
        );
        assert!(hook.namespace_selector.is_some(), "a namespaceSelector");

        // The webhook calls the Service, whose webhook port reaches the pods' webhook port.
        let service: Service = r.one("Service");
        let target = hook.client_config.service.as_ref().expect("service ref");
        assert_eq!(Some(&target.name), service.metadata.name.as_ref());
        assert_eq!(target.namespace, NAMESPACE);
        assert_eq!(target.path.as_deref(), Some("/validate"));
        let spec = service.spec.expect("service spec");
        let port = spec
            .ports
            .unwrap_or_default()
            .into_iter()
            .find(|p| Some(p.port) == target.port)
            .expect("the webhook port on the Service");
        let deployment: Deployment = r.one("Deployment");
        let pod = deployment.spec.expect("spec").template;
        let labels = pod
            .metadata
            .expect("pod metadata")
            .labels
            .unwrap_or_default();
        for (k, v) in spec.selector.unwrap_or_default() {
            assert_eq!(labels.get(&k), Some(&v), "the Service selects the pods");
        }
        let container = &pod.spec.as_ref().expect("pod spec").containers[0];
        let target_port = serde_json::to_value(&port.target_port).expect("json");
        assert!(
            container
                .ports
                .iter()
                .flatten()
                .any(|p| p.name.as_deref() == target_port.as_str()),
            "the Service's target port is a named container port"
        );

        // The certificate lands in the Secret the pods mount, and the API server trusts its CA.
        let mounted = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .and_then(|v| {
                v.iter()
                    .find_map(|v| v.secret.as_ref()?.secret_name.clone())
            })
            .expect("the TLS Secret is mounted");
        let ca_bundle = hook.client_config.ca_bundle.as_ref();
        let inject = config
            .metadata
            .annotations
            .unwrap_or_default()
            .remove("cert-manager.io/inject-ca-from");
        match v["certificates"]["mode"].as_str().unwrap_or("generate") {
            "generate" => {
                let secret: Secret = r.one("Secret");
                assert_eq!(secret.metadata.name.as_ref(), Some(&mounted));
                let data = secret.data.expect("data");
                assert_eq!(ca_bundle, data.get("ca.crt"), "caBundle is the Secret's CA");
                assert!(inject.is_none());
            }
            "certManager" => {
                let cert = r.all("Certificate")[0];
                assert_eq!(cert["spec"]["secretName"], mounted.as_str());
                let name = cert["metadata"]["name"].as_str().expect("name");
                assert_eq!(inject, Some(format!("{NAMESPACE}/{name}")));
                assert!(ca_bundle.is_none(), "cert-manager injects the CA");
                let dns = cert["spec"]["dnsNames"].as_array().expect("dnsNames");
                assert!(dns.contains(&format!("{}.{NAMESPACE}.svc", target.name).into()));
                let own_issuer = v["certificates"]["certManager"]["issuerRef"]["name"].is_null();
                assert_eq!(
                    r.all("Issuer").len(),
                    usize::from(own_issuer),
                    "{}",
                    r.source
                );
            }
            "existing" => {
                assert_eq!(
                    mounted,
                    v["certificates"]["existing"]["secretName"]
                        .as_str()
                        .expect("name")
                );
                assert!(ca_bundle.is_some());
                assert!(
                    r.all("Secret").is_empty(),
                    "the chart does not own the Secret"
                );
            }
            other => panic!("{}: unknown mode {other}", r.source),
        }
    }
}

#[test]
fn the_pods_are_hardened_and_the_rbac_is_least_privilege() {
    for values in ci_values() {
        let r = Rendered::of(&values);
        let deployment: Deployment = r.one("Deployment");
        let spec = deployment.spec.expect("spec");
        let replicas = r.values()["replicaCount"].as_i64().unwrap_or(2);
        assert_eq!(spec.replicas, Some(replicas as i32));
        let pod = spec.template.spec.expect("pod spec");
        assert_eq!(
            pod.security_context.and_then(|s| s.run_as_non_root),
            Some(true)
        );
        let c = &pod.containers[0];
        let sc = c
            .security_context
            .clone()
            .expect("container securityContext");
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert!(
            c.resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory"))
        );
        let probe = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
            p.as_ref()
                .and_then(|p| p.http_get.as_ref())
                .map(|h| h.path.clone().unwrap_or_default())
        };
        assert_eq!(probe(&c.readiness_probe).as_deref(), Some("/readyz"));
        assert_eq!(probe(&c.liveness_probe).as_deref(), Some("/healthz"));
        let env: Vec<_> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
        assert!(env.contains(&"POD_NAME") && env.contains(&"POD_NAMESPACE"));
        assert_eq!(
            c.args.as_ref().and_then(|a| a.first()).map(String::as_str),
            Some("run")
        );
        // The binary's own parser accepts the rendered arguments.
        let args = c.args.iter().flatten().skip(1).map(String::as_str);
        let run = RunCommand::try_parse_from(std::iter::once("run").chain(args))
            .unwrap_or_else(|e| panic!("{}: rolegate run rejects the chart's args: {e}", r.source))
            .run;
        let enabled = |key: &str| r.values()[key]["enabled"].as_bool() != Some(false);
        assert_eq!(!run.no_webhook, enabled("webhook"), "{}", r.source);
        assert_eq!(!run.no_controller, enabled("controller"), "{}", r.source);
        let values = r.values();
        let format = values["logFormat"].as_str().unwrap_or("text");
        assert_eq!(
            format!("{:?}", run.log_format).to_lowercase(),
            format,
            "{}",
            r.source
        );

        // The pods may read the four kinds and write only their status; nothing else cluster-wide
        // but Events.
        let role: ClusterRole = r.named("ClusterRole", FULLNAME);
        for rule in role.rules.unwrap_or_default() {
            let groups = rule.api_groups.unwrap_or_default();
            let resources = rule.resources.unwrap_or_default();
            let writes = rule
                .verbs
                .iter()
                .any(|v| !["get", "list", "watch"].contains(&v.as_str()));
            assert!(!rule.verbs.contains(&"*".to_owned()) && !resources.contains(&"*".to_owned()));
            assert!(!rule.verbs.contains(&"delete".to_owned()), "never deletes");
            if writes {
                let status_only =
                    groups == ["rolegate.dev"] && resources.iter().all(|r| r.ends_with("/status"));
                let events = groups == ["events.k8s.io"] && resources == ["events"];
                assert!(
                    status_only || events,
                    "{}: write access to {resources:?}",
                    r.source
                );
            }
        }
        let lease: Role = r.one("Role");
        assert_eq!(lease.metadata.namespace.as_deref(), Some(NAMESPACE));

        // The decision API (issue 26): with the webhook, unless turned off; rolegate may ask
        // TokenReviews and SubjectAccessReviews, and callers get an example role granting only
        // create on the virtual resources.
        let api = enabled("webhook") && enabled("decisionApi");
        assert_eq!(run.api_addr.is_some(), api, "{}", r.source);
        let ports: Vec<_> = c
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.name.clone())
            .collect();
        assert_eq!(ports.contains(&"https-api".to_owned()), api, "{}", r.source);
        let service: Service = r.one("Service");
        let service_ports: Vec<_> = service
            .spec
            .and_then(|s| s.ports)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.name)
            .collect();
        assert_eq!(service_ports.contains(&"https-api".to_owned()), api);
        let delegator = r.objects.get(&(
            "ClusterRoleBinding".to_owned(),
            format!("{FULLNAME}-auth-delegator"),
        ));
        assert_eq!(delegator.is_some(), api, "{}", r.source);
        if let Some(binding) = delegator {
            let binding: ClusterRoleBinding =
                serde_json::from_value(binding.clone()).expect("typed");
            assert_eq!(binding.role_ref.name, "system:auth-delegator");
            let checker: ClusterRole = r.named("ClusterRole", &format!("{FULLNAME}-checker"));
            let rules = checker.rules.unwrap_or_default();
            assert_eq!(rules.len(), 1);
            assert_eq!(
                rules[0].api_groups.as_deref(),
                Some(&["rolegate.dev".to_owned()][..])
            );
            assert_eq!(
                rules[0].resources.as_deref(),
                Some(&["checks".to_owned(), "lookups".to_owned()][..])
            );
            assert_eq!(rules[0].verbs, ["create"]);
        }
        let pdbs = r.all("PodDisruptionBudget");
        let pdb_enabled = r.values()["podDisruptionBudget"]["enabled"]
            .as_bool()
            .unwrap_or(true);
        let pdb = pdb_enabled && replicas > 1;
        assert_eq!(pdbs.len(), usize::from(pdb), "{}", r.source);
    }
}

#[test]
fn invalid_values_fail_the_render_with_a_reason() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--set", "certificates.mode=selfsigned"],
            "certificates.mode must be one of",
        ),
        (
            &["--set", "webhook.failurePolicy=Deny"],
            "webhook.failurePolicy must be Fail or Ignore",
        ),
        (
            &["--set", "webhook.timeoutSeconds=60"],
            "webhook.timeoutSeconds must be between 1 and 30",
        ),
        (
            &["--set", "logFormat=logfmt"],
            "logFormat must be text or json",
        ),
        (
            &["--set", "certificates.mode=existing"],
            "certificates.existing.secretName is required",
        ),
    ];
    for (args, reason) in cases {
        let error = template(args).expect_err("the render fails");
        assert!(error.contains(reason), "{args:?}: {error}");
    }
}

/// The chart's generated certificate, served by the real webhook, verifies against the rendered
/// `caBundle` under the Service's DNS name (what the API server checks).
#[tokio::test]
async fn the_generated_certificate_is_served_and_trusted_under_the_service_name() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = Rendered::of(&repo().join("charts/rolegate/ci/generate-values.yaml"));
    let secret: Secret = r.one("Secret");
    let data = secret.data.expect("data");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chart-generated-cert");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("tls.crt"), &data["tls.crt"].0).expect("write");
    std::fs::write(dir.join("tls.key"), &data["tls.key"].0).expect("write");

    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    tokio::spawn(rolegate::webhook::serve(
        addr,
        dir.join("tls.crt"),
        dir.join("tls.key"),
        rolegate::state::Shared::new(),
        Arc::new(rolegate::metrics::Metrics::default()),
        std::future::pending(),
    ));
    let config: ValidatingWebhookConfiguration = r.one("ValidatingWebhookConfiguration");
    let hook = &config.webhooks.expect("webhooks")[0];
    let ca = hook.client_config.ca_bundle.clone().expect("caBundle");
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&ca.0).expect("caBundle is PEM"))
        .expect("CA");
    let client = tokio_rustls::TlsConnector::from(Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ));
    let service = hook.client_config.service.as_ref().expect("service");
    let host = format!("{}.{}.svc", service.name, service.namespace);

    let mut tcp = None;
    for _ in 0..100 {
        if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
            tcp = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut tls = client
        .connect(
            ServerName::try_from(host.clone()).expect("name"),
            tcp.expect("the webhook listens"),
        )
        .await
        .expect("TLS handshake against the rendered caBundle");
    let body = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"group":"rolegate.dev","version":"v1alpha1","kind":"Member"},"resource":{"group":"rolegate.dev","version":"v1alpha1","resource":"members"},"operation":"DELETE","userInfo":{"username":"x"},"namespace":"t","name":"m"}}"#;
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.expect("write");
    tls.write_all(body.as_bytes()).await.expect("write");
    let mut response = String::new();
    let _ = tls.read_to_string(&mut response).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("caches not synced"), "{response}");
}

/// NOTES.txt (what `helm install` prints) names every kind the webhook judges. `helm template`
/// does not render it; a client-side dry run of `helm install` does, without a cluster.
#[test]
fn the_install_notes_name_all_five_kinds() {
    let out = Command::new(helm())
        .args(["install", RELEASE])
        .arg(repo().join("charts/rolegate"))
        .args(["--namespace", NAMESPACE, "--dry-run=client"])
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let notes = stdout
        .split_once("NOTES:")
        .map(|(_, notes)| notes.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| panic!("no NOTES in {stdout}"));
    assert!(
        notes.contains("Accounts, Members, Teams, Roles and RoleBindings"),
        "{notes}"
    );
}
