"""Time-bound grants (R18) end to end with real kubectl: a binding whose validUntil is a few seconds
ahead flips to Active=False on time, the member's permissions drop and permissionsGeneration rises,
without any resync (the resync is 600 s); one whose validFrom is a few seconds ahead activates on
time. The webhook denies widening a window into an exclusive grant."""

from __future__ import annotations

import datetime
import time

from test_rolegate import (  # noqa: F401  (fixtures)
    REPO, Rolegate, all_ready, apply, condition, controller, doc, eventually, get, has_condition, kubectl, tenant,
    webhook,
)

# A boundary this far ahead leaves time to create the binding and see it before the flip.
AHEAD = 4.0
# How late after its boundary a status change may land: the controller requeues at the boundary.
LAG = 3.0


def rfc3339(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def whole_second_ahead(seconds: float) -> float:
    """A boundary on a whole second (RFC 3339 without fractions), at least `seconds` ahead."""
    return float(int(time.time() + seconds) + 1)


def shop(rolegate: Rolegate, ns: str, member: str) -> tuple[list, int]:
    status = get(rolegate, ns, 'rgmember', member).get('status', {})
    return status.get('permissions', {}).get('projects', {}).get('shop', []), status.get('permissionsGeneration', 0)


def test_a_binding_expires_and_another_activates_on_time(controller: Rolegate) -> None:
    ns = tenant(controller)
    until = whole_second_ahead(AHEAD)
    start = whole_second_ahead(AHEAD + 2)
    apply(controller, ns, '\n---\n'.join([
        doc('RoleBinding', 'bob-admin-shop', {'account': 'acme', 'member': 'bob', 'role': 'project-admin',
                                              'project': 'shop', 'validUntil': rfc3339(until)}),
        doc('RoleBinding', 'bob-view-shop', {'account': 'acme', 'member': 'bob', 'role': 'project-viewer',
                                             'project': 'shop', 'validFrom': rfc3339(start)}),
    ]))
    eventually('bob-admin-shop is active', has_condition(controller, ns, 'rgbinding', 'bob-admin-shop', 'Active', 'True'))
    eventually('bob-view-shop is not active yet',
               has_condition(controller, ns, 'rgbinding', 'bob-view-shop', 'Active', 'False', 'NotYetActive'))
    perms, generation = eventually('bob administers shop',
                                   lambda: (p := shop(controller, ns, 'bob'))[0] == ['project.manage', 'project.view'] and p)
    assert time.time() < until, 'the setup took longer than the window: raise AHEAD'

    expired = eventually('bob-admin-shop expired',
                         has_condition(controller, ns, 'rgbinding', 'bob-admin-shop', 'Active', 'False', 'Expired'),
                         timeout=AHEAD + LAG + 5)
    seen = time.time()
    assert seen - until < LAG, f'expired {seen - until:.2f}s after its boundary'
    message = condition(expired, 'Active')['message']
    assert f'access to project shop (role project-admin) expired for bob at {rfc3339(until)}' in message, message
    dropped, later = eventually('bob lost project-admin', lambda: (p := shop(controller, ns, 'bob'))[1] > generation and p)
    assert dropped == [], dropped
    assert later == generation + 1

    eventually('bob-view-shop activated',
               has_condition(controller, ns, 'rgbinding', 'bob-view-shop', 'Active', 'True'), timeout=AHEAD + LAG + 5)
    assert time.time() - start < LAG, f'activated {time.time() - start:.2f}s after its boundary'
    viewed, last = eventually('bob views shop', lambda: (p := shop(controller, ns, 'bob'))[0] == ['project.view'] and p)
    assert last == later + 1
    events = kubectl('get', 'events', '-n', ns, '-o', 'json', kubeconfig=controller.cluster.kubeconfig).stdout
    assert 'expired for bob' in events, events
    table = kubectl('get', 'rgbinding', '-n', ns, kubeconfig=controller.cluster.kubeconfig).stdout
    assert 'ACTIVE' in table.splitlines()[0], table


def test_widening_a_window_into_an_exclusive_grant_is_denied(webhook: Rolegate) -> None:
    ns = tenant(webhook)
    june, july = '2030-06-01T00:00:00Z', '2030-07-01T00:00:00Z'
    apply(webhook, ns, doc('RoleBinding', 'bob-view', {'account': 'acme', 'member': 'bob', 'role': 'project-viewer',
                                                       'project': 'web', 'validUntil': june}))
    apply(webhook, ns, doc('RoleBinding', 'bob-admin', {'account': 'acme', 'member': 'bob', 'role': 'project-admin',
                                                        'project': 'web', 'validFrom': june}))
    out = kubectl('patch', '-n', ns, 'rgbinding', 'bob-view', '--type', 'merge', '-p',
                  f'{{"spec":{{"validUntil":"{july}"}}}}', check=False, kubeconfig=webhook.cluster.kubeconfig)
    assert out.returncode != 0
    assert 'denied the request: [R5]' in out.stderr, out.stderr
    assert get(webhook, ns, 'rgbinding', 'bob-view')['spec']['validUntil'] == june


def test_the_agency_example_is_ready_with_its_windows(controller: Rolegate) -> None:
    ns = 'agency-demo'
    kubectl('create', 'namespace', ns, kubeconfig=controller.cluster.kubeconfig)
    kubectl('apply', '-n', ns, '-f', REPO / 'examples' / 'agency', kubeconfig=controller.cluster.kubeconfig)
    for resource in ('rgbinding', 'rgmember', 'rgaccount'):
        eventually(f'every {resource} Ready', all_ready(controller, ns, resource))
    eventually('the audit window is open',
               has_condition(controller, ns, 'rgbinding', 'web-agency-audit-shop', 'Active', 'True'))
    eventually('the admin window has not opened',
               has_condition(controller, ns, 'rgbinding', 'web-agency-admin-shop', 'Active', 'False', 'NotYetActive'))
