"""Kind to the API server (issue 23, DESIGN.md "Living with the API server"): with the chart's
defaults (webhook and controller in one process, 300 ms status delay, 30 s grace for references),
a GitOps sync in its own order is written about once per object with almost no Events, a Member's
status stays small on an account of 5,000 projects, and a status etcd cannot store ends in a
condition and one Event instead of a retry loop. The emulator counts status write attempts and
Events (GET /_emulator/stats) and refuses objects over etcd's 1.5 MiB as etcd does.
"""

from __future__ import annotations

import json
import pathlib
import time
import urllib.request
from collections.abc import Iterator

import pytest

from conftest import REAL, Cluster, kubectl, start_emulator
from test_rolegate import Rolegate, condition, eventually, free_port, install_crds, namespace, self_signed

pytestmark = pytest.mark.skipif(REAL, reason='counts writes and Events through the emulator (emulator tier only)')


def stats(cluster: Cluster) -> dict:
    with urllib.request.urlopen(f'{cluster.url}/_emulator/stats', timeout=10) as r:
        return json.load(r)


@pytest.fixture(scope='module')
def chart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rolegate]:
    """`rolegate run` as the chart runs it: webhook and controller in one process, defaults."""
    directory = tmp_path_factory.mktemp('chart')
    crt, pem = self_signed(directory)
    port = free_port()
    cluster = start_emulator(directory / 'emulator', '--webhook-url', f'https://127.0.0.1:{port}/validate',
                             '--webhook-ca', str(crt))
    install_crds(cluster)
    rolegate = Rolegate(cluster, directory, webhook=(port, crt, pem), extra=())
    yield rolegate
    rolegate.stop()
    cluster.stop()


@pytest.fixture(scope='module')
def controller_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rolegate]:
    directory = tmp_path_factory.mktemp('controller-only')
    cluster = start_emulator(directory / 'emulator')
    install_crds(cluster)
    rolegate = Rolegate(cluster, directory, webhook=None, extra=())
    yield rolegate
    rolegate.stop()
    cluster.stop()


def obj(kind: str, name: str, spec: dict) -> dict:
    return {'apiVersion': 'rolegate.dev/v1alpha1', 'kind': kind, 'metadata': {'name': name}, 'spec': spec}


def catalog() -> list[dict]:
    return [
        obj('Role', 'owner', {'scope': 'Account', 'owner': True, 'locked': True, 'memberTypes': ['User'],
                              'permissions': ['account.close'], 'includes': ['admin']}),
        obj('Role', 'admin', {'scope': 'Account', 'includes': ['billing', 'support', 'project-admin'],
                              'permissions': ['members.manage', 'roles.bind', 'account.view', 'account.edit',
                                              'domains.manage', 'stacks.manage']}),
        obj('Role', 'billing', {'scope': 'Account', 'permissions': ['billing.view', 'billing.manage']}),
        obj('Role', 'support', {'scope': 'Account', 'permissions': ['tickets.view', 'tickets.create']}),
        obj('Role', 'project-admin', {'scope': 'Project', 'exclusiveGroups': ['project-access'],
                                      'permissions': ['project.manage'], 'includes': ['project-viewer']}),
        obj('Role', 'project-viewer', {'scope': 'Project', 'exclusiveGroups': ['project-access'],
                                       'permissions': ['project.view']}),
    ]


def account(i: int) -> list[dict]:
    a = f'acct-{i:03}'
    out = [obj('Account', a, {'projects': [{'name': 'web'}, {'name': 'shop'}], 'memberAdminPermission': 'members.manage'})]
    out += [obj('Member', f'{a}-m{m}', {'account': a, 'type': 'User'}) for m in range(3)]
    out.append(obj('RoleBinding', f'{a}-owner', {'account': a, 'member': f'{a}-m0', 'role': 'owner'}))
    out.append(obj('RoleBinding', f'{a}-m1-billing', {'account': a, 'member': f'{a}-m1', 'role': 'billing'}))
    out.append(obj('RoleBinding', f'{a}-m1-support', {'account': a, 'member': f'{a}-m1', 'role': 'support'}))
    out.append(obj('RoleBinding', f'{a}-m2-pa-web', {'account': a, 'member': f'{a}-m2', 'role': 'project-admin',
                                                     'project': 'web'}))
    out.append(obj('RoleBinding', f'{a}-m2-pv-shop', {'account': a, 'member': f'{a}-m2', 'role': 'project-viewer',
                                                      'project': 'shop'}))
    return out


