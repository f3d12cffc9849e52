//! R18: a binding may carry a time window, half-open `[validFrom, validUntil)`. Outside it the
//! binding is accepted but inactive and grants nothing. The engine never reads a clock: every
//! question here takes the instant it is asked at.

use k8s_openapi::jiff::Timestamp;

use crate::api::RoleBindingSpec;
use crate::engine::rule::{Reason, Violation};

/// A binding's window; an open side is `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// Where an instant falls in a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    Active,
    /// Before `validFrom`, which it names.
    NotYetActive(Timestamp),
    /// At or after `validUntil`, which it names.
    Expired(Timestamp),
}

impl Window {
    pub fn of(spec: &RoleBindingSpec) -> Self {
        Self {
            from: spec.valid_from.as_ref().map(|t| t.0),
            until: spec.valid_until.as_ref().map(|t| t.0),
        }
    }

    /// Both sides open: the binding always grants.
    pub fn is_open(&self) -> bool {
        self.from.is_none() && self.until.is_none()
    }

    pub fn activity(&self, now: Timestamp) -> Activity {
        match (self.from, self.until) {
            (Some(from), _) if now < from => Activity::NotYetActive(from),
            (_, Some(until)) if now >= until => Activity::Expired(until),
            _ => Activity::Active,
        }
    }

    pub fn contains(&self, now: Timestamp) -> bool {
        self.activity(now) == Activity::Active
    }

    /// Whether some instant lies in both windows: the windows themselves, not today's state.
    pub fn overlaps(&self, other: &Window) -> bool {
        let start = self.from.max(other.from);
        let end = match (self.until, other.until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        end.is_none_or(|end| start.is_none_or(|start| start < end))
    }

    /// Whether every instant of `inner` lies in this window.
    pub fn covers(&self, inner: &Window) -> bool {
        let from = match (self.from, inner.from) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a <= b,
        };
        let until = match (self.until, inner.until) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a >= b,
        };
        from && until
    }

    /// The first boundary strictly after `now`: when the binding's activity next changes.
    pub fn next_boundary(&self, now: Timestamp) -> Option<Timestamp> {
        [self.from, self.until]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min()
    }
}

/// R18: `validFrom` comes before `validUntil` (also a CEL rule in the CRD; checked here for
/// manifests `check` reads and objects that got in without it).
pub fn check(binding: &str, window: &Window) -> Result<(), Violation> {
    match (window.from, window.until) {
        (Some(from), Some(until)) if from >= until => Err(Violation::new(
            Reason::InvalidWindow,
            format!(
                "RoleBinding {binding} has spec.validFrom {from} not before spec.validUntil {until}: the window is empty"
            ),
        )),
        _ => Ok(()),
    }
}

/// What an inactive binding tells its Active condition, its Events and `check`: "access to
/// project shop expired for bob at ...". `None` while the binding is active.
pub fn inactive(
    subject: &str,
    role: &str,
    project: Option<&str>,
    activity: Activity,
) -> Option<Violation> {
    let scope = project.map_or_else(|| "the account".to_owned(), |p| format!("project {p}"));
    match activity {
        Activity::Active => None,
        Activity::NotYetActive(from) => Some(Violation::new(
            Reason::NotYetActive,
            format!("access to {scope} (role {role}) for {subject} starts at {from} (validFrom)"),
        )),
        Activity::Expired(until) => Some(Violation::new(
            Reason::Expired,
            format!(
                "access to {scope} (role {role}) expired for {subject} at {until} (validUntil)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn w(from: Option<&str>, until: Option<&str>) -> Window {
        Window {
            from: from.map(t),
            until: until.map(t),
        }
    }

    const JUNE: &str = "2026-06-01T00:00:00Z";
    const JULY: &str = "2026-07-01T00:00:00Z";

    #[test]
    fn before_inside_and_after_a_closed_window() {
        let window = w(Some(JUNE), Some(JULY));
        assert_eq!(
            window.activity(t("2026-05-31T23:59:59Z")),
            Activity::NotYetActive(t(JUNE))
        );
        assert_eq!(
            window.activity(t(JUNE)),
            Activity::Active,
            "validFrom is inside"
        );
        assert_eq!(window.activity(t("2026-06-30T23:59:59Z")), Activity::Active);
        assert_eq!(
            window.activity(t(JULY)),
            Activity::Expired(t(JULY)),
            "validUntil is outside"
        );
    }

    #[test]
    fn open_ended_on_either_side() {
        let since = w(Some(JUNE), None);
        assert!(!since.contains(t("2020-01-01T00:00:00Z")));
        assert!(since.contains(t("2999-01-01T00:00:00Z")));
        let until = w(None, Some(JULY));
        assert!(until.contains(t("2020-01-01T00:00:00Z")));
        assert!(!until.contains(t("2999-01-01T00:00:00Z")));
        assert!(w(None, None).contains(t(JUNE)));
    }

    #[test]
    fn next_boundary_is_the_first_one_after_now() {
        let window = w(Some(JUNE), Some(JULY));
        assert_eq!(
            window.next_boundary(t("2026-01-01T00:00:00Z")),
            Some(t(JUNE))
        );
        assert_eq!(window.next_boundary(t(JUNE)), Some(t(JULY)));
        assert_eq!(window.next_boundary(t(JULY)), None);
        assert_eq!(w(None, None).next_boundary(t(JUNE)), None);
    }

    #[test]
    fn windows_are_half_open_so_adjacent_ones_do_not_overlap() {
        let viewer = w(None, Some(JUNE));
        let admin = w(Some(JUNE), None);
        assert!(!viewer.overlaps(&admin) && !admin.overlaps(&viewer));
        let later = w(Some(JUNE), Some(JULY));
        assert!(later.overlaps(&w(Some("2026-06-15T00:00:00Z"), None)));
        assert!(w(None, None).overlaps(&later));
        assert!(!w(None, Some(JUNE)).overlaps(&w(Some(JULY), None)));
    }

    #[test]
    fn covers_needs_every_instant() {
        let june = w(Some(JUNE), Some(JULY));
        assert!(w(None, None).covers(&june));
        assert!(june.covers(&june));
        assert!(!june.covers(&w(None, None)));
        assert!(!june.covers(&w(Some(JUNE), None)));
        assert!(w(Some(JUNE), None).covers(&june));
    }

    #[test]
    fn an_empty_window_breaks_r18() {
        let err = check("b", &w(Some(JULY), Some(JUNE))).expect_err("empty");
        assert_eq!(err.reason, Reason::InvalidWindow);
        assert!(err.message.starts_with("[R18] "));
        assert!(check("b", &w(Some(JUNE), Some(JULY))).is_ok());
        assert!(check("b", &w(Some(JUNE), Some(JUNE))).is_err());
    }

    #[test]
    fn inactive_messages_name_the_time() {
        let expired =
            inactive("bob", "web", Some("shop"), Activity::Expired(t(JULY))).expect("inactive");
        assert_eq!(expired.reason, Reason::Expired);
        assert!(
            expired.message.contains(
                "access to project shop (role web) expired for bob at 2026-07-01T00:00:00Z"
            ),
            "{}",
            expired.message
        );
        assert!(inactive("bob", "web", None, Activity::Active).is_none());
    }
}
