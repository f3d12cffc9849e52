//! The controller: reconciles each object's status from the engine's evaluation of its account.
//! Status goes only to `/status`, by server-side apply under the field manager `rolegate`, and only
//! when it changed; Events mark transitions. Specs are never written.

pub mod runner;
pub mod status;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{API_VERSION, Account, Member, Role, RoleBinding, Team};
use crate::engine::{self, AccountEvaluation, AccountKey, rules::reference};
use crate::metrics::{KindLabels, Metrics, ReconcileLabels};
use crate::state::Shared;
use crate::state::kept::Storable;
pub use runner::Action;

pub const FIELD_MANAGER: &str = "rolegate";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing status of {object}: {source}")]
    Status { object: String, source: kube::Error },
    #[error("the index lock is poisoned")]
    Poisoned,
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Status { .. } => "status_write",
            Error::Poisoned => "poisoned",
        }
    }

    /// The API server's answer when it refused a write that retrying cannot fix: the body is too
    /// large (413, or etcd's `request is too large`, which the API server passes on as a 500) or
    /// invalid (422). Everything else (409, 429, 5xx, timeouts) is transient.
    pub fn permanent(&self) -> Option<(u16, &str)> {
        let Error::Status {
            source: kube::Error::Api(status),
            ..
        } = self
        else {
            return None;
        };
        let too_large = status.message.contains("request is too large");
        (matches!(status.code, 413 | 422) || too_large).then_some((
            if too_large { 413 } else { status.code },
            status.message.as_str(),
        ))
    }
}

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    pub shared: Arc<Shared>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// How long a finding that may heal by itself waits, with its namespace quiet, before it is
    /// reported (`--reference-grace`).
    pub reference_grace: Duration,
}

/// What became of a status a reconcile computed.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Written (it changed).
    Written,
    /// The object carries it already.
    Unchanged,
    /// It reports a finding that may still heal (a reference to an object on its way): not
    /// written yet; it may be reported after this long. An object of an account holds the account
    /// in the sweep, which reconciles it once its namespace is quiet ([`crate::state::sweep`]):
    /// one entry per account instead of a timer per waiting object.
    Waiting(Duration),
    /// The API server refused it for good; what could be said was reported instead.
    Unwritable,
}

impl Context {
    /// How much longer a newly waiting status of an object in `namespace` is held back: until
    /// the namespace has been quiet (no object arriving, changing or leaving) for the grace
    /// period, since a sync still streaming in may yet bring the missing object. Whatever made
    /// the object wait was such a change in its own namespace (references do not leave it), so
    /// the namespace's last change is never earlier than the wait's start. `None`: report now.
    fn still_waiting(&self, namespace: &str) -> Option<Duration> {
        let due = self.shared.quiet_at(namespace, self.reference_grace)?;
        let now = tokio::time::Instant::now();
        (due > now).then(|| due - now)
    }
}

fn namespace<K: Resource>(o: &K) -> String {
    crate::api::namespace_of(o.meta())
}

fn now() -> Time {
    Time(Timestamp::now())
}

/// Server-side applies `status` to `/status`, carrying apiVersion and kind as SSA requires.
async fn write_status<K, S>(ctx: &Context, object: &K, status: &S) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + crate::api::KindOf
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace(object));
    let body =
        serde_json::json!({ "apiVersion": API_VERSION, "kind": K::kind(&()), "status": status });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&object.name_any(), &params, &Patch::Apply(&body))
        .await
        .map_err(|source| Error::Status {
            object: format!("{}/{}", K::kind(&()), object.name_any()),
            source,
        })?;
    ctx.shared
        .records
        .wrote(K::KIND, &namespace(object), &object.name_any(), status);
    ctx.metrics
        .status_writes
        .get_or_create(&KindLabels {
            kind: K::kind(&()).into_owned(),
        })
        .inc();
    Ok(())
}

