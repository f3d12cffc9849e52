//! `rolegate explain` and `rolegate who-can`: the CLI around [`engine::explain`]. The objects come
//! from manifests (the loader `check` uses) or from a cluster (a list of each kind); the answers
//! come from the engine's evaluation of the account, rendered as a table or JSON.

mod live;
mod table;

use std::io::Read;
use std::path::PathBuf;

use serde::Serialize;

pub use live::cluster_index;

use crate::check;
use crate::engine::explain::{self, Answer, Explanation};
use crate::engine::{AccountKey, Index, Timestamp, evaluate_account};

/// How answers are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// What stops an answer: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Input(Vec<check::Error>),
    #[error("reading the cluster: {0}")]
    Cluster(String),
    #[error("{0}")]
    Question(#[from] explain::Error),
    #[error("{0}")]
    Account(String),
}

/// Where the objects come from.
pub enum Source<'a> {
    Paths(&'a [PathBuf]),
    /// An index already read from a cluster.
    Index(Index),
}

impl Source<'_> {
    fn index(self, stdin: &mut dyn Read) -> Result<Index, Error> {
        match self {
            Source::Paths(paths) => check::index_of(paths, stdin).map_err(Error::Input),
            Source::Index(index) => Ok(index),
        }
    }
}

/// The account a question is about: `--account` (and `--namespace`), or the only account that
/// has the member.
fn account(
    index: &Index,
    account: Option<&str>,
    namespace: Option<&str>,
    member: Option<&str>,
) -> Result<AccountKey, Error> {
    let candidates: Vec<AccountKey> = match member {
        Some(m) if account.is_none() => explain::accounts_of_member(index, m),
        _ => index.accounts().collect(),
    };
    let matching: Vec<AccountKey> = candidates
        .into_iter()
        .filter(|k| account.is_none_or(|a| k.account == a))
        .filter(|k| namespace.is_none_or(|n| k.namespace == n))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::Account(match (account, member) {
            (Some(a), _) => format!("account {a} not found"),
            (None, Some(m)) => format!("member {m} is in no account"),
            (None, None) => "no account found".to_owned(),
        })),
        many => Err(Error::Account(format!(
            "several accounts match ({}); name one with --account (and --namespace)",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `explain` as printed: the explanation, and the answer when a permission was asked. The
/// decision API's `lookup/permissions` answers the same JSON.
#[derive(Serialize)]
pub struct Explained<'a> {
    #[serde(flatten)]
    pub explanation: &'a Explanation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<&'a Answer>,
}

/// What both questions share: which account, at which project, how printed, and when.
pub struct Question<'a> {
    pub account: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub project: Option<&'a str>,
    pub output: Output,
    /// The instant time-bound grants are judged at (R18).
    pub at: Timestamp,
}

/// Runs `explain`: the text to print and the exit code (0, or 1 for a permission not held).
pub fn run_explain(
    source: Source<'_>,
    member: &str,
    permission: Option<&str>,
    q: &Question<'_>,
    stdin: &mut dyn Read,
) -> Result<(String, u8), Error> {
    let index = source.index(stdin)?;
    let key = account(&index, q.account, q.namespace, Some(member))?;
    let eval = evaluate_account(&index, &key, q.at);
    let explanation = explain::explain(&index, &eval, member)?;
    let answer = match permission {
        Some(p) => Some(explain::can(&explanation, &eval, p, q.project)?),
        None => None,
    };
    let code = u8::from(answer.as_ref().is_some_and(|a| !a.allowed));
    let text = match q.output {
        Output::Json => json(&Explained {
            explanation: &explanation,
            answer: answer.as_ref(),
        }),
        Output::Table => table::explain(&explanation, answer.as_ref()),
    };
    Ok((text, code))
}

/// `who-can` as printed; the decision API's `lookup/subjects` answers the same JSON.
#[derive(Serialize)]
pub struct WhoCan<'a> {
    pub namespace: &'a str,
    pub account: &'a str,
    pub permission: &'a str,
    pub project: Option<&'a str>,
    pub members: &'a [Answer],
}

/// Runs `who-can`: the members that hold `permission`, exit code 0.
pub fn run_who_can(
    source: Source<'_>,
    permission: &str,
    q: &Question<'_>,
    stdin: &mut dyn Read,
) -> Result<String, Error> {
    let index = source.index(stdin)?;
    let key = account(&index, q.account, q.namespace, None)?;
    let eval = evaluate_account(&index, &key, q.at);
    let project = q.project;
    let members = explain::who_can(&index, &eval, permission, project)?;
    Ok(match q.output {
        Output::Json => json(&WhoCan {
            namespace: &key.namespace,
            account: &key.account,
            permission,
            project,
            members: &members,
        }),
        Output::Table => table::who_can(&key, permission, project, &members),
    })
}

fn json(value: &impl Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}
