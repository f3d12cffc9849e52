//! Plain-text tables, kubectl style: upper-case headers, columns padded to the widest cell.

use std::fmt::Write;

use crate::engine::AccountKey;
use crate::engine::explain::{Answer, Explanation, GrantPath};

fn scope(project: Option<&str>) -> String {
    project.map_or_else(|| "account".to_owned(), |p| format!("project {p}"))
}

fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}   ");
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn via(path: &GrantPath) -> String {
    let via = match (&path.binding, &path.team) {
        (_, _) if path.default => "default role (R14)".to_owned(),
        (Some(b), Some(t)) => format!("{b} (team {t})"),
        (Some(b), None) => b.clone(),
        (None, _) => String::new(),
    };
    match &path.valid_until {
        Some(until) => format!("{via} (until {until})"),
        None => via,
    }
}

/// `explain`: the yes/no answer first when asked, then roles and permissions per scope, every
/// grant path and every refused grant.
pub fn explain(e: &Explanation, answer: Option<&Answer>) -> String {
    let mut out = String::new();
    if let Some(a) = answer {
        let at = scope(a.project.as_deref());
        if a.allowed {
            let _ = writeln!(out, "yes: {} may {} on {at}", a.member, a.permission);
            for t in &a.through {
                let from = match (&t.binding, &t.team) {
                    _ if t.default => format!("default role {} (R14)", t.role),
                    (Some(b), Some(team)) => format!("binding {b} of team {team}"),
                    (Some(b), None) => format!("binding {b}"),
                    (None, _) => String::new(),
                };
                let implicit = if t.implicit {
                    " (account-level grant, reaches every project: R15)"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "  through {from}: role {}{implicit}",
                    t.chain.join(" includes ")
                );
            }
        } else {
            let _ = writeln!(
                out,
                "no: {} may not {} on {at}: no accepted grant of theirs gives it",
                a.member, a.permission
            );
            for r in e
                .refused
                .iter()
                .filter(|r| r.project.is_none() || a.project.is_none() || r.project == a.project)
            {
                let _ = writeln!(out, "  refused {}: {}", r.binding, r.message);
            }
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "Member {} of account {} (namespace {}){}{}",
        e.member,
        e.account,
        e.namespace,
        if e.owner { ", owner" } else { "" },
        if e.defaulted {
            ", holds the default roles (R14)"
        } else {
            ""
        }
    );
    out.push('\n');
    let mut rows = vec![vec![
        "account".to_owned(),
        e.roles.account.join(","),
        e.permissions.account.join(","),
    ]];
    for (project, roles) in &e.roles.projects {
        let perms = e
            .permissions
            .projects
            .get(project)
            .map(|p| p.join(","))
            .unwrap_or_default();
        rows.push(vec![format!("project {project}"), roles.join(","), perms]);
    }
    out.push_str(&render(&["SCOPE", "ROLES", "PERMISSIONS"], &rows));
    out.push('\n');
    let rows: Vec<Vec<String>> = e
        .paths
        .iter()
        .flat_map(|p| {
            p.reached.iter().map(move |r| {
                let scope = match &p.project {
                    None => "account (every project, R15)".to_owned(),
                    Some(q) => format!("project {q}"),
                };
                vec![via(p), scope, r.chain.join(" > "), r.permissions.join(",")]
            })
        })
        .collect();
    if rows.is_empty() {
        out.push_str("No grants.\n");
    } else {
        out.push_str(&render(&["GRANT", "SCOPE", "ROLE", "PERMISSIONS"], &rows));
    }
    if !e.refused.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = e
            .refused
            .iter()
            .map(|r| {
                vec![
                    match &r.team {
                        Some(t) => format!("{} (team {t})", r.binding),
                        None => r.binding.clone(),
                    },
                    r.role.clone(),
                    scope(r.project.as_deref()),
                    r.rule.id().to_owned(),
                    r.winner.clone().unwrap_or_else(|| "-".to_owned()),
                    r.message.clone(),
                ]
            })
            .collect();
        out.push_str(&render(
            &["NOT RECEIVED", "ROLE", "SCOPE", "RULE", "WINNER", "MESSAGE"],
            &rows,
        ));
    }
    out
}

/// `who-can`: one row per member and path.
pub fn who_can(
    key: &AccountKey,
    permission: &str,
    project: Option<&str>,
    members: &[Answer],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Who can {permission} on {}account {} (namespace {}): {}",
        project.map_or_else(String::new, |p| format!("project {p} of ")),
        key.account,
        key.namespace,
        members.len()
    );
    if members.is_empty() {
        return out;
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = members
        .iter()
        .flat_map(|a| {
            a.through.iter().map(move |t| {
                vec![
                    a.member.clone(),
                    if t.default {
                        "default role (R14)".to_owned()
                    } else {
                        t.binding.clone().unwrap_or_default()
                    },
                    t.team.clone().unwrap_or_else(|| "-".to_owned()),
                    t.chain.join(" > "),
                    if t.implicit {
                        "account (R15)".to_owned()
                    } else {
                        scope(t.project.as_deref())
                    },
                ]
            })
        })
        .collect();
    out.push_str(&render(
        &["MEMBER", "BINDING", "TEAM", "ROLE", "SCOPE"],
        &rows,
    ));
    out
}