def write_tree(directory: pathlib.Path, accounts: int, per_file: int = 10) -> int:
    """The tree as a GitOps repository lays it out: a file per group of accounts, the role catalog in
    `roles.yaml`, which sorts last, so every binding arrives before its role."""
    directory.mkdir()
    count = 0
    for start in range(0, accounts, per_file):
        docs = [o for i in range(start, min(start + per_file, accounts)) for o in account(i)]
        (directory / f'accounts-{start:04}.yaml').write_text(''.join('---\n' + json.dumps(d) + '\n' for d in docs))
        count += len(docs)
    roles = catalog()
    (directory / 'roles.yaml').write_text(''.join('---\n' + json.dumps(d) + '\n' for d in roles))
    return count + len(roles)


def unready(rolegate: Rolegate, ns: str) -> list[str]:
    items = json.loads(kubectl('get', '-n', ns, 'rgaccount,rgmember,rgbinding,rgrole', '-o', 'json',
                               kubeconfig=rolegate.cluster.kubeconfig).stdout)['items']
    return [f'{o["kind"]}/{o["metadata"]["name"]}' for o in items
            if not ((c := condition(o, 'Ready')) and c['status'] == 'True'
                    and (o.get('status') or {}).get('observedGeneration') == o['metadata'].get('generation'))]


def test_a_gitops_sync_is_written_once_per_object_without_an_event_storm(chart: Rolegate, tmp_path: pathlib.Path) -> None:
    ns = namespace(chart)
    objects = write_tree(tmp_path / 'tree', accounts=40)
    before = stats(chart.cluster)
    started = time.monotonic()
    kubectl('apply', '--server-side', '-n', ns, '-f', tmp_path / 'tree', kubeconfig=chart.cluster.kubeconfig, timeout=300)
    applied = time.monotonic()
    assert applied - started < 30, 'the sync outlasted the grace: the test would not show what it means to'
    eventually('every object Ready', lambda: not unready(chart, ns) or None, timeout=60)
    ready = time.monotonic()
    time.sleep(1)  # anything still on its way
    after = stats(chart.cluster)
    writes = sum(after['statusWrites'].values()) - sum(before['statusWrites'].values())
    events = {k: n - before['events'].get(k, 0) for k, n in after['events'].items() if n - before['events'].get(k, 0)}
    print(f'\n{objects} objects: Ready {ready - applied:.1f} s after the last apply; {writes} status writes '
          f'({writes / objects:.2f} per object); Events {events}')
    assert writes / objects <= 1.5, (writes, objects, after['statusWrites'])
    assert sum(events.values()) / objects <= 0.1, events
    assert not [k for k in events if k.startswith('Warning/')], f'a reference that healed within the sync warned: {events}'


