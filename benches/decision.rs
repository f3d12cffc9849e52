//! The decision API's figures (issue 26), against the generated 10,000-account index (100k
//! bindings, 50k members):
//!
//! 1. One check in process (`decision::answer::check`, what `POST /v1/check` calls after the
//!    caller's authentication): warm, the account's evaluation at hand (the controller made it
//!    for the account's current content); cold, none at hand, so the member's own grants are
//!    judged for the check (accounts asked in turn). For comparison, the same checks had they
//!    evaluated the whole account each time (what the first version of the API did).
//! 2. Over HTTPS with keep-alive (oha, 64 connections, open loop at 5,000 and 20,000 requests/s,
//!    latency-corrected): `POST /v1/check` with a bearer token, the TokenReview and
//!    SubjectAccessReview caches warm, side by side with a no-op HTTPS endpoint on the same stack
//!    (`https::serve_on`, the same TLS and HTTP), taking turns A, B, A, B; and the server's CPU
//!    time per request (its utime + stime over the run, divided by the requests answered).
//!
//! `scripts/bench-decision.sh` installs oha and runs `cargo bench --bench decision`. The server
//! runs in a child process (this binary with `--serve`), so its CPU time is its own.

#[allow(dead_code)]
#[path = "support/generate.rs"]
mod generate;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rolegate::decision::answer::{self, CheckRequest};
use rolegate::engine::{Index, Timestamp};
use rolegate::state::Shared;

const TOKEN: &str = "bench-token";

fn load(dir: &Path) -> Index {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tree")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut index = Index::new();
    for file in files {
        let (objects, errors) = rolegate::check::load(&[file], &mut std::io::empty());
        assert!(errors.is_empty(), "the tree parses");
        for found in objects {
            index.apply(found.object);
        }
    }
    index
}

/// A question about account `i`: m2 holds project.view on shop (project-viewer there).
fn question(i: usize) -> CheckRequest {
    CheckRequest {
        namespace: "bench".to_owned(),
        account: format!("acct-{i}"),
        member: Some(format!("acct-{i}-m2")),
        identity: None,
        permission: "project.view".to_owned(),
        project: Some("shop".to_owned()),
        min_resource_version: None,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).copied().unwrap_or(f64::NAN)
}

fn in_process(index: Index, accounts: usize) {
    let shared = Shared::new();
    shared.load(index);
    let now = Timestamp::now();
    // Warm: the account's evaluation, made once, serves each check; 1,000 checks per sample.
    let warm_q = question(0);
    let _ = shared.evaluation(&rolegate::engine::AccountKey::new("bench", "acct-0"), now);
    assert!(
        answer::check(&shared, &warm_q, 1, now).allowed,
        "the bench question holds"
    );
    let mut warm = Vec::new();
    for _ in 0..2_000 {
        let started = Instant::now();
        for _ in 0..1_000 {
            std::hint::black_box(answer::check(
                &shared,
                std::hint::black_box(&warm_q),
                1,
                now,
            ));
        }
        warm.push(started.elapsed().as_secs_f64() * 1e6 / 1_000.0);
    }
    warm.sort_by(f64::total_cmp);
    // Cold: no evaluation at hand (accounts asked in turn; checks make none).
    let questions: Vec<CheckRequest> = (1..accounts).map(question).collect();
    let mut cold = Vec::new();
    for round in 0..3 {
        for q in &questions {
            let started = Instant::now();
            let a = std::hint::black_box(answer::check(&shared, q, 1, now));
            let took = started.elapsed().as_secs_f64() * 1e6;
            if round > 0 {
                cold.push(took);
            }
            assert!(a.allowed);
        }
    }
    cold.sort_by(f64::total_cmp);
    // For comparison: evaluating the whole account for each check.
    let mut evaluated = Vec::new();
    for q in questions.iter().take(5_000) {
        let key = rolegate::engine::AccountKey::new(q.namespace.as_str(), q.account.as_str());
        let started = Instant::now();
        let eval =
            rolegate::engine::evaluate_account(&shared.index.read().expect("index"), &key, now);
        std::hint::black_box(&eval);
        evaluated.push(started.elapsed().as_secs_f64() * 1e6);
    }
    evaluated.sort_by(f64::total_cmp);
    println!("one check in process (decision::answer::check), {accounts} accounts:");
    println!(
        "  warm (the account's evaluation at hand): median {:.3} µs, p99 {:.3} µs (per check, 2,000 samples of 1,000)",
        percentile(&warm, 0.5),
        percentile(&warm, 0.99)
    );
    println!(
        "  cold (no evaluation at hand: the member's grants judged): median {:.2} µs, p99 {:.2} µs ({} checks)",
        percentile(&cold, 0.5),
        percentile(&cold, 0.99),
        cold.len()
    );
    println!(
        "  for comparison, evaluating the whole account: median {:.2} µs, p99 {:.2} µs ({} accounts)",
        percentile(&evaluated, 0.5),
        percentile(&evaluated, 0.99),
        evaluated.len()
    );
}

