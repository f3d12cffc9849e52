//! The webhook's figures: throughput and latency over TLS on loopback with keep-alive and 64
//! connections, against an index of 100k bindings and 50k members, with a mix of allowed, denied
//! and warned reviews; and the server's peak RSS.
//!
//! Two load shapes: wrk, closed-loop, as fast as the 2 cores go (throughput; latency there is
//! queueing at saturation), and oha, open-loop at fixed rates with latency correction
//! (coordinated omission), which is the latency a caller sees at that rate.
//!
//! `scripts/bench-webhook.sh` installs wrk and oha and runs `cargo bench --bench webhook`. The
//! server runs in a child process (this binary with `--serve`) so its RSS is its own.

// Shared with the check bench, which also uses the parts this one does not.
#[allow(dead_code)]
#[path = "support/generate.rs"]
mod generate;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

fn status_kib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Child: load the tree into the index, then serve until killed.
fn serve(dir: &Path, port: u16, tls: &Path) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // File by file, as reflector pages arrive: the index, not the parse, is what stays resident.
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tree")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut index = rolegate::engine::Index::new();
    for file in files {
        let (objects, errors) = rolegate::check::load(&[file], &mut std::io::empty());
        assert!(errors.is_empty(), "the tree parses");
        for found in objects {
            index.apply(found.object);
        }
    }
    let shared = rolegate::state::Shared::new();
    shared.load(index);
    let metrics = Arc::new(rolegate::metrics::Metrics::default());
    let exposition = Arc::clone(&metrics);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let serve = rolegate::webhook::serve(
            addr,
            tls.join("tls.crt"),
            tls.join("tls.key"),
            shared,
            metrics,
            std::future::pending(),
        );
        let server = tokio::spawn(serve);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        println!("ready");
        // The parent asks for /metrics' text on stdin once the load is done.
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                if line.is_ok_and(|l| l == "metrics") {
                    println!("{}\nend", exposition.encode());
                }
            }
        });
        let _ = server.await;
    });
}

fn review(i: usize, accounts: usize) -> String {
    let j = (i * 7919) % accounts;
    let a = format!("acct-{j}");
    if generate::teams() {
        return team_review(i, &a);
    }
    let (member, role, project) = match i % 3 {
        0 => (format!("{a}-m3"), "support", None), // allowed
        1 => (format!("{a}-m2"), "project-admin", Some("shop")), // denied, R5
        _ => (format!("{a}-m1"), "billing", None), // warned, R9
    };
    binding_review(i, &a, &format!("member: {member}"), role, project)
}

/// With teams (`ROLEGATE_BENCH_TEAMS=1`), five shapes in turn: a direct binding allowed, one
/// denied by R5 through the member's team, one warned by R9, a team binding allowed, and an
/// UPDATE of a team that adds a member.
fn team_review(i: usize, a: &str) -> String {
    match i % 5 {
        0 => binding_review(i, a, &format!("member: {a}-m3"), "support", None),
        // m2 holds project-viewer on shop through team ops.
        1 => binding_review(
            i,
            a,
            &format!("member: {a}-m2"),
            "project-admin",
            Some("shop"),
        ),
        2 => binding_review(i, a, &format!("member: {a}-m1"), "billing", None),
        3 => binding_review(i, a, &format!("team: {a}-dev"), "auditor", None),
        _ => {
            let team = |members: &[usize]| {
                let listed: Vec<String> = members.iter().map(|m| format!("{a}-m{m}")).collect();
                serde_json::json!({"apiVersion": "rolegate.dev/v1alpha1", "kind": "Team",
                    "metadata": {"name": format!("{a}-ops"), "namespace": "bench"},
                    "spec": {"account": a, "members": listed}})
            };
            admission_review(
                i,
                "Team",
                "teams",
                &format!("{a}-ops"),
                "UPDATE",
                team(&[1, 2, 5, 3]),
                Some(team(&[1, 2, 5])),
            )
        }
    }
}

