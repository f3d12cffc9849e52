//! The figures of the engine issue, on a generated tree (10,000 accounts by default; set
//! `ROLEGATE_BENCH_ACCOUNTS` to change it):
//! parse-only time, full `check` time and its ratio to parse-only, the median admission decision
//! for CREATE, UPDATE and DELETE, and peak RSS. Run with `cargo bench --bench check`.

#[path = "support/generate.rs"]
mod generate;

use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rolegate::api::{Kind, Object, RoleBinding, RoleBindingSpec};
use rolegate::engine::{self, Decision, Index, Operation, Review, SchemaRules, Timestamp};

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn binding(name: &str, account: &str, member: &str, role: &str, project: Option<&str>) -> Object {
    let mut b = RoleBinding::new(
        name,
        RoleBindingSpec {
            account: account.into(),
            member: Some(member.into()),
            team: None,
            role: role.into(),
            project: project.map(Into::into),
            valid_from: None,
            valid_until: None,
        },
    );
    b.metadata.namespace = Some("bench".into());
    Object::RoleBinding(b)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let accounts: usize = std::env::var("ROLEGATE_BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = generate::tree(accounts);
    let (members, teams, bindings, _) = generate::per_account();
    println!(
        "tree: {accounts} accounts, {} bindings, {} members, {} teams, {:.1} MiB of YAML in {}",
        accounts * bindings,
        accounts * members,
        accounts * teams,
        generate::size_of(&dir) as f64 / (1024.0 * 1024.0),
        dir.display()
    );
    let paths = vec![dir.clone()];

    // Warm the file cache, then time parse-only and full check, best of three each.
    let _ = rolegate::check::load(&paths, &mut std::io::empty());
    let mut parse = Duration::MAX;
    let mut loaded = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let (objects, errors) = rolegate::check::load(&paths, &mut std::io::empty());
        parse = parse.min(started.elapsed());
        assert!(errors.is_empty(), "the generated tree parses");
        loaded = objects;
    }
    let mut full = Duration::MAX;
    let mut summary = None;
    for _ in 0..3 {
        let started = Instant::now();
        let report = rolegate::check::check(
            &paths,
            &[],
            &mut std::io::empty(),
            rolegate::engine::Timestamp::now(),
        )
        .expect("the tree loads");
        full = full.min(started.elapsed());
        summary = Some(report.summary);
    }
    let summary = summary.expect("ran");
    assert_eq!(
        summary.errors,
        accounts.div_ceil(10),
        "one R5 conflict per ten accounts"
    );
    println!("parse-only:  {:.3} s", parse.as_secs_f64());
    println!(
        "full check:  {:.3} s ({:.2}x parse-only; {} objects, {} errors)",
        full.as_secs_f64(),
        full.as_secs_f64() / parse.as_secs_f64(),
        summary.objects,
        summary.errors
    );

    let stored: Vec<Object> = loaded.into_iter().map(|found| found.object).collect();
    let mut index = Index::new();
    for object in &stored {
        index.apply(object.clone());
    }
    let mut reviews = Vec::new();
    for i in 0..20_000usize {
        let j = (i * 7919) % accounts;
        let a = format!("acct-{j}");
        let object = match i % 3 {
            // Allowed: a new account-level role for the service member.
            0 => binding(
                &format!("{a}-new-{i}"),
                &a,
                &format!("{a}-m3"),
                "support",
                None,
            ),
            // Denied, R5: project-admin beside project-viewer on shop.
            1 => binding(
                &format!("{a}-new-{i}"),
                &a,
                &format!("{a}-m2"),
                "project-admin",
                Some("shop"),
            ),
            // Warned, R9: billing again for m1.
            _ => binding(
                &format!("{a}-new-{i}"),
                &a,
                &format!("{a}-m1"),
                "billing",
                None,
            ),
        };
        reviews.push(object);
    }
    let creates: Vec<(Option<&Object>, Option<&Object>)> =
        reviews.iter().map(|o| (Some(o), None)).collect();
    let outcomes = decide(&index, "CREATE RoleBinding", Operation::Create, &creates);
    println!(
        "  CREATE outcomes: {} allowed, {} denied, {} warned, against {} objects",
        outcomes[0],
        outcomes[1],
        outcomes[2],
        index.len()
    );
    updates_and_deletes(&index, &stored);
    println!("peak RSS:    {:.0} MiB", peak_rss_mib());

    let binary = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/rolegate");
    if binary.exists() {
        let started = Instant::now();
        let out = std::process::Command::new(&binary)
            .arg("check")
            .arg(&dir)
            .output()
            .expect("rolegate runs");
        println!(
            "rolegate check (release binary, end to end): {:.3} s, exit {}",
            started.elapsed().as_secs_f64(),
            out.status.code().unwrap_or(-1)
        );
    }
    println!("reproduce: cargo build --release && cargo bench --bench check");
}

