//! The figures of the time-bound grants issue (R18): what 10,000 bindings with windows cost the
//! controller (set `ROLEGATE_BENCH_BINDINGS`). Builds two indexes of the same tree, one where every
//! binding has a window and one where none has, and prints side by side (A, B, A, B):
//! the heap the index holds (a counting allocator), the time to evaluate every account, and the
//! timers the controller keeps: one scheduled requeue per object either way (kube-runtime's
//! scheduler keeps the earliest request per object), of which the windows bring forward those
//! whose account has a boundary before the 600 s resync. Run with `cargo bench --bench windows`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ObjectMeta;
use rolegate::api::*;
use rolegate::engine::{self, AccountKey, Index, Timestamp};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const NS: &str = "bench";
const PER_ACCOUNT: usize = 10;

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(NS.into()),
        ..ObjectMeta::default()
    }
}

fn role(name: &str, owner: bool) -> Object {
    Object::Role(Role {
        metadata: meta(name),
        spec: RoleSpec {
            display_name: None,
            scope: if owner {
                RoleScope::Account
            } else {
                RoleScope::Project
            },
            permissions: vec![format!("{name}.use")],
            includes: Vec::new(),
            owner,
            default: false,
            locked: false,
            exclusive_groups: Vec::new(),
            member_types: vec![MemberType::User, MemberType::Service],
            account: None,
        },
        status: None,
    })
}

/// The instant the benchmark evaluates at.
fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).expect("in range")
}

/// `bindings` bindings, `PER_ACCOUNT` per account (one member each, on project p); with
/// `windows`, every one but the owner binding has one, boundaries spread over the next 2 hours.
fn tree(bindings: usize, windows: bool) -> (Index, Vec<AccountKey>) {
    let mut index = Index::new();
    index.apply(role("owner", true));
    for r in 0..PER_ACCOUNT {
        index.apply(role(&format!("r{r}"), false));
    }
    let accounts = bindings.div_ceil(PER_ACCOUNT);
    let mut keys = Vec::with_capacity(accounts);
    for a in 0..accounts {
        let account = format!("a{a}");
        index.apply(Object::Account(Account {
            metadata: meta(&account),
            spec: serde_json::from_value(serde_json::json!({"projects": [{"name": "p"}]}))
                .expect("account spec"),
            status: None,
        }));
        for b in 0..PER_ACCOUNT {
            let member = format!("{account}-m{b}");
            index.apply(Object::Member(Member {
                metadata: meta(&member),
                spec: serde_json::from_value(serde_json::json!({"account": account}))
                    .expect("member spec"),
                status: None,
            }));
            let owner = b == 0;
            let second = 1_800_000_000 + ((a * PER_ACCOUNT + b) % 7200) as i64;
            let at = |s: i64| Timestamp::from_second(s).ok().map(Time);
            index.apply(Object::RoleBinding(RoleBinding {
                metadata: meta(&if owner {
                    format!("{account}-owner")
                } else {
                    format!("{member}-p")
                }),
                spec: RoleBindingSpec {
                    account: account.as_str().into(),
                    member: Some(member.into()),
                    team: None,
                    role: if owner {
                        "owner".into()
                    } else {
                        format!("r{b}").into()
                    },
                    project: (!owner).then(|| "p".into()),
                    valid_from: (windows && !owner).then(|| at(second - 3600)).flatten(),
                    valid_until: (windows && !owner).then(|| at(second)).flatten(),
                },
                status: None,
            }));
        }
        keys.push(AccountKey::new(NS, account));
    }
    (index, keys)
}

struct Run {
    heap: isize,
    evaluate_all: f64,
    due_before_resync: usize,
    distinct_wakeups: usize,
}

fn run(bindings: usize, windows: bool) -> Run {
    let before = LIVE.load(Ordering::Relaxed);
    let (index, keys) = tree(bindings, windows);
    let heap = LIVE.load(Ordering::Relaxed) - before;
    let start = Instant::now();
    let mut due = 0;
    let mut wakeups = BTreeSet::new();
    for key in &keys {
        let eval = engine::evaluate_account(&index, key, now());
        if let Some(b) = eval.next_boundary
            && b.duration_since(now()).as_secs() < 600
        {
            // Every object of the account requeues at its boundary.
            due += eval.bindings.len() + eval.members.len() + 1;
            wakeups.insert(b);
        }
    }
    let evaluate_all = start.elapsed().as_secs_f64();
    drop(index);
    Run {
        heap,
        evaluate_all,
        due_before_resync: due,
        distinct_wakeups: wakeups.len(),
    }
}

fn main() {
    let bindings: usize = std::env::var("ROLEGATE_BENCH_BINDINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    println!(
        "{bindings} bindings in {} accounts of {PER_ACCOUNT}; size_of RoleBindingSpec {} bytes (the window adds 2 × Option<Time> = {} bytes)",
        bindings.div_ceil(PER_ACCOUNT),
        std::mem::size_of::<RoleBindingSpec>(),
        2 * std::mem::size_of::<Option<Time>>()
    );
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..2 {
        with.push(run(bindings, true));
        without.push(run(bindings, false));
    }
    let median = |runs: &[Run], f: fn(&Run) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        (v[0] + v[v.len() - 1]) / 2.0
    };
    for (name, runs) in [("A windows", &with), ("B none", &without)] {
        for (i, r) in runs.iter().enumerate() {
            println!(
                "{name} run {i}: index heap {:.2} MiB, evaluate every account {:.1} ms, objects due before the resync {}, distinct wake-ups {}",
                r.heap as f64 / 1048576.0,
                r.evaluate_all * 1e3,
                r.due_before_resync,
                r.distinct_wakeups
            );
        }
    }
    let heap_a = median(&with, |r| r.heap as f64);
    let heap_b = median(&without, |r| r.heap as f64);
    let eval_a = median(&with, |r| r.evaluate_all);
    let eval_b = median(&without, |r| r.evaluate_all);
    println!(
        "heap: windows {:.2} MiB vs none {:.2} MiB (+{:.1} bytes per binding, ratio {:.3}); evaluate every account: {:.1} ms vs {:.1} ms (ratio {:.2})",
        heap_a / 1048576.0,
        heap_b / 1048576.0,
        (heap_a - heap_b) / bindings as f64,
        heap_a / heap_b,
        eval_a * 1e3,
        eval_b * 1e3,
        eval_a / eval_b
    );
}
