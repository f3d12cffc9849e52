"""End to end under faults: `rolegate run` against an emulator that fails requests, drops its
watches, holds an object that does not decode, or loses the controller mid-burst (kill -9).

Each test starts its own emulator and rolegate (the faults are the emulator's: `POST
/_emulator/faults`, `POST /_emulator/drop-watches`), so these skip on a real cluster.
"""

from __future__ import annotations

import json
import pathlib
import re
import urllib.request
from collections.abc import Iterator

import pytest

from conftest import REAL, Cluster, kubectl, start_emulator
from test_rolegate import (ACCOUNT, CATALOG, Rolegate, all_ready, apply, condition, doc, eventually, get,
                           has_condition, install_crds, namespace)

pytestmark = pytest.mark.skipif(REAL, reason='faults are injected by the emulator')

KINDS = ('rgbinding', 'rgmember', 'rgaccount', 'rgrole')


def faults(cluster: Cluster, **spec: object) -> dict:
    """Sets the emulator's faults (no arguments: only reads them) and returns what it reports."""
    data = json.dumps(spec).encode() if spec else None
    request = urllib.request.Request(f'{cluster.url}/_emulator/faults', data=data, method='POST' if spec else 'GET',
                                     headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())


def drop_watches(cluster: Cluster) -> None:
    request = urllib.request.Request(f'{cluster.url}/_emulator/drop-watches', data=b'{}', method='POST')
    with urllib.request.urlopen(request, timeout=10):
        pass


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        m = re.fullmatch(rf'{re.escape(name)}(?:\{{(.*)\}})? (\S+)', line)
        if m and all(f'{k}="{v}"' in (m.group(1) or '') for k, v in labels.items()):
            total += float(m.group(2))
    return total


def every_kind_ready(rolegate: Rolegate, ns: str, timeout: float = 60, but: str | None = None) -> None:
    """Every object of the four kinds in `ns` (except the one named `but`) is Ready and current."""
    for resource in KINDS:
        if but is None:
            eventually(f'every {resource} Ready', all_ready(rolegate, ns, resource), timeout=timeout)
            continue

        def probe(resource: str = resource) -> bool:
            items = json.loads(kubectl('get', '-n', ns, resource, '-o', 'json',
                                       kubeconfig=rolegate.cluster.kubeconfig).stdout)['items']
            rest = [o for o in items if o['metadata']['name'] != but]
            return bool(rest) and all(
                (c := condition(o, 'Ready')) and c['status'] == 'True'
                and o['status'].get('observedGeneration') == o['metadata'].get('generation') for o in rest)
        eventually(f'every {resource} but {but} Ready', probe, timeout=timeout)


@pytest.fixture
def cluster(tmp_path: pathlib.Path) -> Iterator[Cluster]:
    cluster = start_emulator(tmp_path / 'emulator')
    install_crds(cluster)
    yield cluster
    cluster.stop()