def test_a_member_of_an_account_of_5000_projects_has_a_small_status(chart: Rolegate) -> None:
    ns = namespace(chart)
    big = obj('Account', 'reseller', {'projects': [{'name': f'hosting-{i:04}'} for i in range(5000)]})
    docs = [*catalog(), big, obj('Member', 'rita', {'account': 'reseller', 'type': 'User'}),
            obj('RoleBinding', 'reseller-owner', {'account': 'reseller', 'member': 'rita', 'role': 'owner'})]
    kubectl('apply', '--server-side', '-n', ns, '-f', '-', input=''.join('---\n' + json.dumps(d) + '\n' for d in docs),
            kubeconfig=chart.cluster.kubeconfig, timeout=120)

    def written() -> dict | None:
        member = json.loads(kubectl('get', '-n', ns, 'rgmember', 'rita', '-o', 'json',
                                    kubeconfig=chart.cluster.kubeconfig).stdout)
        status = member.get('status') or {}
        return status if (c := condition(member, 'Ready')) and c['status'] == 'True' and status.get('permissions') else None

    status = eventually("rita's status", written, timeout=60)
    size = len(json.dumps(status, separators=(',', ':')))
    print(f"\nrita's status: {size} bytes; 13 permissions held on 5,000 projects")
    assert len(status['permissions']['account']) == 13, status['permissions']
    assert 'projects' not in status['permissions'] or status['permissions']['projects'] == {}, 'stated once'
    assert size < 64 * 1024, size


def test_a_status_etcd_cannot_store_is_reported_once_and_not_retried(controller_only: Rolegate, tmp_path: pathlib.Path) -> None:
    """A member with 1,800 direct bindings of long names: its status (sources and per-project roles)
    passes etcd's 1.5 MiB. The write fails, the member says so in Ready, one Warning, no loop."""
    rolegate, ns = controller_only, namespace(controller_only)
    n, long = 1800, 'x' * 200
    projects = [f'site-{i:04}-{long[:50]}' for i in range(n)]
    docs = [*catalog(),
            obj('Role', f'site-editor-{long}', {'scope': 'Project', 'permissions': ['site.edit']}),
            obj('Account', 'agency', {'projects': [{'name': p} for p in projects]}),
            obj('Member', 'olga', {'account': 'agency', 'type': 'User'}),
            obj('Member', 'pat', {'account': 'agency', 'type': 'User'}),
            obj('RoleBinding', 'agency-owner', {'account': 'agency', 'member': 'olga', 'role': 'owner'})]
    docs += [obj('RoleBinding', f'pat-{i:04}-{long}', {'account': 'agency', 'member': 'pat',
                                                         'role': f'site-editor-{long}', 'project': p})
             for i, p in enumerate(projects)]
    (tmp_path / 'big.yaml').write_text(''.join('---\n' + json.dumps(d) + '\n' for d in docs))
    kubectl('apply', '--server-side', '-n', ns, '-f', tmp_path / 'big.yaml', kubeconfig=rolegate.cluster.kubeconfig,
            timeout=600)

    def reported() -> dict | None:
        member = json.loads(kubectl('get', '-n', ns, 'rgmember', 'pat', '-o', 'json',
                                    kubeconfig=rolegate.cluster.kubeconfig).stdout)
        c = condition(member, 'Ready')
        return member if c and c['reason'] == 'StatusTooLarge' else None

    member = eventually('Ready=False StatusTooLarge on pat', reported, timeout=120)
    ready, stalled = condition(member, 'Ready'), condition(member, 'Stalled')
    assert ready['status'] == 'False' and 'request is too large' in ready['message'], ready
    assert stalled and stalled['status'] == 'True', member['status']
    # Once the controller has caught up with the apply (every binding's status written), nothing
    # changes: the member is not tried again.
    eventually('every binding Ready', lambda: not [o for o in unready(rolegate, ns) if o.startswith('RoleBinding/')] or None,
               timeout=180)
    time.sleep(2)
    key = f'members/{ns}/pat'
    first = stats(rolegate.cluster)
    time.sleep(30)
    later = stats(rolegate.cluster)
    attempts = later['statusAttempts'].get(key, 0) - first['statusAttempts'].get(key, 0)
    print(f'\npat: {first["statusAttempts"].get(key)} status write attempts during the apply; '
          f'{attempts} in the 30 s after; refused as too large: {later["tooLarge"]}')
    assert attempts == 0, f'{attempts} write attempts in 30 s: a retry loop'
    assert later['events'].get('Warning/StatusTooLarge') == 1, later['events']