/// Writes `next` unless the object carries it already or it reports a finding that may still
/// heal (held while [`Context::still_waiting`]). A write the API server refuses for good (too large,
/// invalid) is not retried: the object gets `Ready=False`/`Stalled=True` with the reason instead,
/// and one Warning Event; a change to the object or its account tries again.
async fn settle<K, S>(
    ctx: &Context,
    object: &K,
    current: Option<&S>,
    next: &S,
) -> Result<Outcome, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + crate::api::KindOf
        + Storable
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: status::Reported,
{
    if current == Some(next) {
        return Ok(Outcome::Unchanged);
    }
    if status::newly_waiting(next, current)
        && let Some(left) = ctx.still_waiting(&namespace(object))
    {
        return Ok(Outcome::Waiting(left));
    }
    let error = match write_status(ctx, object, next).await {
        Ok(()) => return Ok(Outcome::Written),
        Err(error) => error,
    };
    let Some((code, refused)) = error.permanent() else {
        return Err(error);
    };
    let reason = status::unwritable_reason(code);
    let message = format!(
        "the API server refused this object's status ({code}: {refused}); rolegate tries again \
         when the object or its account changes"
    );
    tracing::warn!(%error, reason, "status refused for good; not retried until a change");
    let generation = object.meta().generation;
    let reported = status::unwritable(next, current, reason, &message, generation, &now());
    let already = current.is_some_and(|c| {
        c.conditions()
            .iter()
            .any(|c| c.type_ == "Ready" && c.reason == reason)
    });
    if current != Some(&reported) {
        write_status(ctx, object, &reported).await?;
        if !already {
            publish(ctx, object, EventType::Warning, reason, message).await;
        }
    }
    Ok(Outcome::Unwritable)
}

/// Publishes an Event; a failure to publish is logged, never fatal.
async fn publish<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(%error, reason, "publishing event failed");
    }
}

/// The evaluation of an account's current content: made once per change and shared by every
/// object of the account, so a change to an account of n objects costs one evaluation, not n.
fn evaluation(ctx: &Context, key: &AccountKey) -> Result<Arc<AccountEvaluation>, Error> {
    let (eval, made) = ctx
        .shared
        .evaluation(key, Timestamp::now())
        .ok_or(Error::Poisoned)?;
    if made {
        ctx.metrics.evaluations.inc();
    } else {
        ctx.metrics.evaluations_reused.inc();
    }
    Ok(eval)
}

fn condition<'a>(
    conditions: &'a [crate::api::Condition],
    type_: &str,
) -> Option<&'a crate::api::Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// How often every object is reconciled again although nothing changed (controller-runtime's
/// `SyncPeriod`): one pass over the index through the triggers (`Shared::reconcile_all`), not a
/// timer per object.
pub const RESYNC: Duration = Duration::from_secs(600);

/// Slack after a window boundary, so the reconcile lands past it rather than on it.
const BOUNDARY_SLACK: Duration = Duration::from_millis(20);

/// When to look again: at the account's next window boundary (R18), capped at the resync. Every
/// object of an account requeues at it, since a boundary changes the member's effective access
/// and the account's status as well as the binding's own `Active`. An account without windows
/// waits for a change (or the periodic resync): no timer per object.
fn requeue(eval: &AccountEvaluation) -> Action {
    match eval.next_boundary {
        Some(boundary) => Action::requeue(next_look(Some(boundary), Timestamp::now())),
        None => Action::await_change(),
    }
}

/// How long from `now` until `boundary` (plus slack), capped at the resync.
pub fn next_look(boundary: Option<Timestamp>, now: Timestamp) -> Duration {
    // A boundary passed while reconciling (negative duration) is due at once.
    boundary.map_or(RESYNC, |b| {
        let until = Duration::try_from(now.duration_until(b)).unwrap_or_default();
        (until + BOUNDARY_SLACK).min(RESYNC)
    })
}