/// A CREATE of a RoleBinding; `subject` is `member: NAME` or `team: NAME`.
fn binding_review(i: usize, a: &str, subject: &str, role: &str, project: Option<&str>) -> String {
    let (key, value) = subject.split_once(": ").expect("a subject");
    let mut spec = serde_json::json!({"account": a, "role": role});
    spec[key] = value.into();
    if let Some(p) = project {
        spec["project"] = p.into();
    }
    let name = format!("{a}-wrk-{i}");
    let object = serde_json::json!({"apiVersion": "rolegate.dev/v1alpha1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": "bench"}, "spec": spec});
    admission_review(
        i,
        "RoleBinding",
        "rolebindings",
        &name,
        "CREATE",
        object,
        None,
    )
}

fn admission_review(
    i: usize,
    kind: &str,
    resource: &str,
    name: &str,
    operation: &str,
    object: serde_json::Value,
    old: Option<serde_json::Value>,
) -> String {
    let mut request = serde_json::json!({
        "uid": format!("uid-{i}"),
        "kind": {"group": "rolegate.dev", "version": "v1alpha1", "kind": kind},
        "resource": {"group": "rolegate.dev", "version": "v1alpha1", "resource": resource},
        "name": name,
        "namespace": "bench",
        "operation": operation,
        "userInfo": {"username": "platform-admin", "groups": ["system:authenticated"]},
        "object": object,
        "dryRun": true
    });
    if let Some(old) = old {
        request["oldObject"] = old;
    }
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request
    })
    .to_string()
}

