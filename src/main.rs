//! The `rolegate` binary: `check` (offline), `explain` and `who-can` (offline or live), `crds`
//! (print the CRDs), `rules` (the rule table). Installed as `kubectl-rolegate` it is a kubectl
//! plugin: kubectl passes the arguments after `rolegate`, so nothing depends on the name.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rolegate::check::{self, Format};
use rolegate::explain;

#[derive(Parser)]
#[command(
    name = "rolegate",
    version,
    about = "Account roles for hosting and cloud platforms, as Kubernetes resources"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Judge manifests offline with the same rules as the webhook and the controller.
    ///
    /// Exit code 0 when there is no error (warnings allowed), 1 on any error, 2 when input cannot
    /// be read or parsed.
    Check {
        /// Files or directories of manifests; `-` reads standard input (e.g. `kustomize build`).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The previous desired state (e.g. the merge base of a pull request): transitions from it
        /// are judged as the webhook would judge them. Repeatable.
        #[arg(long)]
        base: Vec<PathBuf>,
        /// text, json, github (workflow commands), sarif (SARIF 2.1.0) or junit (JUnit XML).
        #[arg(long, short, value_enum, default_value_t = Format::Text)]
        output: Format,
        /// The instant to judge at, RFC 3339 (e.g. 2026-07-01T00:00:00Z): what the tree grants
        /// then (R18 windows). Default: now.
        #[arg(long, value_name = "TIME")]
        at: Option<k8s_openapi::jiff::Timestamp>,
    },
    /// Every path by which a member holds each role and permission, and the grants it does not
    /// receive. With `--permission`, answers yes (exit 0) or no (exit 1) first, like
    /// `kubectl auth can-i`. Exit code 2 when input cannot be read or the question names nothing.
    Explain {
        /// The Member's name.
        member: String,
        /// The account (default: the only account that has the member).
        #[arg(long)]
        account: Option<String>,
        /// Answer whether the member holds this permission.
        #[arg(long)]
        permission: Option<String>,
        /// With --permission: at this project (default: at account level).
        #[arg(long, requires = "permission")]
        project: Option<String>,
        #[command(flatten)]
        from: From,
    },
    /// The members of an account that hold a permission, each with the binding (and team) it
    /// comes from.
    WhoCan {
        permission: String,
        /// The account (default: the only account in the input).
        #[arg(long)]
        account: Option<String>,
        /// At this project (default: at account level).
        #[arg(long)]
        project: Option<String>,
        #[command(flatten)]
        from: From,
    },
    /// Print the five CustomResourceDefinitions as multi-document YAML, or write one file each.
    Crds {
        /// Write `<plural>.rolegate.dev.yaml` files into this directory instead of printing.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print the rule table (id, name, reason, rule) as Markdown.
    Rules,
    /// Run the controller against the cluster of the current kubeconfig (or in-cluster).
    Run(Box<rolegate::runtime::RunArgs>),
}

/// Where `explain` and `who-can` read objects: manifests, or the cluster.
#[derive(clap::Args)]
struct From {
    /// Files or directories of manifests; `-` reads standard input.
    #[arg(required_unless_present = "cluster", conflicts_with = "cluster")]
    paths: Vec<PathBuf>,
    /// Read the five kinds from the cluster of the current kubeconfig instead of manifests.
    #[arg(long)]
    cluster: bool,
    /// The namespace (with --cluster, default: the kubeconfig's).
    #[arg(long, short)]
    namespace: Option<String>,
    /// With --cluster: every namespace.
    #[arg(long, short = 'A', requires = "cluster")]
    all_namespaces: bool,
    /// table or json.
    #[arg(long, short, value_enum, default_value_t = explain::Output::Table)]
    output: explain::Output,
    /// Judge time-bound grants (R18) at this instant (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME")]
    at: Option<k8s_openapi::jiff::Timestamp>,
}

impl From {
    fn question<'a>(
        &'a self,
        account: Option<&'a str>,
        project: Option<&'a str>,
    ) -> explain::Question<'a> {
        explain::Question {
            account,
            namespace: self.namespace.as_deref(),
            project,
            output: self.output,
            at: self.at.unwrap_or_else(k8s_openapi::jiff::Timestamp::now),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            paths,
            base,
            output,
            at,
        } => run_check(
            &paths,
            &base,
            output,
            at.unwrap_or_else(k8s_openapi::jiff::Timestamp::now),
        ),
        Command::Explain {
            member,
            account,
            permission,
            project,
            from,
        } => run_explain(&from, |source| {
            let question = from.question(account.as_deref(), project.as_deref());
            let stdin = &mut std::io::stdin();
            explain::run_explain(source, &member, permission.as_deref(), &question, stdin)
        }),
        Command::WhoCan {
            permission,
            account,
            project,
            from,
        } => run_explain(&from, |source| {
            let question = from.question(account.as_deref(), project.as_deref());
            explain::run_who_can(source, &permission, &question, &mut std::io::stdin())
                .map(|text| (text, 0))
        }),
        Command::Crds { dir: None } => print(
            &rolegate::api::crd_files()
                .into_iter()
                .map(|(_, y)| format!("---\n{y}"))
                .collect::<String>(),
        ),
        Command::Crds { dir: Some(dir) } => write_crds(&dir),
        Command::Rules => print(&rules_table()),
        Command::Run(args) => run(*args),
    }
}

fn run_check(
    paths: &[PathBuf],
    base: &[PathBuf],
    output: Format,
    at: k8s_openapi::jiff::Timestamp,
) -> ExitCode {
    match check::check(paths, base, &mut std::io::stdin(), at) {
        Ok(report) => {
            let _ = std::io::stdout().write_all(report.render(output).as_bytes());
            eprintln!("{}", report.summary_line());
            ExitCode::from(report.exit_code())
        }
        Err(errors) => {
            let _ = std::io::stdout().write_all(check::render_errors(&errors, output).as_bytes());
            for e in errors {
                eprintln!("{e}");
            }
            ExitCode::from(2)
        }
    }
}

/// Reads the source `from` names and prints the answer.
fn run_explain(
    from: &From,
    answer: impl FnOnce(explain::Source<'_>) -> Result<(String, u8), explain::Error>,
) -> ExitCode {
    let source = if from.cluster {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = match tokio::runtime::Runtime::new() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: starting the async runtime: {e}");
                return ExitCode::from(2);
            }
        };
        let namespace = from.namespace.as_deref();
        match runtime.block_on(explain::cluster_index(namespace, from.all_namespaces)) {
            Ok(index) => explain::Source::Index(index),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        explain::Source::Paths(&from.paths)
    };
    match answer(source) {
        Ok((text, code)) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: rolegate::runtime::RunArgs) -> ExitCode {
    rolegate::runtime::logging::init(args.log_format);
    // One crypto provider for the kube client and the webhook's TLS: ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(rolegate::runtime::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "rolegate run failed");
            ExitCode::FAILURE
        }
    }
}

fn print(text: &str) -> ExitCode {
    match std::io::stdout().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn write_crds(dir: &std::path::Path) -> ExitCode {
    for (file, yaml) in rolegate::api::crd_files() {
        let path = dir.join(file);
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, yaml)) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

fn rules_table() -> String {
    let mut out = String::from("| id | name | reason | rule |\n|---|---|---|---|\n");
    for rule in rolegate::engine::RuleId::ALL {
        let mut reasons: Vec<String> = rule.reasons().iter().map(|r| format!("`{r}`")).collect();
        if reasons.is_empty() {
            reasons.push("—".to_owned());
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            rule.id(),
            rule.slug(),
            reasons.join(", "),
            rule.summary()
        ));
    }
    out
}