#[tracing::instrument(skip_all, fields(binding = %binding.name_any()))]
pub async fn reconcile_binding(
    binding: Arc<RoleBinding>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let key = AccountKey::new(namespace(&*binding), binding.spec.account.as_str());
    let eval = evaluation(&ctx, &key)?;
    let verdict = eval.bindings.get(&binding.name_any());
    let missing = reference::account_not_found(&binding.spec.account);
    let current = binding.status.as_ref();
    let next = status::binding(
        verdict,
        &missing,
        binding.metadata.generation,
        current,
        &now(),
    );
    let outcome = settle(&ctx, &*binding, current, &next).await?;
    if let Outcome::Waiting(_) = outcome {
        ctx.shared.sweep.hold(key);
        return Ok(requeue(&eval));
    }
    if outcome == Outcome::Written {
        let before = current
            .and_then(|s| condition(&s.conditions, "Accepted"))
            .map(|c| c.status.clone());
        if let Some((type_, reason, note)) =
            acceptance_event(before.as_deref(), condition(&next.conditions, "Accepted"))
        {
            publish(&ctx, &*binding, type_, reason, note).await;
        }
        let was_active = current
            .and_then(|s| condition(&s.conditions, "Active"))
            .map(|c| c.status.clone());
        if let Some(after) = condition(&next.conditions, "Active")
            .filter(|c| was_active.as_ref().is_some_and(|w| *w != c.status))
        {
            let (reason, note) = match (after.status.as_str(), verdict) {
                ("True", Some(v)) => ("Activated", activated(&binding, v)),
                _ => (after.reason.as_str(), after.message.clone()),
            };
            publish(&ctx, &*binding, EventType::Normal, reason, note).await;
        }
    }
    Ok(requeue(&eval))
}

/// The Event a binding's `Accepted` condition earns: `Rejected` whenever it turns False (first
/// status included), `Accepted` only when it turns True from False. A binding accepted on its
/// first status gets no Event: that is the expected outcome, already in its status, and one Event
/// per binding would write as many Events as bindings when rolegate starts on a full cluster (and
/// kube's recorder keeps each for six minutes).
fn acceptance_event(
    before: Option<&str>,
    after: Option<&crate::api::Condition>,
) -> Option<(EventType, &'static str, String)> {
    let after = after.filter(|c| Some(c.status.as_str()) != before)?;
    match (before, after.status.as_str()) {
        (Some(_), "True") => Some((EventType::Normal, "Accepted", after.message.clone())),
        (_, "True") => None,
        _ => Some((EventType::Warning, "Rejected", after.message.clone())),
    }
}

/// The Event note of a binding whose window opened: "access to project shop (role web) started
/// for bob".
fn activated(binding: &RoleBinding, verdict: &engine::BindingVerdict) -> String {
    let scope = binding
        .spec
        .project
        .as_deref()
        .map_or_else(|| "the account".to_owned(), |p| format!("project {p}"));
    let subject = match &verdict.team {
        Some(team) => format!("team {team}"),
        None => verdict.member.clone(),
    };
    format!(
        "access to {scope} (role {}) started for {subject}",
        binding.spec.role
    )
}

#[tracing::instrument(skip_all, fields(member = %member.name_any()))]
pub async fn reconcile_member(member: Arc<Member>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = AccountKey::new(namespace(&*member), member.spec.account.as_str());
    let eval = evaluation(&ctx, &key)?;
    // Not among its account's members (it left the index meanwhile): a change asks again.
    let Some(verdict) = eval.members.get(&member.name_any()) else {
        return Ok(Action::await_change());
    };
    let current = member.status.as_ref();
    let next = status::member(verdict, member.metadata.generation, current, &now());
    let outcome = settle(&ctx, &*member, current, &next).await?;
    if let Outcome::Waiting(_) = outcome {
        ctx.shared.sweep.hold(key);
        return Ok(requeue(&eval));
    }
    if outcome == Outcome::Written {
        // A member's first permissions are no news (every member when a sync brings the
        // catalog); a change to permissions it had is: sessions must re-authenticate.
        let had_some = |c: &crate::api::MemberStatus| {
            !c.permissions.account.is_empty() || !c.permissions.projects.is_empty()
        };
        if current
            .is_some_and(|c| c.permissions_generation != next.permissions_generation && had_some(c))
        {
            let note = format!(
                "effective permissions changed (permissionsGeneration {})",
                next.permissions_generation
            );
            publish(
                &ctx,
                &*member,
                EventType::Normal,
                "PermissionsChanged",
                note,
            )
            .await;
        }
    }
    Ok(requeue(&eval))
}

