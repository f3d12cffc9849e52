//! R1–R4: every account has exactly one owner, and no path leaves it without one.
//!
//! The owner binding of account `a` is named `a-owner` (R1): the API server's name uniqueness then
//! makes two owners impossible even under concurrent creates, and CEL (R11) can exempt exactly that
//! binding from `spec.member` immutability, which is how ownership moves (R4).

use crate::api::Transfer;
use crate::engine::evaluate::BindingVerdict;
use crate::engine::rule::{Reason, Violation};
use crate::engine::slim::{Account, Role};

/// The one name an owner binding of `account` may have.
pub fn binding_name(account: &str) -> String {
    format!("{account}-owner")
}

/// Whether `binding` is the name [`binding_name`] gives `account`, without building it: every
/// grant of every member judged asks this.
pub fn is_binding_name(binding: &str, account: &str) -> bool {
    binding
        .strip_prefix(account)
        .is_some_and(|rest| rest == "-owner")
}

/// R1: an owner role is bound only by `<account>-owner`, and that name binds only an owner role.
pub fn check_name(
    binding: &str,
    account: &str,
    role_name: &str,
    role: &Role,
) -> Result<(), Violation> {
    match (role.spec.owner, is_binding_name(binding, account)) {
        (true, false) => Err(Violation::new(
            Reason::OwnerNotUnique,
            format!(
                "role {role_name} is an owner role, so only RoleBinding {} may bind it in account {account}; {binding} would be a second owner",
                binding_name(account)
            ),
        )),
        (false, true) => Err(Violation::new(
            Reason::OwnerNotUnique,
            format!(
                "RoleBinding {binding} is reserved for the owner of account {account}, but role {role_name} is not an owner role"
            ),
        )),
        _ => Ok(()),
    }
}

/// R1: the owner binding names a member, never a team.
pub fn check_subject(binding: &str, account: &str, team: Option<&str>) -> Result<(), Violation> {
    match team {
        Some(team) if is_binding_name(binding, account) => Err(Violation::new(
            Reason::OwnerNotUnique,
            format!(
                "RoleBinding {binding} is the owner binding of account {account}: it names one member, never a team (it names team {team})"
            ),
        )),
        _ => Ok(()),
    }
}

/// R1: the owner binding has no time window: ownership never lapses by itself.
pub fn check_window(
    binding: &str,
    account: &str,
    window: &super::window::Window,
) -> Result<(), Violation> {
    if !is_binding_name(binding, account) || window.is_open() {
        return Ok(());
    }
    Err(Violation::new(
        Reason::OwnerNotUnique,
        format!(
            "RoleBinding {binding} is the owner binding of account {account}: it has no time window (remove spec.validFrom and spec.validUntil)"
        ),
    ))
}

/// R2: the account has no accepted owner binding.
pub fn missing(account: &str) -> Violation {
    Violation::new(
        Reason::OwnerMissing,
        format!(
            "account {account} has no accepted owner binding: bind an owner role as RoleBinding {}",
            binding_name(account)
        ),
    )
}

/// R3: deleting the owner binding would leave the account without an owner.
pub fn kept_binding(binding: &str, member: &str, account: &str) -> Violation {
    Violation::new(
        Reason::OwnerProtected,
        format!(
            "RoleBinding {binding} makes {member} the owner of account {account}: it cannot be deleted while the account exists (transfer ownership by changing spec.member)"
        ),
    )
}

/// R3: deleting the owner's member would leave the account without an owner.
pub fn kept_member(member: &str, account: &str) -> Violation {
    Violation::new(
        Reason::OwnerProtected,
        format!(
            "member {member} owns account {account}: transfer ownership before deleting the member"
        ),
    )
}

/// What a change that would leave an account without an owner touches.
#[derive(Clone, Copy, Debug)]
pub enum Kept<'a> {
    Binding(&'a str),
    Member(&'a str),
    Role(&'a str),
}

/// R3: an account that has an owner (`owner`) and still exists after the change keeps one: the
/// owner binding after the change (`after`) is still accepted. Otherwise the change is denied,
/// with what it would break.
pub fn check_kept(
    account: &str,
    owner: &str,
    after: Option<&BindingVerdict>,
    kept: Kept<'_>,
) -> Result<(), Violation> {
    let why = match after.map(|v| &v.accepted) {
        Some(Ok(())) => return Ok(()),
        Some(Err(v)) => format!("after the change it would not be accepted ({v})"),
        None => "it would be gone".to_owned(),
    };
    let binding = binding_name(account);
    Err(match kept {
        Kept::Binding(_) if after.is_none() => kept_binding(&binding, owner, account),
        Kept::Member(member) if after.is_none_or(|v| v.member == member) => {
            kept_member(member, account)
        }
        Kept::Role(role) => Violation::new(
            Reason::OwnerProtected,
            format!(
                "role {role} is the owner role of account {account} through binding {binding}, which makes {owner} the owner: {why}"
            ),
        ),
        Kept::Binding(_) | Kept::Member(_) => Violation::new(
            Reason::OwnerProtected,
            format!(
                "RoleBinding {binding} makes {owner} the owner of account {account}: {why}, and the account would have no owner"
            ),
        ),
    })
}

/// R4: moving the owner binding from `from` to `to` obeys `spec.ownership`.
pub fn check_transfer(
    account_name: &str,
    account: Option<&Account>,
    from: &str,
    to: &str,
    to_holds: impl FnOnce(&str) -> bool,
) -> Result<(), Violation> {
    let Some(account) = account else {
        return Ok(());
    };
    let ownership = &account.spec.ownership;
    if ownership.transfer == Transfer::Forbidden {
        return Err(Violation::new(
            Reason::OwnerTransferDenied,
            format!(
                "account {account_name} forbids ownership transfer (spec.ownership.transfer: Forbidden): {from} stays the owner, {to} cannot become it"
            ),
        ));
    }
    match ownership.successor_role.as_deref() {
        Some(successor) if !to_holds(successor) => Err(Violation::new(
            Reason::OwnerTransferDenied,
            format!(
                "{to} cannot become the owner of account {account_name}: a new owner must already hold role {successor} on the account"
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_binding_name_is_recognised_without_building_it() {
        for (binding, account) in [
            ("acme-owner", "acme"),
            ("acme-owner", "acm"),
            ("acme-owners", "acme"),
            ("acme", "acme"),
            ("-owner", ""),
            ("x-acme-owner", "acme"),
        ] {
            assert_eq!(
                is_binding_name(binding, account),
                binding == binding_name(account),
                "{binding} / {account}"
            );
        }
    }
}