/// Times one kind of decision both ways, alternating per request (and which goes first) so a
/// noisy host slows both alike: as the webhook makes it (`SchemaRules::Enforced`: the API server ran the CRDs' CEL
/// rules before calling it) and as `check --base` makes it (`SchemaRules::Evaluate`: CEL
/// included). Returns the webhook's outcomes: allowed, denied, allowed with warnings.
fn decide(
    index: &Index,
    label: &str,
    operation: Operation,
    changes: &[(Option<&Object>, Option<&Object>)],
) -> [usize; 3] {
    let mut times = [Vec::new(), Vec::new()];
    let mut outcomes = [0usize; 3];
    let ways = [SchemaRules::Enforced, SchemaRules::Evaluate];
    for (i, &(object, old_object)) in changes.iter().enumerate() {
        let review = Review {
            operation,
            object,
            old_object,
            requester: None,
        };
        // Whichever runs second finds the caches warm: take turns going first.
        for way in [i % 2, 1 - i % 2] {
            let schema = ways[way];
            let started = Instant::now();
            let decision = engine::admit_with(index, &review, Timestamp::now(), schema);
            times[way].push(started.elapsed());
            if way == 0 {
                outcomes[match decision {
                    Decision::Allow { warnings } if warnings.is_empty() => 0,
                    Decision::Deny(_) => 1,
                    Decision::Allow { .. } => 2,
                }] += 1;
            }
        }
    }
    let [webhook, offline] = times.map(|mut t| {
        t.sort();
        (percentile(&t, 0.5), percentile(&t, 0.99))
    });
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "admission {label}: webhook median {:.1} µs, p99 {:.1} µs | with CEL (check) median {:.1} µs, p99 {:.1} µs | {} decisions, {} denied",
        us(webhook.0),
        us(webhook.1),
        us(offline.0),
        us(offline.1),
        changes.len(),
        outcomes[1],
    );
    outcomes
}

/// UPDATE and DELETE of the tree's stored bindings, next to CREATE: a spec change the CRD
/// allows (a window closes at the end of 2099, so R5 over windows judges the member again), one
/// it forbids (the role moved: R11, refused by the API server's CEL before any webhook runs, so
/// only `check` meets it), a metadata-only change (a label, allowed before any rule runs), and a
/// delete (owner bindings denied by R3).
type Change = dyn Fn(&Object) -> Object;

fn updates_and_deletes(index: &Index, stored: &[Object]) {
    let bindings: Vec<&Object> = stored
        .iter()
        .filter(|o| o.kind() == Kind::RoleBinding)
        .step_by(3)
        .take(20_000)
        .collect();
    let windowed = |old: &Object| {
        let mut new = old.clone();
        if let Object::RoleBinding(b) = &mut new {
            b.spec.valid_until = "2099-12-31T23:59:59Z".parse().ok().map(Time);
        }
        new
    };
    let moved = |old: &Object| {
        let mut new = old.clone();
        if let Object::RoleBinding(b) = &mut new {
            b.spec.role = "billing".into();
            b.spec.project = None;
        }
        new
    };
    let labelled = |old: &Object| {
        let mut new = old.clone();
        new.meta_mut()
            .labels
            .get_or_insert_default()
            .insert("app.kubernetes.io/instance".into(), "gitops".into());
        new
    };
    let cases: [(&str, Operation, &Change); 4] = [
        ("UPDATE spec.validUntil", Operation::Update, &windowed),
        ("UPDATE spec.role (R11)", Operation::Update, &moved),
        ("UPDATE metadata", Operation::Update, &labelled),
        ("DELETE", Operation::Delete, &|o: &Object| o.clone()),
    ];
    for (label, operation, change) in cases {
        let changed: Vec<Object> = bindings.iter().map(|o| change(o)).collect();
        let changes: Vec<(Option<&Object>, Option<&Object>)> = bindings
            .iter()
            .zip(&changed)
            .map(|(old, new)| ((operation != Operation::Delete).then_some(new), Some(*old)))
            .collect();
        decide(index, label, operation, &changes);
    }
}