const WRK_SCRIPT: &str = r#"
local bodies = {}
local n = 0
init = function(args)
  for i = 1, #args do
    local f = assert(io.open(args[i], "r"))
    bodies[#bodies + 1] = f:read("*a")
    f:close()
  end
end
request = function()
  n = n + 1
  return wrk.format("POST", "/validate", { ["Content-Type"] = "application/json" }, bodies[(n % #bodies) + 1])
end
"#;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--serve") {
        let dir = PathBuf::from(&args[at + 1]);
        let port: u16 = args[at + 2].parse().expect("port");
        serve(&dir, port, Path::new(&args[at + 3]));
        return;
    }
    let accounts: usize = std::env::var("ROLEGATE_BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seconds: u32 = std::env::var("ROLEGATE_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = generate::tree(accounts);
    let work = std::env::temp_dir().join("rolegate-bench-webhook");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    std::fs::write(work.join("tls.crt"), cert.cert.pem()).expect("cert");
    std::fs::write(work.join("tls.key"), cert.signing_key.serialize_pem()).expect("key");
    let mut bodies = Vec::new();
    for i in 0..300 {
        let path = work.join(format!("review-{i}.json"));
        std::fs::write(&path, review(i, accounts)).expect("body");
        bodies.push(path);
    }
    std::fs::write(work.join("mix.lua"), WRK_SCRIPT).expect("script");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let exe = std::env::current_exe().expect("own path");
    let mut child = Server(
        Command::new(exe)
            .args([
                "--serve",
                &dir.display().to_string(),
                &port.to_string(),
                &work.display().to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("server starts"),
    );
    let pid = child.0.id();
    let mut output = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    assert_eq!(
        output.next().and_then(Result::ok).as_deref(),
        Some("ready"),
        "server ready"
    );
    let rss_loaded = status_kib(pid, "VmRSS:");

    let url = format!("https://127.0.0.1:{port}/validate");
    let out = Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(work.join("mix.lua"))
        .arg(&url)
        .arg("--")
        .args(&bodies)
        .output()
        .expect("wrk runs (scripts/bench-webhook.sh installs it)");
    let report = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    }
    let lines = work.join("reviews.jsonl");
    let jsonl: Vec<String> = (0..300).map(|i| review(i, accounts)).collect();
    std::fs::write(&lines, jsonl.join("\n") + "\n").expect("bodies");
    let open_loop: Vec<String> = RATES
        .iter()
        .map(|&rate| oha(&url, &lines, rate, seconds))
        .collect();
    let decision = mean_decision(&mut child.0, &mut output);
    let peak = status_kib(pid, "VmHWM:");
    let rss_after = status_kib(pid, "VmRSS:");
    drop(child);

    let field = |prefix: &str| {
        report
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(|l| l.trim().to_owned())
    };
    let (members, teams, bindings, _) = generate::per_account();
    println!(
        "index: {accounts} accounts, {} bindings, {} members, {} teams; 300 distinct reviews ({})",
        accounts * bindings,
        accounts * members,
        accounts * teams,
        if generate::teams() {
            "1/5 each: direct binding allowed, R5-denied through a team, R9-warned; team binding allowed; team UPDATE adding a member"
        } else {
            "1/3 allowed, 1/3 R5-denied, 1/3 R9-warned"
        }
    );
    println!("wrk -t2 -c64 -d{seconds}s over TLS on loopback, keep-alive:");
    for line in [
        "Requests/sec",
        "50%",
        "90%",
        "99%",
        "Non-2xx",
        "Socket errors",
    ] {
        if let Some(l) = field(line) {
            println!("  {l}");
        }
    }
    println!("oha -c64, open loop at a fixed rate, latency-corrected, over TLS, keep-alive:");
    for line in open_loop {
        println!("  {line}");
    }
    println!("{decision}");
    println!(
        "server RSS: {:.0} MiB after loading, {:.0} MiB after the runs, peak {:.0} MiB (loading included)",
        rss_loaded / 1024.0,
        rss_after / 1024.0,
        peak / 1024.0
    );
    println!("reproduce: scripts/bench-webhook.sh");
}

/// The server's mean decision time over every review of the runs, from its `/metrics` text
/// (`rolegate_admission_duration_seconds`: decoding the AdmissionReview, converting the objects,
/// CEL and the engine's decision).
fn mean_decision(
    child: &mut std::process::Child,
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
) -> String {
    use std::io::Write;
    let asked = child
        .stdin
        .as_mut()
        .is_some_and(|stdin| writeln!(stdin, "metrics").is_ok());
    if !asked {
        return "mean decision time: the server did not take the request".to_owned();
    }
    let (mut sum, mut count) = (0.0, 0.0);
    for line in lines.map_while(Result::ok).take_while(|l| l != "end") {
        let value = |prefix: &str| {
            line.strip_prefix(prefix)
                .and_then(|rest| rest.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        sum += value("rolegate_admission_duration_seconds_sum").unwrap_or(0.0);
        count += value("rolegate_admission_duration_seconds_count").unwrap_or(0.0);
    }
    format!(
        "mean decision time (server /metrics, rolegate_admission_duration_seconds): {:.1} µs over {count:.0} reviews",
        sum / count * 1e6
    )
}

/// The server child, killed when the run ends or panics: a panic (wrk or oha missing) must not
/// leave it holding the output pipe, or the run hangs instead of failing.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Open-loop request rates for oha, per second.
const RATES: [u32; 2] = [5_000, 10_000];

/// Runs oha at `rate` requests per second for `seconds` and summarises its JSON report.
fn oha(url: &str, bodies: &Path, rate: u32, seconds: u32) -> String {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/oha");
    let exe = if local.exists() {
        local
    } else {
        PathBuf::from("oha")
    };
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
        .args(["-m", "POST", "-H", "Content-Type: application/json", "-Z"])
        .arg(bodies)
        .arg(url)
        .output()
        .expect("oha runs (scripts/bench-webhook.sh installs it)");
    let report: serde_json::Value = match serde_json::from_slice(&out.stdout) {
        Ok(report) => report,
        Err(e) => {
            return format!(
                "{rate}/s: no report ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    let ms = |p: &str| report["latencyPercentiles"][p].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let codes = &report["statusCodeDistribution"];
    let ok = codes["200"].as_u64().unwrap_or(0);
    let all: u64 = codes
        .as_object()
        .map(|c| c.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);
    format!(
        "{rate}/s: achieved {:.0} req/s, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {ok} of {all} answered 200",
        report["summary"]["requestsPerSec"]
            .as_f64()
            .unwrap_or(f64::NAN),
        ms("p50"),
        ms("p90"),
        ms("p99"),
        report["summary"]["slowest"].as_f64().unwrap_or(f64::NAN) * 1000.0,
    )
}