#[tracing::instrument(skip_all, fields(account = %account.name_any()))]
pub async fn reconcile_account(account: Arc<Account>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = AccountKey::new(namespace(&*account), account.name_any());
    let eval = evaluation(&ctx, &key)?;
    let current = account.status.as_ref();
    let next = status::account(&eval, account.metadata.generation, current, &now());
    ctx.metrics.set_conflicts(
        &key,
        next.conflicts_by_rule
            .iter()
            .map(|(r, n)| (r.clone(), i64::from(*n)))
            .collect(),
    );
    let outcome = settle(&ctx, &*account, current, &next).await?;
    if let Outcome::Waiting(_) = outcome {
        ctx.shared.sweep.hold(key);
        return Ok(requeue(&eval));
    }
    if outcome == Outcome::Written {
        // Like `PermissionsChanged`, only a change of an owner a status recorded is announced: a
        // first owner (every account when a sync arrives or the controller first runs) is no
        // news, and an Event per account would be that many writes to the API server.
        if let Some(before) = current
            .and_then(|s| s.owner.as_deref())
            .filter(|b| Some(*b) != next.owner.as_deref())
        {
            let note = match &next.owner {
                Some(owner) => format!("{owner} owns the account (was {before})"),
                None => format!("the account has no owner (was {before})"),
            };
            publish(&ctx, &*account, EventType::Normal, "OwnerChanged", note).await;
        }
    }
    Ok(requeue(&eval))
}

#[tracing::instrument(skip_all, fields(team = %team.name_any()))]
pub async fn reconcile_team(team: Arc<Team>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = AccountKey::new(namespace(&*team), &team.spec.account);
    let eval = evaluation(&ctx, &key)?;
    let verdict = eval.teams.get(&team.name_any());
    let missing = reference::account_not_found(&team.spec.account);
    let current = team.status.as_ref();
    let next = status::team(verdict, &missing, team.metadata.generation, current, &now());
    let outcome = settle(&ctx, &*team, current, &next).await?;
    if let Outcome::Waiting(_) = outcome {
        ctx.shared.sweep.hold(key);
        return Ok(requeue(&eval));
    }
    if outcome == Outcome::Written {
        // A team without bindings grants nothing, so its membership moves no permissions. The
        // members' own `PermissionsChanged` Events say whose access moved; this one says why.
        for (reason, note) in current
            .map(|before| membership_events(before, &next))
            .unwrap_or_default()
        {
            publish(&ctx, &*team, EventType::Normal, reason, note).await;
        }
    }
    Ok(requeue(&eval))
}