/// Child: the decision API and a no-op endpoint on the same HTTPS stack, over the loaded index;
/// TokenReviews and SubjectAccessReviews are answered in process (the caches make them rare).
fn serve(dir: &Path, api_port: u16, noop_port: u16, tls: &Path) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let index = load(dir);
    let shared = Shared::new();
    shared.load(index);
    shared.revisions.set_floor(1);
    let metrics = Arc::new(rolegate::metrics::Metrics::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (service, mut handle) = tower_test::mock::pair::<
            http::Request<kube::client::Body>,
            http::Response<kube::client::Body>,
        >();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let tokens = request.uri().path().ends_with("/tokenreviews");
                let status = if tokens {
                    serde_json::json!({"authenticated": true, "user": {"username": "system:serviceaccount:platform:gateway"}})
                } else {
                    serde_json::json!({"allowed": true})
                };
                let body = serde_json::json!({"status": status});
                send.send_response(
                    http::Response::builder()
                        .status(201)
                        .body(kube::client::Body::from(serde_json::to_vec(&body).expect("json")))
                        .expect("response"),
                );
            }
        });
        let client = kube::Client::new(service, "default");
        let options = rolegate::https::Options {
            cert: tls.join("tls.crt"),
            key: tls.join("tls.key"),
            drain_timeout: Duration::from_secs(1),
        };
        let listen = |port: u16| {
            let l = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
            l.set_nonblocking(true).expect("nonblocking");
            l
        };
        tokio::spawn(rolegate::decision::serve_on(
            listen(api_port),
            rolegate::decision::Options {
                https: options.clone(),
                freshness_timeout: Duration::from_secs(3),
            },
            client,
            shared,
            metrics,
            None,
            std::future::pending(),
        ));
        let noop = axum::Router::new().route(
            "/noop",
            axum::routing::post(|| async {
                axum::Json(serde_json::json!({"allowed": true, "resourceVersion": "1", "via": null}))
            }),
        );
        tokio::spawn(rolegate::https::serve_on(
            "no-op",
            listen(noop_port),
            options,
            noop,
            None,
            std::future::pending(),
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        println!("ready");
        std::future::pending::<()>().await;
    });
}

/// The server child, killed when the run ends or panics.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the state.
    let hz = 100.0; // USER_HZ on Linux
    (ticks(11) + ticks(12)) / hz
}

struct Run {
    achieved: f64,
    p50: f64,
    p99: f64,
    ok: u64,
    all: u64,
    cpu_us: f64,
}

