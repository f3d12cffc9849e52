//! `rolegate run`: the watches, the controller (while leading) and the health and metrics
//! server, wired together. Any server that stops ends the process with an error (never a Ready
//! process without a listener). SIGTERM: readiness fails at once; the controller stops and
//! releases its Lease; the webhook keeps serving for `--shutdown-delay`, then stops accepting and
//! lets in-flight reviews finish (at most `--drain-timeout`); then the process exits.

pub mod health;
pub mod ingest;
pub mod leader;
pub mod logging;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use tokio::sync::watch;

use crate::api::{Account, Member, Role, RoleBinding, Team};
use crate::controller::{self, Context};
use crate::metrics::Metrics;
use crate::state::{Shared, Triggers, triggers};
use ingest::watch as watch_kind;

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
    /// `text` (colour only on a terminal) or `json` (one object a line, for log collectors).
    #[arg(long, value_enum, default_value_t = logging::LogFormat::Text)]
    pub log_format: logging::LogFormat,
    /// Serve the decision API (HTTPS, `/v1/check`, ...) here, with the webhook's certificate.
    /// Off unless set.
    #[arg(long)]
    pub api_addr: Option<SocketAddr>,
    /// How long a decision request waits for its `minResourceVersion` before a 503.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub api_freshness_timeout: Duration,
    /// The namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_election_namespace: String,
    #[arg(long, default_value = "rolegate")]
    pub lease_name: String,
    /// This replica's identity in the Lease. Default: `POD_NAME`, else the host name plus a
    /// random suffix (unique per process, so two replicas never both lead).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Reconciles running at once, per kind. Each may write status and publish an Event, so this
    /// bounds the controller's open connections to the API server (about four times this).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// On SIGTERM, keep serving the webhook this long with readiness failed, so that the
    /// Service stops sending reviews here before the listener closes.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,
    /// Then wait at most this long for in-flight reviews to finish.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// How long a Lease holder keeps leading after it was last seen to renew (client-go's
    /// LeaseDuration).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// A leader that could not renew for this long stops leading; shorter than the lease.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,
    /// Between attempts to acquire or renew the Lease; shorter than the renew deadline.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub retry_period: Duration,
    /// How long a change waits before its status is computed and written, so that changes
    /// arriving together (a sync streaming objects in) are written together, once. `0s` writes
    /// at once.
    #[arg(long, default_value = "300ms", value_parser = parse_duration)]
    pub status_delay: Duration,
    /// A reference to an object that may still arrive (a binding applied before its role) is
    /// reported, in status and by one Warning Event, only once it has been missing this long
    /// with no object arriving in its namespace meanwhile: a GitOps sync heals in silence.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub reference_grace: Duration,
}

impl RunArgs {
    /// client-go's rule: retry < renew deadline < lease duration, and whole seconds for the
    /// lease (the Lease stores seconds).
    fn timing(&self) -> Result<leader::Timing, Error> {
        let timing = leader::Timing {
            lease: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry: self.retry_period,
        };
        let whole = timing.lease.subsec_nanos() == 0 && timing.lease >= Duration::from_secs(1);
        if !whole || timing.renew_deadline >= timing.lease || timing.retry >= timing.renew_deadline
        {
            return Err(Error::Timing(timing));
        }
        Ok(timing)
    }
}

