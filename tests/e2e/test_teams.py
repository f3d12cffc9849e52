"""Teams end to end with real kubectl: a Team's own status (members resolved, Ready, Reconciling while
a listed member is missing), a team change shows up in a Member's status and raises its
permissionsGeneration, and a conflicting team membership change is rejected by the webhook with
rolegate's message. The presets (hosting panel, developer platform and cloud provider with teams)
are applied by test_rolegate.py's test_presets_and_examples_become_ready."""

from __future__ import annotations

import json

from test_rolegate import (  # noqa: F401  (fixtures)
    Rolegate, apply, condition, controller, doc, eventually, get, has_condition, kubectl, tenant, webhook,
)


def permissions(rolegate: Rolegate, ns: str, member: str) -> dict:
    return get(rolegate, ns, 'rgmember', member).get('status', {})


def test_a_team_change_shows_in_member_status_and_raises_permissions_generation(controller: Rolegate) -> None:
    ns = tenant(controller)
    apply(controller, ns, '\n---\n'.join([
        doc('Team', 'crew', {'account': 'acme', 'members': ['bob']}),
        doc('RoleBinding', 'crew-support', {'account': 'acme', 'team': 'crew', 'role': 'support'}),
    ]))
    before = eventually('bob holds support through team crew',
                        lambda: (s := permissions(controller, ns, 'bob')).get('permissions', {}).get('account') == ['tickets.view'] and s)
    generation = before['permissionsGeneration']
    assert before['sources'] == [{'role': 'support', 'binding': 'crew-support', 'team': 'crew'}], before
    eventually('the team binding is accepted',
               has_condition(controller, ns, 'rgbinding', 'crew-support', 'Accepted', 'True'))
    kubectl('patch', '-n', ns, 'rgteam', 'crew', '--type', 'merge', '-p', '{"spec":{"members":[]}}',
            kubeconfig=controller.cluster.kubeconfig)
    after = eventually('bob lost the team grant',
                       lambda: (s := permissions(controller, ns, 'bob'))['permissionsGeneration'] > generation and s)
    assert after['permissionsGeneration'] == generation + 1
    assert after['permissions'].get('account', []) == []
    listed = kubectl('get', 'rolegate', '-n', ns, kubeconfig=controller.cluster.kubeconfig).stdout
    assert 'team.rolegate.dev/crew' in listed, listed


def test_a_conflicting_team_membership_change_is_rejected(webhook: Rolegate) -> None:
    ns = tenant(webhook)
    apply(webhook, ns, '\n---\n'.join([
        doc('RoleBinding', 'bob-pv-web', {'account': 'acme', 'member': 'bob', 'role': 'project-viewer', 'project': 'web'}),
        doc('Team', 'crew', {'account': 'acme', 'members': []}),
        doc('RoleBinding', 'crew-pa-web', {'account': 'acme', 'team': 'crew', 'role': 'project-admin', 'project': 'web'}),
    ]))
    out = apply(webhook, ns, doc('Team', 'crew', {'account': 'acme', 'members': ['bob']}), check=False)
    assert out.returncode != 0
    assert 'denied the request: [R5] bob already holds project-viewer on project web through binding bob-pv-web' in out.stderr
    assert get(webhook, ns, 'rgteam', 'crew')['spec'].get('members', []) == []
    both = doc('RoleBinding', 'both', {'account': 'acme', 'member': 'bob', 'team': 'crew', 'role': 'support'})
    out = apply(webhook, ns, both, check=False)
    assert out.returncode != 0 and '[R17]' in out.stderr, out.stderr


def team_status(rolegate: Rolegate, ns: str, name: str) -> dict:
    """The Team as `kubectl get team -o json` prints it."""
    return json.loads(kubectl('get', 'team', name, '-n', ns, '-o', 'json', kubeconfig=rolegate.cluster.kubeconfig).stdout)


def test_a_team_waits_for_a_missing_member_and_gets_ready_when_it_arrives(controller: Rolegate) -> None:
    ns = tenant(controller)
    apply(controller, ns, '\n---\n'.join([
        doc('Team', 'crew', {'account': 'acme', 'members': ['bob', 'carol']}),
        doc('RoleBinding', 'crew-support', {'account': 'acme', 'team': 'crew', 'role': 'support'}),
    ]))

    def waiting() -> dict | None:
        team = team_status(controller, ns, 'crew')
        ready, reconciling = condition(team, 'Ready'), condition(team, 'Reconciling')
        current = team.get('status', {}).get('observedGeneration') == team['metadata']['generation']
        if current and ready and ready['status'] == 'False' and reconciling and reconciling['status'] == 'True':
            return team
        return None
    team = eventually('the team is not Ready and Reconciling while carol is missing', waiting)
    assert (team['status']['members'], team['status']['bindings']) == (1, 1), team['status']
    missing = '[R16] team crew lists member carol, which does not exist'
    for type_ in ('Ready', 'Reconciling'):
        c = condition(team, type_)
        assert (c['reason'], c['message']) == ('MemberNotFound', missing), c
    assert condition(team, 'Stalled') is None, team['status']

    apply(controller, ns, doc('Member', 'carol', {'account': 'acme', 'type': 'User'}))
    ready = eventually('the team turns Ready once carol exists',
                       lambda: (t := team_status(controller, ns, 'crew'))['status']['members'] == 2
                       and condition(t, 'Ready')['status'] == 'True' and t)
    assert condition(ready, 'Reconciling') is None, ready['status']
    eventually('carol holds support through team crew',
               lambda: get(controller, ns, 'rgmember', 'carol').get('status', {}).get('permissions', {}).get('account') == ['tickets.view'])

    def granted() -> list | None:
        events = json.loads(kubectl('get', 'events', '-n', ns, '-o', 'json', kubeconfig=controller.cluster.kubeconfig).stdout)['items']
        found = [e for e in events if e.get('reason') == 'Granted'
                 and (e.get('involvedObject') or e.get('regarding') or {}).get('name') == 'crew']
        return found or None
    event = eventually('a Granted Event on the team', granted)[0]
    assert (event.get('message') or event.get('note', '')) == (
        "2 listed members resolve (was 1): carol joined; the team's binding grants its role to them"), event
    assert team['status'].get('resolved') == ['bob'] and ready['status']['resolved'] == ['bob', 'carol'], ready['status']
