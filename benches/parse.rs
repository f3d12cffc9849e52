//! The figures of issue 11, side by side on the generated tree (10,000 accounts by default; set
//! `ROLEGATE_BENCH_ACCOUNTS` to change it): parse-only time with serde_yaml and with serde-saphyr
//! into generic values (single-threaded: the baseline of the target), and the release binary's
//! `rolegate check` end to end with its peak RSS. Runs alternate (A, B, C, A, B, C, ...) five
//! times; medians are printed. Build the binary first: `cargo build --release`, then
//! `cargo bench --bench parse`; `ROLEGATE_BINARIES=old,new` compares builds in the same rotation.

#[path = "support/generate.rs"]
mod generate;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("bench dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    files
}

/// Reads every file and parses every document into `serde_yaml::Value`; returns the documents.
fn serde_yaml_parse(files: &[PathBuf]) -> usize {
    let mut documents = 0;
    for file in files {
        let text = std::fs::read_to_string(file).expect("read");
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).expect("parses");
            documents += usize::from(!value.is_null());
        }
    }
    documents
}

/// The same with serde-saphyr.
fn saphyr_parse(files: &[PathBuf]) -> usize {
    let mut documents = 0;
    for file in files {
        let text = std::fs::read_to_string(file).expect("read");
        // The default budget stops at 1,024 documents a stream; a bench file holds more.
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! { max_documents: usize::MAX },
        };
        let values: Vec<serde_yaml::Value> =
            serde_saphyr::from_multiple_with_options(&text, options).expect("parses");
        documents += values.iter().filter(|v| !v.is_null()).count();
    }
    documents
}

/// Runs the binary and returns its wall time, its own peak RSS (wait4 reaps it with its usage)
/// and its exit code.
fn run_check(binary: &Path, dir: &Path) -> (Duration, f64, i32) {
    let started = Instant::now();
    #[expect(
        clippy::zombie_processes,
        reason = "wait4 below reaps it, with its usage"
    )]
    let child = std::process::Command::new(binary)
        .arg("check")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rolegate runs");
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; the child is reaped here, once.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let elapsed = started.elapsed();
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (elapsed, usage.ru_maxrss as f64 / 1024.0, code)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let accounts: usize = std::env::var("ROLEGATE_BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rounds: usize = std::env::var("ROLEGATE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = generate::tree(accounts);
    let files = files(&dir);
    println!(
        "tree: {accounts} accounts ({} objects each), {} files, {:.1} MiB of YAML in {}",
        generate::per_account().3,
        files.len(),
        generate::size_of(&dir) as f64 / (1024.0 * 1024.0),
        dir.display()
    );
    // `ROLEGATE_BINARIES=a,b` compares builds side by side: each round runs every one in turn.
    let binaries: Vec<PathBuf> = match std::env::var("ROLEGATE_BINARIES") {
        Ok(list) => list.split(',').map(PathBuf::from).collect(),
        Err(_) => vec![std::env::var_os("ROLEGATE_BINARY").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/rolegate"),
            PathBuf::from,
        )],
    };
    let binaries: Vec<PathBuf> = binaries
        .into_iter()
        .filter(|binary| {
            let there = binary.exists();
            if !there {
                println!(
                    "{} is missing: build it with cargo build --release",
                    binary.display()
                );
            }
            there
        })
        .collect();
    // Warm the file cache.
    let documents = serde_yaml_parse(&files);
    let (mut yaml, mut saphyr) = (vec![], vec![]);
    let mut check = vec![(vec![], vec![]); binaries.len()];
    for _ in 0..rounds {
        let started = Instant::now();
        assert_eq!(serde_yaml_parse(&files), documents);
        yaml.push(started.elapsed());
        let started = Instant::now();
        assert_eq!(saphyr_parse(&files), documents);
        saphyr.push(started.elapsed());
        for (binary, (times, rss)) in binaries.iter().zip(&mut check) {
            let (elapsed, peak, code) = run_check(binary, &dir);
            assert_eq!(code, 1, "the tree has one R5 conflict per ten accounts");
            times.push(elapsed);
            rss.push(peak);
        }
    }
    let yaml = median(yaml);
    println!(
        "parse-only, serde_yaml 0.9 into Value, 1 thread:   median {:.3} s ({documents} documents)",
        yaml.as_secs_f64()
    );
    println!(
        "parse-only, serde-saphyr 2 into Value, 1 thread:   median {:.3} s ({:.2}x serde_yaml)",
        median(saphyr.clone()).as_secs_f64(),
        median(saphyr).as_secs_f64() / yaml.as_secs_f64()
    );
    for (binary, (times, mut rss)) in binaries.iter().zip(check) {
        let check = median(times);
        rss.sort_by(f64::total_cmp);
        println!("rolegate check: {}", binary.display());
        println!(
            "  end to end (release binary):                     median {:.3} s, {:.2}x serde_yaml parse-only",
            check.as_secs_f64(),
            check.as_secs_f64() / yaml.as_secs_f64()
        );
        println!(
            "  peak RSS (median of runs):                       {:.0} MiB",
            rss[rss.len() / 2]
        );
    }
    println!("reproduce: cargo build --release && cargo bench --bench parse");
}