def test_api_errors_on_status_writes_and_lists_converge(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    # Faults from the first list on: the caches must sync through them too.
    faults(cluster, status=0.3, list=0.3, codes=[500, 409, 'timeout'], timeout=0.5, seed=10)
    rolegate = Rolegate(cluster, tmp_path, webhook=None)
    try:
        ns = namespace(rolegate)
        apply(rolegate, ns, CATALOG + '\n---\n' + ACCOUNT)
        every_kind_ready(rolegate, ns, timeout=90)
        assert get(rolegate, ns, 'rgaccount', 'acme')['status']['conflicts'] == 0
        injected = faults(cluster)['injected']
        assert any(k.startswith('status:') for k in injected), injected
        assert rolegate.process.poll() is None, 'rolegate exited under faults'
        text = rolegate.metrics()
        # Each failed status write is one failed reconcile, counted once with its own kind.
        failed = metric(text, 'rolegate_reconciles_total', result='status_write')
        assert failed > 0, text
        assert metric(text, 'rolegate_reconciles_total', kind='error') == 0, text
    finally:
        faults(cluster, status=0, list=0)
        rolegate.stop()


def test_a_dropped_watch_and_410_on_resume_relist_and_nothing_is_lost(cluster: Cluster,
                                                                      tmp_path: pathlib.Path) -> None:
    rolegate = Rolegate(cluster, tmp_path, webhook=None)
    try:
        ns = namespace(rolegate)
        apply(rolegate, ns, CATALOG + '\n---\n' + ACCOUNT)
        every_kind_ready(rolegate, ns)
        # Every watch ends and resumes into 410 Gone; the re-list fails until the changes below are
        # in, so they reach rolegate only through the re-list: a deletion and a creation.
        faults(cluster, list=1.0, codes=[500])
        drop_watches(cluster)
        kubectl('delete', '-n', ns, 'rolebinding.rolegate.dev', 'acme-owner', kubeconfig=cluster.kubeconfig)
        apply(rolegate, ns, doc('Member', 'carol', {'account': 'acme', 'type': 'User'}))
        eventually('the re-list was attempted and failed', lambda: faults(cluster)['injected'].get('list:500', 0) >= 4)
        faults(cluster, list=0)
        eventually('the deleted owner binding shows on the account',
                   has_condition(rolegate, ns, 'rgaccount', 'acme', 'OwnerBound', 'False'))
        eventually('the member created while the watch was down is Ready',
                   has_condition(rolegate, ns, 'rgmember', 'carol', 'Ready', 'True'))
        # And the watches work again after the re-list.
        apply(rolegate, ns, doc('RoleBinding', 'acme-owner', {'account': 'acme', 'member': 'alice', 'role': 'owner'}))
        eventually('the owner is back', has_condition(rolegate, ns, 'rgaccount', 'acme', 'OwnerBound', 'True'))
    finally:
        faults(cluster, list=0)
        rolegate.stop()


def test_an_undecodable_object_is_reported_and_the_rest_syncs(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    ns = f'e2e-bad-{tmp_path.name[-6:]}'.lower().replace('_', '-')
    kubectl('create', 'namespace', ns, kubeconfig=cluster.kubeconfig)
    kubectl('apply', '--validate=false', '-n', ns, '-f', '-', kubeconfig=cluster.kubeconfig,
            input='---\n' + CATALOG + '\n---\n' + ACCOUNT + '\n---\n'
            # spec.account is a number: stored (the emulator skips schema validation, like a CRD
            # written before a schema change) and undecodable as a Member.
            + json.dumps({'apiVersion': 'rolegate.dev/v1alpha1', 'kind': 'Member', 'metadata': {'name': 'broken'},
                          'spec': {'account': 7, 'type': 'User'}}))
    # Ready means every cache synced: the bad object did not fail the Member list.
    rolegate = Rolegate(cluster, tmp_path, webhook=None)
    try:
        every_kind_ready(rolegate, ns, but='broken')
        broken = get(rolegate, ns, 'rgmember', 'broken')
        assert condition(broken, 'Ready') is None, broken
        text = rolegate.metrics()
        assert metric(text, 'rolegate_undecodable_objects_total', kind='Member') >= 1, text

        def reported() -> list:
            events = json.loads(kubectl('get', '-n', ns, 'events', '-o', 'json', kubeconfig=cluster.kubeconfig).stdout)
            return [e for e in events['items'] if e.get('reason') == 'Undecodable'
                    and (e.get('involvedObject') or e.get('regarding') or {}).get('name') == 'broken']
        eventually('a Warning Event on the bad object', reported)
        assert 'broken' in rolegate.log.read_text()
    finally:
        rolegate.stop()


def test_kill_9_mid_burst_then_one_write_per_changed_object(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    (tmp_path / 'first').mkdir()
    first = Rolegate(cluster, tmp_path / 'first', webhook=None)
    # A slow server (each status write served 0.2 s late) so the kill lands mid-burst.
    faults(cluster, delay=0.2)
    ns = namespace(first)
    accounts = 40
    burst = [CATALOG]
    for i in range(accounts):
        burst += [doc('Account', f'a{i}', {'projects': [{'name': 'web'}]}),
                  doc('Member', f'a{i}-alice', {'account': f'a{i}', 'type': 'User'}),
                  doc('RoleBinding', f'a{i}-owner', {'account': f'a{i}', 'member': f'a{i}-alice', 'role': 'owner'})]
    apply(first, ns, '\n---\n'.join(burst))
    # Mid-reconcile: some status written, not all.
    eventually('some status written', lambda: sum(faults(cluster)['status_writes'].values()) >= 10, timeout=60)
    first.process.kill()
    first.process.wait()

    def stale() -> set[str]:
        """Objects whose status does not yet say Ready for their current generation."""
        out = set()
        for resource in ('rgaccount', 'rgmember', 'rgbinding', 'rgrole'):
            items = json.loads(kubectl('get', '-n', ns, resource, '-o', 'json', kubeconfig=cluster.kubeconfig).stdout)
            for o in items['items']:
                c = condition(o, 'Ready')
                if not (c and c['status'] == 'True'
                        and (o.get('status') or {}).get('observedGeneration') == o['metadata'].get('generation')):
                    out.add(o['metadata']['name'])
        return out
    left = stale()
    assert left, 'the burst finished before the kill; nothing to prove'
    faults(cluster, reset=True, delay=0)
    (tmp_path / 'second').mkdir()
    second = Rolegate(cluster, tmp_path / 'second', webhook=None)
    try:
        every_kind_ready(second, ns, timeout=90)
        writes = faults(cluster)['status_writes']
        assert {n: c for n, c in writes.items() if c > 1} == {}, 'an object written more than once'
        assert left <= set(writes), f'stale objects never written: {sorted(left - set(writes))}'
    finally:
        second.stop()