/// The Events of a team whose resolved members changed while a binding names it: `Granted` for
/// the members that joined ("3 listed members resolve (was 2): carol joined; the team's binding
/// grants its role to them"), `Revoked` for those that left; a swap in one edit earns both. A team
/// no binding names grants nothing. A status written before `resolved` existed has only its
/// count, so the Event says how many instead of who.
pub fn membership_events(
    before: &crate::api::TeamStatus,
    after: &crate::api::TeamStatus,
) -> Vec<(&'static str, String)> {
    let bindings = before.bindings.max(after.bindings);
    if bindings == 0 {
        return Vec::new();
    }
    let named =
        |s: &crate::api::TeamStatus| usize::try_from(s.members).ok() == Some(s.resolved.len());
    let (joined, left) = if named(before) && named(after) {
        let who = |from: &[String], not_in: &[String]| {
            let names: Vec<&str> = from
                .iter()
                .filter(|m| !not_in.contains(m))
                .map(String::as_str)
                .collect();
            (!names.is_empty()).then(|| names.join(", "))
        };
        (
            who(&after.resolved, &before.resolved),
            who(&before.resolved, &after.resolved),
        )
    } else {
        let count = |n: u32| Some(format!("{n} members"));
        match after.members.cmp(&before.members) {
            std::cmp::Ordering::Greater => (count(after.members - before.members), None),
            std::cmp::Ordering::Less => (None, count(before.members - after.members)),
            std::cmp::Ordering::Equal => (None, None),
        }
    };
    let head = format!(
        "{} listed members resolve (was {})",
        after.members, before.members
    );
    let grant = match bindings {
        1 => "the team's binding grants its role".to_owned(),
        n => format!("the team's {n} bindings grant their roles"),
    };
    let revoke = match bindings {
        1 => "the team's binding no longer grants its role".to_owned(),
        n => format!("the team's {n} bindings no longer grant their roles"),
    };
    let joined = joined.map(|who| ("Granted", format!("{head}: {who} joined; {grant} to them")));
    let left = left.map(|who| ("Revoked", format!("{head}: {who} left; {revoke} to them")));
    joined.into_iter().chain(left).collect()
}

#[tracing::instrument(skip_all, fields(role = %role.name_any()))]
pub async fn reconcile_role(role: Arc<Role>, ctx: Arc<Context>) -> Result<Action, Error> {
    let eval = {
        let index = ctx.shared.index.read().map_err(|_| Error::Poisoned)?;
        engine::evaluate_role(&index, &namespace(&*role), &role.name_any())
    };
    let Some(eval) = eval else {
        return Ok(Action::await_change());
    };
    let current = role.status.as_ref();
    let next = status::role(&eval, role.metadata.generation, current, &now());
    match settle(&ctx, &*role, current, &next).await? {
        Outcome::Waiting(left) => Ok(Action::requeue(left)),
        _ => Ok(Action::await_change()),
    }
}

/// The `result` label of one reconcile: `ok`, or what failed.
pub fn result_label(result: &Result<Action, Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.metric_label(),
    }
}

