//! `rolegate run`: the reflectors, the controller (while leading) and the health and metrics
//! server, wired together with graceful shutdown on SIGTERM.

pub mod health;
pub mod ingest;
pub mod leader;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use futures::channel::mpsc;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use tokio::sync::watch;

use crate::api::{Account, Member, Role, RoleBinding, Team};
use crate::controller::{self, Context};
use ingest::{Shared, Triggers, watch as watch_kind};
use metrics::Metrics;

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Watch only this namespace (repeatable). Default: all namespaces.
    #[arg(long = "namespace", short = 'n')]
    pub namespaces: Vec<String>,
    /// Serve /healthz, /readyz and /metrics here (plain HTTP).
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Do not reconcile status (run only the webhook and the caches).
    #[arg(long)]
    pub no_controller: bool,
    /// Serve the admission webhook (HTTPS, `/validate`) here.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub webhook_addr: SocketAddr,
    /// PEM certificate chain of the webhook; reloaded when it changes.
    #[arg(long, default_value = "/etc/rolegate/tls/tls.crt")]
    pub tls_cert: std::path::PathBuf,
    /// PEM private key of the webhook; reloaded when it changes.
    #[arg(long, default_value = "/etc/rolegate/tls/tls.key")]
    pub tls_key: std::path::PathBuf,
    /// Do not serve the admission webhook.
    #[arg(long)]
    pub no_webhook: bool,
    /// The namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_election_namespace: String,
    #[arg(long, default_value = "rolegate")]
    pub lease_name: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME", default_value = "rolegate")]
    pub identity: String,
    /// Reconciles running at once, per kind. Each may write status and publish an Event, so this
    /// bounds the controller's open connections to the API server (about four times this).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no Kubernetes client configuration: {0}")]
    Client(#[source] kube::Error),
    #[error("serving {addr}: {source}")]
    Serve {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("lost the leader lease {0}; exiting so another replica takes over")]
    LostLease(String),
    #[error(transparent)]
    Webhook(#[from] crate::webhook::Error),
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

pub async fn run(args: RunArgs) -> Result<(), Error> {
    let client = Client::try_default().await.map_err(Error::Client)?;
    let shared = Shared::new();
    let metrics = Arc::new(Metrics::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let (accounts, accounts_stream) =
        watch_kind::<Account>(&client, &args.namespaces, shared.clone());
    let (members, members_stream) = watch_kind::<Member>(&client, &args.namespaces, shared.clone());
    // Teams feed the index (a member's grants come through them); no Team reconciler yet.
    let (_teams, teams_stream) = watch_kind::<Team>(&client, &args.namespaces, shared.clone());
    let (roles, roles_stream) = watch_kind::<Role>(&client, &args.namespaces, shared.clone());
    let (bindings, bindings_stream) =
        watch_kind::<RoleBinding>(&client, &args.namespaces, shared.clone());
    let reflectors = futures::stream::select_all([
        accounts_stream.boxed(),
        members_stream.boxed(),
        teams_stream.boxed(),
        roles_stream.boxed(),
        bindings_stream.boxed(),
    ]);
    let stop = stopped();
    tokio::spawn(async move {
        tokio::select! { _ = reflectors.for_each(|()| std::future::ready(())) => {}, _ = stop => {} }
    });

    let health = health::serve(
        args.metrics_addr,
        shared.clone(),
        metrics.clone(),
        stopped(),
    );
    let health = tokio::spawn(health);
    let webhook = (!args.no_webhook).then(|| {
        let serve = crate::webhook::serve(
            args.webhook_addr,
            args.tls_cert.clone(),
            args.tls_key.clone(),
            shared.clone(),
            metrics.clone(),
            stopped(),
        );
        tokio::spawn(serve)
    });

    let controller = async {
        if args.no_controller {
            return stopped().await;
        }
        let elector = leader::Elector::new(
            client.clone(),
            &args.leader_election_namespace,
            &args.lease_name,
            &args.identity,
        );
        tokio::select! { () = elector.acquire() => {}, () = stopped() => return }
        tracing::info!(identity = %args.identity, "leading: starting the controller");
        let _ = tokio::join!(
            accounts.wait_until_ready(),
            members.wait_until_ready(),
            roles.wait_until_ready(),
            bindings.wait_until_ready()
        );
        let reporter = Reporter {
            controller: "rolegate".into(),
            instance: Some(args.identity.clone()),
        };
        let ctx = Arc::new(Context {
            client: client.clone(),
            shared: shared.clone(),
            recorder: Recorder::new(client.clone(), reporter),
            metrics: metrics.clone(),
        });
        let (a_tx, a_rx) = mpsc::unbounded();
        let (m_tx, m_rx) = mpsc::unbounded();
        let (r_tx, r_rx) = mpsc::unbounded();
        let (b_tx, b_rx) = mpsc::unbounded();
        shared.lead(Triggers {
            accounts: a_tx,
            members: m_tx,
            roles: r_tx,
            bindings: b_tx,
        });
        let controllers = async {
            tokio::join!(
                controller::run_kind(
                    accounts,
                    a_rx,
                    controller::reconcile_account,
                    ctx.clone(),
                    args.concurrency,
                    stopped()
                ),
                controller::run_kind(
                    members,
                    m_rx,
                    controller::reconcile_member,
                    ctx.clone(),
                    args.concurrency,
                    stopped()
                ),
                controller::run_kind(
                    roles,
                    r_rx,
                    controller::reconcile_role,
                    ctx.clone(),
                    args.concurrency,
                    stopped()
                ),
                controller::run_kind(
                    bindings,
                    b_rx,
                    controller::reconcile_binding,
                    ctx.clone(),
                    args.concurrency,
                    stopped()
                ),
            );
        };
        tokio::select! {
            () = controllers => {}
            () = elector.hold() => {
                tracing::error!("{}", Error::LostLease(args.lease_name.clone()));
                std::process::exit(1);
            }
        }
    };

    let webhook_failed = async {
        match webhook {
            Some(handle) => match handle.await {
                Ok(Err(e)) => e,
                _ => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    };
    let mut failure = None;
    tokio::select! {
        () = shutdown_signal() => tracing::info!("shutting down"),
        () = controller => {}
        e = webhook_failed => failure = Some(Error::Webhook(e)),
    }
    let _ = stop_tx.send(true);
    if let Some(e) = failure {
        return Err(e);
    }
    match health.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}
