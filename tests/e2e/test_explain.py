"""`rolegate explain` and `who-can` live (`--cluster`, reading what real kubectl applied) give the same
answers as offline on the manifests, for every member and every held permission of every preset.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import uuid

import pytest

from conftest import REPO, Cluster, kubectl, kubectl_env
from test_rolegate import BINARY, VALIDATE, install_crds

AT = '2026-12-03T12:00:00Z'  # one instant for both sides: presets may carry time windows
PRESETS = sorted(p for p in (REPO / 'presets').iterdir() if p.is_dir())


def rolegate(cluster: Cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BINARY), *args], capture_output=True, text=True, timeout=60,
                          env=kubectl_env(cluster.kubeconfig))


def answer(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode in (0, 1), f'exit {proc.returncode}:\n{proc.stderr}{proc.stdout}'
    out = json.loads(proc.stdout)
    out.pop('namespace')  # offline reads `default`; live, the namespace the preset went to
    return out


@pytest.fixture(scope='module')
def cluster(emulator: Cluster) -> Cluster:
    install_crds(emulator)
    return emulator


@pytest.fixture(scope='module', params=PRESETS, ids=lambda p: p.name)
def applied(request: pytest.FixtureRequest, cluster: Cluster) -> tuple[pathlib.Path, str, list[dict]]:
    """A preset applied with kubectl into its own namespace, and its Members as the API server holds them."""
    ns = f'explain-{uuid.uuid4().hex[:8]}'
    kubectl('create', 'namespace', ns, kubeconfig=cluster.kubeconfig)
    kubectl('apply', *VALIDATE, '-n', ns, '-f', request.param, kubeconfig=cluster.kubeconfig)
    members = json.loads(kubectl('get', '-n', ns, 'rgmember', '-o', 'json', kubeconfig=cluster.kubeconfig).stdout)['items']
    assert members, f'{request.param.name} has members'
    return request.param, ns, members


def test_explain_live_matches_offline_for_every_member(cluster: Cluster, applied) -> None:
    preset, ns, members = applied
    for member in members:
        name, account = member['metadata']['name'], member['spec']['account']
        args = ['explain', name, '--account', account, '-o', 'json', '--at', AT]
        offline = answer(rolegate(cluster, *args, str(preset)))
        live = answer(rolegate(cluster, *args, '--cluster', '-n', ns))
        assert live == offline, f'{preset.name}: {name}'
        assert offline['member'] == name and offline['account'] == account


def sample(items: list[str], n: int = 3) -> list[str]:
    """Up to n items spread over a sorted list: the first, the last and one between."""
    if len(items) <= n:
        return items
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def test_who_can_live_matches_offline_for_held_permissions(cluster: Cluster, applied) -> None:
    """Live reading gives the offline answer. Three permissions per account: the reading path is
    the same for every permission, and `tests/properties.rs` proves who-can against the evaluation for
    all of them."""
    preset, ns, members = applied
    held: dict[str, set[str]] = {}
    for member in members:
        account = member['spec']['account']
        out = answer(rolegate(cluster, 'explain', member['metadata']['name'], '--account', account, '-o', 'json',
                              '--at', AT, str(preset)))
        held.setdefault(account, set()).update(out['permissions']['account'])
    assert any(held.values()), f'{preset.name}: someone holds something'
    for account, permissions in held.items():
        for permission in sample(sorted(permissions)):
            args = ['who-can', permission, '--account', account, '-o', 'json', '--at', AT]
            offline = answer(rolegate(cluster, *args, str(preset)))
            live = answer(rolegate(cluster, *args, '--cluster', '-n', ns))
            assert live == offline, f'{preset.name}: {permission} on {account}'
            assert offline['members'], f'{preset.name}: someone holds {permission}'


def test_can_i_exit_codes_live(cluster: Cluster, applied) -> None:
    preset, ns, members = applied
    name, account = members[0]['metadata']['name'], members[0]['spec']['account']
    who = ['explain', name, '--account', account, '--at', AT]
    live = [*who, '--cluster', '-n', ns]
    out = answer(rolegate(cluster, *who, '-o', 'json', str(preset)))
    if out['permissions']['account']:
        yes = rolegate(cluster, *live, '--permission', out['permissions']['account'][0])
        assert yes.returncode == 0 and yes.stdout.startswith('yes'), yes.stdout + yes.stderr
    no = rolegate(cluster, *live, '--permission', 'no.such.permission')
    assert no.returncode == 1 and no.stdout.startswith('no'), no.stdout + no.stderr


def test_an_unreachable_cluster_exits_2(tmp_path: pathlib.Path) -> None:
    kubeconfig = tmp_path / 'kubeconfig'
    kubeconfig.write_text(json.dumps({
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'gone',
        'clusters': [{'name': 'gone', 'cluster': {'server': 'http://127.0.0.1:9'}}],
        'contexts': [{'name': 'gone', 'context': {'cluster': 'gone', 'user': 'gone', 'namespace': 'default'}}],
        'users': [{'name': 'gone', 'user': {}}],
    }))
    for args in (['explain', 'anyone', '--cluster'], ['who-can', 'any.permission', '--cluster']):
        proc = subprocess.run([str(BINARY), *args], capture_output=True, text=True, timeout=60,
                              env=kubectl_env(str(kubeconfig)))
        assert proc.returncode == 2, f'{args}: exit {proc.returncode}\n{proc.stderr}'
        assert 'cluster' in proc.stderr, proc.stderr