/// Runs one kind's controller, at most `concurrency` reconciles at once, until `shutdown`
/// resolves (the running reconciles finish). Requests come only from `triggers`: the ingest
/// decides what each change touches. Each request taken ends at the triggers' gate, which lets the
/// next bulk request in. A failed reconcile is counted once, by `rolegate_reconciles{kind,
/// result}`, and runs again after a per-object backoff ([`runner::Pacing`]).
pub async fn run_kind<K, F, Fut>(
    triggers: crate::state::triggers::Requests<K>,
    mut reconcile: F,
    ctx: Arc<Context>,
    concurrency: u16,
    pacing: runner::Pacing,
    shutdown: impl std::future::Future<Output = ()>,
) where
    K: Storable,
    F: FnMut(Arc<K>, Arc<Context>) -> Fut,
    Fut: std::future::Future<Output = Result<Action, Error>>,
{
    let kind = K::kind(&()).into_owned();
    let gate = triggers.gate();
    let requests = triggers.map(|r| {
        let key: runner::Key = (r.namespace.unwrap_or_default().into(), r.name.into());
        let pace = if gate.let_in_by_bulk(&key.0, &key.1) {
            runner::Pace::Now
        } else {
            runner::Pace::Coalesce
        };
        (key, pace)
    });
    let start = |(namespace, name): &runner::Key| {
        // The spec comes from the index, the rest from the records.
        let object = ctx.shared.object::<K>(namespace, name)?;
        let (started, ctx, kind) = (Instant::now(), ctx.clone(), kind.clone());
        let fut = reconcile(Arc::new(object), ctx.clone());
        Some(async move {
            let result = fut.await;
            if let Err(error) = &result {
                tracing::warn!(%error, "reconcile failed; retrying");
            }
            ctx.metrics
                .reconcile_duration
                .get_or_create(&KindLabels { kind: kind.clone() })
                .observe(started.elapsed().as_secs_f64());
            let outcome = result_label(&result).into();
            let labels = ReconcileLabels {
                kind,
                result: outcome,
            };
            ctx.metrics.reconciles.get_or_create(&labels).inc();
            result.map_err(|_| ())
        })
    };
    let ended = |(namespace, name): &runner::Key| gate.done(Some(namespace), name);
    runner::run(requests, start, concurrency.into(), pacing, ended, shutdown).await;
    tracing::info!(%kind, "controller stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn team(members: &[&str], bindings: u32) -> crate::api::TeamStatus {
        crate::api::TeamStatus {
            members: u32::try_from(members.len()).expect("few"),
            resolved: members.iter().map(|m| (*m).to_owned()).collect(),
            bindings,
            ..Default::default()
        }
    }

    #[test]
    fn a_membership_change_is_an_event_only_when_a_binding_names_the_team() {
        assert!(membership_events(&team(&["bob"], 1), &team(&["bob"], 1)).is_empty());
        assert!(
            membership_events(&team(&["bob"], 0), &team(&["bob", "carol"], 0)).is_empty(),
            "a team no binding names grants nothing"
        );
        assert_eq!(
            membership_events(&team(&["bob"], 1), &team(&["bob", "carol"], 1)),
            vec![(
                "Granted",
                "2 listed members resolve (was 1): carol joined; the team's binding grants its \
                 role to them"
                    .to_owned()
            )]
        );
        assert_eq!(
            membership_events(&team(&["a", "b", "c"], 2), &team(&["b"], 2)),
            vec![(
                "Revoked",
                "1 listed members resolve (was 3): a, c left; the team's 2 bindings no longer \
                 grant their roles to them"
                    .to_owned()
            )]
        );
        let reasons: Vec<_> = membership_events(&team(&["bob"], 1), &team(&["carol"], 1))
            .into_iter()
            .map(|(reason, note)| {
                (
                    reason,
                    note.contains("carol joined") || note.contains("bob left"),
                )
            })
            .collect();
        assert_eq!(
            reasons,
            vec![("Granted", true), ("Revoked", true)],
            "a swap in one edit keeps the count and earns both"
        );
        let events = membership_events(&team(&["bob", "carol"], 1), &team(&["bob"], 0));
        assert_eq!(
            events.first().map(|e| e.0),
            Some("Revoked"),
            "removing the last binding with a member still revokes"
        );
    }

    #[test]
    fn a_status_without_names_is_judged_by_its_count() {
        let old = crate::api::TeamStatus {
            members: 1,
            bindings: 1,
            ..Default::default()
        };
        assert_eq!(
            membership_events(&old, &team(&["bob", "carol", "dan"], 1)),
            vec![(
                "Granted",
                "3 listed members resolve (was 1): 2 members joined; the team's binding grants \
                 its role to them"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn the_next_look_is_the_boundary_capped_at_the_resync() {
        let now = t("2026-06-01T00:00:00Z");
        assert_eq!(next_look(None, now), RESYNC);
        assert_eq!(
            next_look(Some(t("2026-06-01T00:00:03Z")), now),
            Duration::from_secs(3) + BOUNDARY_SLACK
        );
        assert_eq!(next_look(Some(t("2026-07-01T00:00:00Z")), now), RESYNC);
        assert_eq!(
            next_look(Some(t("2026-05-31T23:59:59Z")), now),
            BOUNDARY_SLACK,
            "a boundary passed while reconciling is due at once"
        );
    }
}