fn oha(url: &str, body: &Path, rate: u32, seconds: u32, pid: u32) -> Option<Run> {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/oha");
    let exe = if local.exists() {
        local
    } else {
        PathBuf::from("oha")
    };
    let cpu_before = cpu_seconds(pid);
    let out = Command::new(exe)
        .args([
            "--no-tui",
            "--insecure",
            "--latency-correction",
            "--output-format",
            "json",
        ])
        .args([
            "-c",
            "64",
            "-q",
            &rate.to_string(),
            "-z",
            &format!("{seconds}s"),
        ])
        .args(["-m", "POST", "-H", "Content-Type: application/json"])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}"), "-D"])
        .arg(body)
        .arg(url)
        .output()
        .expect("oha runs (scripts/bench-decision.sh installs it)");
    let cpu = cpu_seconds(pid) - cpu_before;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| {
            eprintln!(
                "no oha report ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .ok()?;
    let ms = |p: &str| report["latencyPercentiles"][p].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let codes = &report["statusCodeDistribution"];
    let ok = codes["200"].as_u64().unwrap_or(0);
    let all: u64 = codes
        .as_object()
        .map(|c| c.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);
    Some(Run {
        achieved: report["summary"]["requestsPerSec"]
            .as_f64()
            .unwrap_or(f64::NAN),
        p50: ms("p50"),
        p99: ms("p99"),
        ok,
        all,
        cpu_us: cpu / all.max(1) as f64 * 1e6,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--serve") {
        let dir = PathBuf::from(&args[at + 1]);
        let api: u16 = args[at + 2].parse().expect("port");
        let noop: u16 = args[at + 3].parse().expect("port");
        serve(&dir, api, noop, Path::new(&args[at + 4]));
        return;
    }
    let accounts: usize = std::env::var("ROLEGATE_BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seconds: u32 = std::env::var("ROLEGATE_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = generate::tree(accounts);
    in_process(load(&dir), accounts);
    if std::env::var("ROLEGATE_BENCH_HTTPS").is_ok_and(|v| v == "0") {
        return;
    }

    let work = std::env::temp_dir().join("rolegate-bench-decision");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    std::fs::write(work.join("tls.crt"), cert.cert.pem()).expect("cert");
    std::fs::write(work.join("tls.key"), cert.signing_key.serialize_pem()).expect("key");
    let body = work.join("check.json");
    std::fs::write(&body, serde_json::to_vec(&question(42)).expect("json")).expect("body");
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port()
    };
    let (api_port, noop_port) = (free(), free());
    let exe = std::env::current_exe().expect("own path");
    let mut child = Server(
        Command::new(exe)
            .args([
                "--serve",
                &dir.display().to_string(),
                &api_port.to_string(),
                &noop_port.to_string(),
                &work.display().to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("server starts"),
    );
    let pid = child.0.id();
    let mut output = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    assert_eq!(output.next().and_then(Result::ok).as_deref(), Some("ready"));
    let check = format!("https://127.0.0.1:{api_port}/v1/check");
    let noop = format!("https://127.0.0.1:{noop_port}/noop");
    // Warm the authentication and authorization caches (and the account's evaluation).
    let _ = oha(&check, &body, 100, 1, pid);
    println!(
        "over HTTPS, oha -c64 open loop, latency-corrected, keep-alive, {seconds} s per run, runs in turn A B A B:"
    );
    for rate in [5_000u32, 20_000] {
        for turn in 1..=2 {
            for (name, url) in [("check", &check), ("no-op", &noop)] {
                match oha(url, &body, rate, seconds, pid) {
                    Some(r) => println!(
                        "  {rate}/s {name:5} run {turn}: achieved {:.0}/s, p50 {:.3} ms, p99 {:.3} ms, server CPU {:.1} µs per request; {} of {} answered 200",
                        r.achieved, r.p50, r.p99, r.cpu_us, r.ok, r.all
                    ),
                    None => println!("  {rate}/s {name} run {turn}: no report"),
                }
            }
        }
    }
    drop(child);
    println!("reproduce: scripts/bench-decision.sh");
}