/// `500ms`, `5s`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (e.g. 500ms, 5s, 2m)");
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
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
    #[error(
        "the webhook's TLS {what} {path} does not exist: pass --tls-cert and --tls-key (PEM files), \
         or --no-webhook to run without the admission webhook"
    )]
    MissingTls {
        what: &'static str,
        path: std::path::PathBuf,
    },
    #[error("the {0} stopped; exiting so that no Ready process runs without it")]
    Stopped(&'static str),
    #[error("the {0} did not stop within --shutdown-delay plus --drain-timeout")]
    ShutdownTimeout(&'static str),
    #[error(
        "--retry-period {:?} < --renew-deadline {:?} < --lease-duration {:?} (whole seconds) must hold",
        .0.retry, .0.renew_deadline, .0.lease
    )]
    Timing(leader::Timing),
    #[error("lost the leader lease {0}; exiting so another replica takes over")]
    LostLease(String),
    #[error(transparent)]
    Webhook(#[from] crate::webhook::Error),
    #[error(transparent)]
    Decision(#[from] crate::decision::Error),
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

/// A one-way switch that many tasks can wait for.
#[derive(Clone)]
struct Switch(watch::Sender<bool>);

impl Switch {
    fn new() -> Self {
        Self(watch::channel(false).0)
    }
    fn flip(&self) {
        self.0.send_replace(true);
    }
    fn flipped(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    }
}

fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, Error> {
    std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| Error::Serve { addr, source })
}

/// The API client, with a User-Agent naming this replica (as client-go names its binary), so that
/// audit logs (and the e2e emulator) can tell which replica wrote what.
async fn client(identity: &str) -> Result<Client, Error> {
    let mut config = kube::Config::infer()
        .await
        .map_err(|e| Error::Client(kube::Error::InferConfig(e)))?;
    let agent = format!("rolegate/{} ({identity})", env!("CARGO_PKG_VERSION"));
    if let Ok(value) = axum::http::HeaderValue::from_str(&agent) {
        config.headers.push((axum::http::header::USER_AGENT, value));
    }
    Client::try_from(config).map_err(Error::Client)
}

pub async fn run(args: RunArgs) -> Result<(), Error> {
    if !args.no_webhook || args.api_addr.is_some() {
        for (what, path) in [("certificate", &args.tls_cert), ("key", &args.tls_key)] {
            if !path.exists() {
                return Err(Error::MissingTls {
                    what,
                    path: path.clone(),
                });
            }
        }
    }
    let timing = args.timing()?;
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(leader::default_identity);
    tracing::info!(%identity, "starting");
    // Bind first: a taken port fails the start, before anything reports Ready.
    let health_listener = bind(args.metrics_addr)?;
    let webhook_listener = if args.no_webhook {
        None
    } else {
        Some(bind(args.webhook_addr)?)
    };
    let api_listener = args.api_addr.map(bind).transpose()?;
    let client = client(&identity).await?;
    let metrics = Arc::new(Metrics::default());
    let shared = Shared::with_metrics(metrics.clone());
    if api_listener.is_some() {
        // Before the watches start: every write up to here is in their first lists.
        decision_floor(&client, &args.namespaces, &shared).await;
    }
    // `everything` stops the watches and the health server; `controllers` the status writers;
    // `webhook` starts the webhook's graceful shutdown.
    let everything = Switch::new();
    let controllers_stop = Switch::new();
    let webhook_stop = Switch::new();
    let draining = Arc::new(AtomicBool::new(false));

    let watches = futures::stream::select_all([
        watch_kind::<Account>(&client, &args.namespaces, shared.clone()).boxed(),
        watch_kind::<Member>(&client, &args.namespaces, shared.clone()).boxed(),
        watch_kind::<Team>(&client, &args.namespaces, shared.clone()).boxed(),
        watch_kind::<Role>(&client, &args.namespaces, shared.clone()).boxed(),
        watch_kind::<RoleBinding>(&client, &args.namespaces, shared.clone()).boxed(),
    ]);
    let stop = everything.flipped();
    tokio::spawn(async move {
        tokio::select! { _ = watches.for_each(|()| std::future::ready(())) => {}, _ = stop => {} }
    });

    let api_serving = Arc::new(AtomicBool::new(false));
    let gates = match api_listener {
        Some(_) => vec![("decision API", api_serving.clone())],
        None => Vec::new(),
    };
    let mut health = tokio::spawn(health::serve_on(
        health_listener,
        shared.clone(),
        metrics.clone(),
        draining.clone(),
        gates,
        everything.flipped(),
    ));
    let mut api = match api_listener {
        Some(listener) => tokio::spawn(crate::decision::serve_on(
            listener,
            crate::decision::Options {
                https: crate::https::Options {
                    cert: args.tls_cert.clone(),
                    key: args.tls_key.clone(),
                    drain_timeout: args.drain_timeout,
                },
                freshness_timeout: args.api_freshness_timeout,
            },
            client.clone(),
            shared.clone(),
            metrics.clone(),
            Some(api_serving),
            webhook_stop.flipped(),
        )),
        None => tokio::spawn(std::future::pending::<Result<(), crate::decision::Error>>()),
    };
    let mut webhook = match webhook_listener {
        Some(listener) => tokio::spawn(crate::webhook::serve_on(
            listener,
            crate::webhook::Options {
                cert: args.tls_cert.clone(),
                key: args.tls_key.clone(),
                drain_timeout: args.drain_timeout,
            },
            shared.clone(),
            metrics.clone(),
            webhook_stop.flipped(),
        )),
        None => tokio::spawn(std::future::pending::<Result<(), crate::webhook::Error>>()),
    };

    let stopped = {
        let s = controllers_stop.clone();
        move || s.flipped()
    };
    let controller = {
        let client = client.clone();
        let shared = shared.clone();
        let metrics = metrics.clone();
        let args = args.clone();
        async move {
            if args.no_controller {
                stopped().await;
                return Ok(());
            }
            let elector = leader::Elector::new(
                client.clone(),
                &args.leader_election_namespace,
                &args.lease_name,
                &identity,
                timing,
            );
            tokio::select! { () = elector.acquire() => {}, () = stopped() => return Ok(()) }
            tracing::info!(%identity, "leading: starting the controller");
            let work = async {
                // SIGTERM before the caches sync: stop (and release) without starting.
                tokio::select! { () = shared.until_synced() => {}, () = stopped() => return }
                let reporter = Reporter {
                    controller: "rolegate".into(),
                    instance: Some(identity.clone()),
                };
                let ctx = Arc::new(Context {
                    client: client.clone(),
                    shared: shared.clone(),
                    recorder: Recorder::new(client.clone(), reporter),
                    metrics: metrics.clone(),
                    reference_grace: args.reference_grace,
                });
                let pacing = controller::runner::Pacing {
                    delay: args.status_delay,
                    ..Default::default()
                };
                let (to_reconcile, rx) = Triggers::bounded(triggers::CAPACITY, &metrics);
                let (a_rx, m_rx, t_rx, r_rx, b_rx) =
                    (rx.accounts, rx.members, rx.teams, rx.roles, rx.bindings);
                shared.lead(to_reconcile);
                // Every object now, then once per resync period; a pass that outlasts the period
                // delays the next instead of overlapping it.
                let resync = async {
                    let mut tick = tokio::time::interval(controller::RESYNC);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tick.tick().await;
                        shared.reconcile_all().await;
                    }
                };
                let controllers = async {
                    tokio::join!(
                        controller::run_kind(
                            a_rx,
                            controller::reconcile_account,
                            ctx.clone(),
                            args.concurrency,
                            pacing,
                            stopped()
                        ),
                        controller::run_kind(
                            m_rx,
                            controller::reconcile_member,
                            ctx.clone(),
                            args.concurrency,
                            pacing,
                            stopped()
                        ),
                        controller::run_kind(
                            t_rx,
                            controller::reconcile_team,
                            ctx.clone(),
                            args.concurrency,
                            pacing,
                            stopped()
                        ),
                        controller::run_kind(
                            r_rx,
                            controller::reconcile_role,
                            ctx.clone(),
                            args.concurrency,
                            pacing,
                            stopped()
                        ),
                        controller::run_kind(
                            b_rx,
                            controller::reconcile_binding,
                            ctx.clone(),
                            args.concurrency,
                            pacing,
                            stopped()
                        ),
                    )
                };
                // Accounts that a change to many marked, or that wait for their namespace to
                // be quiet: after the status delay, and once quiet for the reference grace.
                let sweep = shared.sweep_accounts(args.status_delay, args.reference_grace);
                // The controllers end on SIGTERM; the resync and the sweep never end on their own
                // while the controllers run.
                tokio::select! { _ = controllers => {}, () = async { tokio::join!(resync, sweep); } => {} }
            };
            // The lease is renewed from the moment it is taken, also while the caches sync.
            tokio::select! {
                () = work => {}
                () = elector.hold() => return Err(Error::LostLease(args.lease_name.clone())),
            }
            // The controllers have stopped: no status write can follow the release.
            match tokio::time::timeout(Duration::from_secs(5), elector.release()).await {
                Ok(Ok(())) => tracing::info!(lease = %args.lease_name, "released the lease"),
                Ok(Err(error)) => tracing::warn!(%error, "releasing the lease failed"),
                Err(_) => tracing::warn!("releasing the lease timed out"),
            }
            Ok(())
        }
    };
    let mut controller = tokio::spawn(controller);

    let early = tokio::select! {
        () = shutdown_signal() => None,
        r = &mut controller => Some(match r {
            Ok(Err(e)) => e,
            _ => Error::Stopped("controller"),
        }),
        r = &mut webhook => Some(match r {
            Ok(Err(e)) => Error::Webhook(e),
            _ => Error::Stopped("webhook server"),
        }),
        r = &mut health => Some(match r {
            Ok(Err(e)) => e,
            _ => Error::Stopped("health and metrics server"),
        }),
        r = &mut api => Some(match r {
            Ok(Err(e)) => Error::Decision(e),
            _ => Error::Stopped("decision API server"),
        }),
    };
    if let Some(error) = early {
        // Status writes stop with the process; the lease expires on its own.
        everything.flip();
        webhook.abort();
        api.abort();
        controller.abort();
        return Err(error);
    }
    tracing::info!("shutting down: readiness failed, draining");
    draining.store(true, Ordering::SeqCst);
    controllers_stop.flip();
    let webhook_drained = async {
        if !args.no_webhook {
            tokio::time::sleep(args.shutdown_delay).await;
            webhook_stop.flip();
            match (&mut webhook).await {
                Ok(Err(e)) => return Err(Error::Webhook(e)),
                Ok(Ok(())) => {}
                Err(_) => return Err(Error::Stopped("webhook server")),
            }
        }
        Ok(())
    };
    // Bounded like the webhook: reconciles hung on the API server must not hold the exit past the
    // grace period (the lease then expires on its own).
    let controller_done = async {
        match tokio::time::timeout(args.shutdown_delay + args.drain_timeout, &mut controller).await
        {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::Stopped("controller")),
            Err(_) => {
                controller.abort();
                Err(Error::ShutdownTimeout("controller"))
            }
        }
    };
    // The decision API drains with the webhook (same delay, same stop).
    let api_drained = async {
        if args.api_addr.is_some() {
            if args.no_webhook {
                tokio::time::sleep(args.shutdown_delay).await;
                webhook_stop.flip();
            }
            match (&mut api).await {
                Ok(Err(e)) => return Err(Error::Decision(e)),
                Ok(Ok(())) => {}
                Err(_) => return Err(Error::Stopped("decision API server")),
            }
        }
        Ok(())
    };
    let (webhook_result, controller_result, api_result) =
        tokio::join!(webhook_drained, controller_done, api_drained);
    everything.flip();
    let health_result = match health.await {
        Ok(r) => r,
        Err(_) => Err(Error::Stopped("health and metrics server")),
    };
    webhook_result
        .and(api_result)
        .and(controller_result)
        .and(health_result)
}

/// Reads the API server's current resourceVersion (a one-item list, a quorum read) into the
/// decision API's freshness floor: the watches' first lists come after it, so they hold every
/// write up to it. Without it, a `minResourceVersion` from before this start is answered only
/// once every watch passes it.
async fn decision_floor(client: &Client, namespaces: &[String], shared: &Shared) {
    let api: kube::Api<Account> = match namespaces.first() {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    match api
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await
    {
        Ok(list) => {
            let rv = list.metadata.resource_version.as_deref();
            if let Some(rv) = rv.and_then(crate::state::revision::parse) {
                shared.revisions.set_floor(rv);
            }
        }
        Err(error) => tracing::warn!(%error, "reading the current resourceVersion failed"),
    }
}
