//! The figures of issue 11, side by side on the generated tree (10,000 accounts by default; set
//! `ROLEGATE_BENCH_ACCOUNTS` to change it): parse-only time with serde_yaml and with serde-saphyr
//! into generic values (single-threaded: the baseline of the target), and the release binary's
//! `rolegate check` end to end with its peak RSS. Runs alternate (A, B, C, A, B, C, ...) five
//! times; medians are printed. Build the binary first: `cargo build --release`, then
//! `cargo bench --bench parse`.

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

/// Runs the binary and returns its wall time, exit code, and the peak RSS of the largest child
/// waited for so far (getrusage of the children: the same binary each run, so its peak).
fn run_check(binary: &Path, dir: &Path) -> (Duration, f64, i32) {
    let started = Instant::now();
    let status = std::process::Command::new(binary)
        .arg("check")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("rolegate runs");
    let elapsed = started.elapsed();
    // SAFETY: rusage is plain data that getrusage fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage");
    (
        elapsed,
        usage.ru_maxrss as f64 / 1024.0,
        status.code().unwrap_or(-1),
    )
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
        "tree: {accounts} accounts, {} files, {:.1} MiB of YAML in {}",
        files.len(),
        generate::size_of(&dir) as f64 / (1024.0 * 1024.0),
        dir.display()
    );
    let binary = std::env::var_os("ROLEGATE_BINARY").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/rolegate"),
        PathBuf::from,
    );
    let with_binary = binary.exists();
    if !with_binary {
        println!(
            "{} is missing: build it with cargo build --release",
            binary.display()
        );
    }
    // Warm the file cache.
    let documents = serde_yaml_parse(&files);
    let (mut yaml, mut saphyr, mut check, mut rss) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        let started = Instant::now();
        assert_eq!(serde_yaml_parse(&files), documents);
        yaml.push(started.elapsed());
        let started = Instant::now();
        assert_eq!(saphyr_parse(&files), documents);
        saphyr.push(started.elapsed());
        if with_binary {
            let (elapsed, peak, code) = run_check(&binary, &dir);
            assert_eq!(code, 1, "the tree has one R5 conflict per ten accounts");
            check.push(elapsed);
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
    if with_binary {
        let check = median(check);
        rss.sort_by(f64::total_cmp);
        println!(
            "rolegate check (release binary, end to end):      median {:.3} s, {:.2}x serde_yaml parse-only",
            check.as_secs_f64(),
            check.as_secs_f64() / yaml.as_secs_f64()
        );
        println!(
            "rolegate check peak RSS (largest run):             {:.0} MiB",
            rss[rss.len() - 1]
        );
    }
    println!("reproduce: cargo build --release && cargo bench --bench parse");
}
