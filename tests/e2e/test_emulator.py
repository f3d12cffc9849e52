"""Proves the API emulator behaves like a kube-apiserver for what rolegate needs, using real kubectl.

Every test except the emulator-only ones (webhook stub, flags, bookmarks) also passes against a real
cluster: ROLEGATE_E2E_KUBECONFIG=~/.kube/kind.yaml .venv/bin/python -m pytest -q tests/e2e
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import pathlib
import re
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from conftest import REAL, REPO, Cluster, kubectl, kubectl_env

API = '/apis/rolegate.dev/v1alpha1'
emulator_only = pytest.mark.skipif(REAL, reason='emulator-only behaviour')


def widget(name: str, ns: str, size: int = 1, labels: dict | None = None, **extra: object) -> dict:
    return {'apiVersion': 'rolegate.dev/v1alpha1', 'kind': 'Widget',
            'metadata': {'name': name, 'namespace': ns, 'labels': labels or {}}, 'spec': {'size': size}, **extra}


def get(ns: str, name: str, kind: str = 'widgets.rolegate.dev', *args: str) -> dict:
    return json.loads(kubectl('get', kind, name, '-n', ns, '-o', 'json', *args).stdout)


def raw(path: str) -> dict:
    return json.loads(kubectl('get', '--raw', path).stdout)


def events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Watch:
    """`kubectl get -w` in the background, one printed line per event."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(['kubectl', 'get', *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=kubectl_env())
        self.lines: list[str] = []
        threading.Thread(target=lambda: [self.lines.append(line.rstrip('\n')) for line in self.proc.stdout],
                         daemon=True).start()

    def wait_for(self, predicate, timeout: float = 15) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.lines):
                return list(self.lines)
            time.sleep(0.05)
        raise AssertionError(f'watch never matched; saw {self.lines!r}; stderr {self.proc.stderr.read() if self.proc.poll() is not None else ""}')

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


# ----------------------------------------------------------------------------- discovery

def test_crd_names_are_discoverable(ns: str) -> None:
    kubectl('apply', '-f', '-', input=widget('w1', ns, 3))
    for kind in ('rgw', 'rgwidget', 'widget', 'widgets', 'widgets.rolegate.dev', 'widgets.v1alpha1.rolegate.dev', 'rolegate'):
        out = kubectl('get', kind, '-n', ns, '-o', 'name').stdout.split()
        assert out == ['widget.rolegate.dev/w1'], kind
    resources = kubectl('api-resources', '--api-group=rolegate.dev', '-o', 'wide').stdout
    assert re.search(r'widgets\s+rgw(idget)?,rgw(idget)?\s+rolegate\.dev/v1alpha1\s+true\s+Widget', resources), resources
    assert 'rolegate' in resources.split('\n')[1]  # CATEGORIES column


def test_printer_columns_in_kubectl_get(ns: str) -> None:
    kubectl('apply', '-f', '-', input=widget('w1', ns, 7))
    kubectl('patch', 'rgw', 'w1', '-n', ns, '--subresource', 'status', '--type', 'merge',
            '-p', '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}')
    lines = kubectl('get', 'rgw', '-n', ns).stdout.splitlines()
    assert lines[0].split() == ['NAME', 'SIZE', 'READY', 'AGE']
    assert lines[1].split()[:3] == ['w1', '7', 'True']
    assert re.fullmatch(r'\d+s', lines[1].split()[3])
    all_ns = kubectl('get', 'rolegate', '-A').stdout
    assert re.search(rf'{ns}\s+w1\s+7\s+True', all_ns), all_ns


def test_rolegate_crds_register_with_their_short_names(ns: str) -> None:
    crds = sorted((REPO / 'crds').glob('*.yaml'))
    if not crds:
        pytest.skip('no CRDs under crds/ yet')
    for crd in crds:
        kubectl('apply', '--server-side', '--force-conflicts', '-f', crd)
    kubectl('wait', '--for=condition=Established', '--timeout=60s', *(f'crd/{c.stem}' for c in crds))
    for kind in ('rgrole', 'roles.rolegate.dev', 'rgaccount', 'rgmember', 'rgbinding', 'rolegate'):
        out = kubectl('get', kind, '-n', ns, check=False)
        assert out.returncode == 0, (kind, out.stderr)
        assert 'No resources found' in out.stderr or 'NAME' in out.stdout
    names = set(kubectl('api-resources', '--categories=rolegate', '-o', 'name').stdout.split())
    assert {'accounts.rolegate.dev', 'members.rolegate.dev', 'roles.rolegate.dev', 'rolebindings.rolegate.dev'} <= names


# ----------------------------------------------------------------------------- bookkeeping & CRUD

def test_metadata_bookkeeping_and_generation(ns: str) -> None:
    created = json.loads(kubectl('create', '-f', '-', '-o', 'json', input=widget('w1', ns, 1)).stdout)
    meta = created['metadata']
    assert re.fullmatch(r'[0-9a-f-]{36}', meta['uid'])
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', meta['creationTimestamp'])
    assert meta['generation'] == 1 and meta['resourceVersion'].isdigit()

    def patch(*args: str) -> dict:
        return json.loads(kubectl('patch', 'rgw', 'w1', '-n', ns, '--type', 'merge', '-o', 'json', *args).stdout)

    spec = patch('-p', '{"spec":{"size":2}}')
    assert spec['metadata']['generation'] == 2
    assert int(spec['metadata']['resourceVersion']) > int(meta['resourceVersion'])
    labels = patch('-p', '{"metadata":{"labels":{"a":"b"}}}')
    assert labels['metadata']['generation'] == 2  # metadata-only: no new generation
    status = patch('--subresource', 'status', '-p', '{"status":{"observedGeneration":2}}')
    assert status['metadata']['generation'] == 2 and status['status'] == {'observedGeneration': 2}
    assert int(status['metadata']['resourceVersion']) > int(labels['metadata']['resourceVersion'])
    assert status['metadata']['uid'] == meta['uid'] and status['metadata']['creationTimestamp'] == meta['creationTimestamp']


def test_list_shape_and_pagination(ns: str) -> None:
    for i in range(3):
        kubectl('create', '-f', '-', input=widget(f'w{i}', ns))
    listed = raw(f'{API}/namespaces/{ns}/widgets')
    assert listed['kind'] == 'WidgetList' and listed['apiVersion'] == 'rolegate.dev/v1alpha1'
    assert listed['metadata']['resourceVersion'].isdigit()
    assert [i['metadata']['name'] for i in listed['items']] == ['w0', 'w1', 'w2']
    page = raw(f'{API}/namespaces/{ns}/widgets?limit=2')
    assert len(page['items']) == 2 and page['metadata']['continue']
    rest = raw(f'{API}/namespaces/{ns}/widgets?limit=2&continue={page["metadata"]["continue"]}')
    assert [i['metadata']['name'] for i in page['items'] + rest['items']] == ['w0', 'w1', 'w2']
    assert not rest['metadata'].get('continue')


def test_already_exists_and_not_found(ns: str) -> None:
    kubectl('create', '-f', '-', input=widget('w1', ns))
    again = kubectl('create', '-f', '-', input=widget('w1', ns), check=False)
    assert again.returncode == 1
    assert 'Error from server (AlreadyExists)' in again.stderr and 'widgets.rolegate.dev "w1" already exists' in again.stderr
    missing = kubectl('get', 'rgw', 'nope', '-n', ns, check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): widgets.rolegate.dev "nope" not found' in missing.stderr


def test_replace_with_optimistic_concurrency(ns: str) -> None:
    kubectl('create', '-f', '-', input=widget('w1', ns, 1))
    current = get(ns, 'w1')
    current['spec']['size'] = 5
    replaced = json.loads(kubectl('replace', '-f', '-', '-o', 'json', input=current).stdout)
    assert replaced['spec']['size'] == 5 and replaced['metadata']['generation'] == 2
    current['spec']['size'] = 6  # still carries the old resourceVersion
    stale = kubectl('replace', '-f', '-', input=current, check=False)
    assert stale.returncode == 1
    assert 'Error from server (Conflict)' in stale.stderr and 'the object has been modified' in stale.stderr
    assert get(ns, 'w1')['spec']['size'] == 5


def test_patch_types(ns: str) -> None:
    kubectl('create', '-f', '-', input=widget('w1', ns, 1, labels={'keep': 'me'}))
    kubectl('patch', 'rgw', 'w1', '-n', ns, '--type', 'merge', '-p', '{"spec":{"size":2,"color":"red"}}')
    kubectl('patch', 'rgw', 'w1', '-n', ns, '--type', 'json',
            '-p', '[{"op":"replace","path":"/spec/size","value":3},{"op":"remove","path":"/spec/color"}]')
    obj = get(ns, 'w1')
    assert obj['spec'] == {'size': 3} and obj['metadata']['labels'] == {'keep': 'me'}
    failed = kubectl('patch', 'rgw', 'w1', '-n', ns, '--type', 'json', '-p', '[{"op":"test","path":"/spec/size","value":9}]', check=False)
    assert failed.returncode == 1 and get(ns, 'w1')['spec'] == {'size': 3}
    # Like the real server: no strategic merge patch for custom resources.
    strategic = kubectl('patch', 'rgw', 'w1', '-n', ns, '--type', 'strategic', '-p', '{"spec":{"size":4}}', check=False)
    assert strategic.returncode == 1 and 'strategic-merge-patch+json is not supported' in strategic.stderr
    # …but built-in kinds take it.
    kubectl('create', 'configmap', 'cm', '-n', ns, '--from-literal=a=1')
    kubectl('patch', 'configmap', 'cm', '-n', ns, '-p', '{"data":{"b":"2"}}')
    assert get(ns, 'cm', 'configmap')['data'] == {'a': '1', 'b': '2'}


def test_server_side_apply(ns: str) -> None:
    first = widget('w1', ns, 1, labels={'a': '1', 'b': '2'})
    out = kubectl('apply', '--server-side', '--field-manager=ci', '-f', '-', input=first)
    assert 'serverside-applied' in out.stdout
    obj = get(ns, 'w1', 'widgets.rolegate.dev', '--show-managed-fields')
    assert obj['spec'] == {'size': 1} and obj['metadata']['labels'] == {'a': '1', 'b': '2'}
    managers = {(m['manager'], m['operation']) for m in obj['metadata']['managedFields']}
    assert ('ci', 'Apply') in managers
    # A field dropped from the applied configuration is removed; another writer's field stays.
    kubectl('patch', 'rgw', 'w1', '-n', ns, '--type', 'merge', '-p', '{"spec":{"owner":"someone-else"}}')
    second = widget('w1', ns, 2, labels={'a': '1'})
    kubectl('apply', '--server-side', '--field-manager=ci', '--force-conflicts', '-f', '-', input=second)
    obj = get(ns, 'w1')
    assert obj['metadata']['labels'] == {'a': '1'}
    assert obj['spec'] == {'size': 2, 'owner': 'someone-else'}
    assert obj['metadata']['generation'] == 3


def test_status_subresource_is_separate(ns: str) -> None:
    kubectl('apply', '-f', '-', input=widget('w1', ns, 1, status={'phase': 'Ignored'}))
    assert 'status' not in get(ns, 'w1')  # the main resource ignores .status
    kubectl('patch', 'rgw', 'w1', '-n', ns, '--subresource', 'status', '--type', 'merge',
            '-p', '{"status":{"phase":"Done"},"spec":{"size":99}}')
    obj = get(ns, 'w1')
    assert obj['status'] == {'phase': 'Done'} and obj['spec'] == {'size': 1}  # /status ignores .spec
    assert obj['metadata']['generation'] == 1
    kubectl('patch', 'rgw', 'w1', '-n', ns, '--type', 'merge', '-p', '{"status":{"phase":"Nope"},"spec":{"size":2}}')
    obj = get(ns, 'w1')
    assert obj['status'] == {'phase': 'Done'} and obj['spec'] == {'size': 2}


def test_finalizers_hold_deletion(ns: str) -> None:
    w = widget('w1', ns)
    w['metadata']['finalizers'] = ['rolegate.dev/cleanup']
    kubectl('create', '-f', '-', input=w)
    kubectl('delete', 'rgw', 'w1', '-n', ns, '--wait=false')
    held = get(ns, 'w1')
    assert held['metadata']['deletionTimestamp'] and held['metadata']['finalizers'] == ['rolegate.dev/cleanup']
    more = kubectl('patch', 'rgw', 'w1', '-n', ns, '--type', 'merge',
                   '-p', '{"metadata":{"finalizers":["rolegate.dev/cleanup","x.dev/other"]}}', check=False)
    assert more.returncode == 1 and 'no new finalizers can be added' in more.stderr
    kubectl('patch', 'rgw', 'w1', '-n', ns, '--type', 'merge', '-p', '{"metadata":{"finalizers":null}}')
    gone = kubectl('get', 'rgw', 'w1', '-n', ns, '--ignore-not-found', '-o', 'name')
    assert gone.stdout == ''
    kubectl('create', '-f', '-', input=widget('w2', ns))
    kubectl('delete', 'rgw', 'w2', '-n', ns)  # no finalizers: gone at once (kubectl waits for it)
    assert kubectl('get', 'rgw', '-n', ns, '-o', 'name').stdout == ''


# ----------------------------------------------------------------------------- watch, selectors

def test_kubectl_get_watch(ns: str) -> None:
    kubectl('create', '-f', '-', input=widget('w1', ns, 1))
    watch = Watch('rgw', '-n', ns, '-w', '--output-watch-events',
                  '-o', 'jsonpath={.type} {.object.metadata.name} {.object.spec.size}{"\\n"}')
    try:
        watch.wait_for(lambda lines: 'ADDED w1 1' in lines)
        kubectl('create', '-f', '-', input=widget('w2', ns, 2))
        kubectl('patch', 'rgw', 'w1', '-n', ns, '--type', 'merge', '-p', '{"spec":{"size":10}}')
        kubectl('delete', 'rgw', 'w2', '-n', ns)
        lines = watch.wait_for(lambda lines: any(line.startswith('DELETED w2') for line in lines))
        assert lines == ['ADDED w1 1', 'ADDED w2 2', 'MODIFIED w1 10', 'DELETED w2 2']
    finally:
        watch.stop()
    table = Watch('rgw', '-n', ns, '-w')  # human output: server-side tables over the watch
    try:
        table.wait_for(lambda lines: len(lines) >= 2)
        kubectl('patch', 'rgw', 'w1', '-n', ns, '--type', 'merge', '-p', '{"spec":{"size":11}}')
        lines = table.wait_for(lambda lines: len(lines) >= 3)
        assert lines[0].split() == ['NAME', 'SIZE', 'READY', 'AGE'] and lines[2].split()[:2] == ['w1', '11']
    finally:
        table.stop()


def test_watch_resumes_from_resource_version(ns: str) -> None:
    kubectl('create', '-f', '-', input=widget('w1', ns, 1))
    rv = raw(f'{API}/namespaces/{ns}/widgets')['metadata']['resourceVersion']
    kubectl('patch', 'rgw', 'w1', '-n', ns, '--type', 'merge', '-p', '{"spec":{"size":2}}')
    kubectl('create', '-f', '-', input=widget('w2', ns, 3))
    kubectl('delete', 'rgw', 'w1', '-n', ns)
    out = kubectl('get', '--raw', f'{API}/namespaces/{ns}/widgets?watch=1&resourceVersion={rv}&timeoutSeconds=1').stdout
    seen = [(e['type'], e['object']['metadata']['name']) for e in events(out)]
    assert seen == [('MODIFIED', 'w1'), ('ADDED', 'w2'), ('DELETED', 'w1')]
    rvs = [int(e['object']['metadata']['resourceVersion']) for e in events(out)]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)
    # Without a resourceVersion a watch starts with the current objects, as ADDED.
    out = kubectl('get', '--raw', f'{API}/namespaces/{ns}/widgets?watch=true&timeoutSeconds=1').stdout
    assert [(e['type'], e['object']['metadata']['name']) for e in events(out)] == [('ADDED', 'w2')]


def test_label_and_field_selectors(ns: str) -> None:
    kubectl('create', '-f', '-', input=widget('a', ns, labels={'color': 'red', 'tier': 'gold'}))
    kubectl('create', '-f', '-', input=widget('b', ns, labels={'color': 'red'}))
    kubectl('create', '-f', '-', input=widget('c', ns, labels={'color': 'blue'}))

    def names(*args: str) -> list[str]:
        return kubectl('get', 'rgw', '-n', ns, '-o', 'jsonpath={.items[*].metadata.name}', *args).stdout.split()

    assert names('-l', 'color=red') == ['a', 'b']
    assert names('-l', 'color=red,tier!=gold') == ['b']
    assert names('-l', 'color in (red,blue),!tier') == ['b', 'c']
    assert names('-l', 'tier') == ['a']
    assert names('--field-selector', 'metadata.name=c') == ['c']
    assert names('--field-selector', 'metadata.name!=c', '-l', 'color=red') == ['a', 'b']
    # A watch with a selector sees an object leave the selection as DELETED.
    rv = raw(f'{API}/namespaces/{ns}/widgets')['metadata']['resourceVersion']
    kubectl('label', 'rgw', 'b', '-n', ns, 'color=green', '--overwrite')
    out = kubectl('get', '--raw', f'{API}/namespaces/{ns}/widgets?watch=true&resourceVersion={rv}'
                                  f'&labelSelector=color%3Dred&timeoutSeconds=1').stdout
    assert [(e['type'], e['object']['metadata']['name']) for e in events(out)] == [('DELETED', 'b')]


def test_all_namespaces_list_and_watch(ns: str) -> None:
    other = f'{ns}-b'
    kubectl('create', 'namespace', other)
    try:
        mark = {'e2e': ns}
        kubectl('create', '-f', '-', input=widget('w1', ns, labels=mark))
        rv = raw(f'{API}/widgets?labelSelector=e2e%3D{ns}')['metadata']['resourceVersion']
        kubectl('create', '-f', '-', input=widget('w2', other, labels=mark))
        out = kubectl('get', 'rgw', '-A', '-l', f'e2e={ns}', '-o', 'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}')
        assert out.stdout.split() == [f'{ns}/w1', f'{other}/w2']
        watched = kubectl('get', '--raw', f'{API}/widgets?watch=true&resourceVersion={rv}&labelSelector=e2e%3D{ns}&timeoutSeconds=1')
        assert [(e['type'], e['object']['metadata']['namespace']) for e in events(watched.stdout)] == [('ADDED', other)]
    finally:
        kubectl('delete', 'namespace', other, '--wait=false')


def test_kubectl_wait_for_condition(ns: str) -> None:
    kubectl('create', '-f', '-', input=widget('w1', ns))
    waiter = subprocess.Popen(['kubectl', 'wait', '--for=condition=Ready', '--timeout=20s', 'rgw/w1', '-n', ns],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kubectl_env())
    time.sleep(0.5)
    assert waiter.poll() is None  # not Ready yet
    kubectl('patch', 'rgw', 'w1', '-n', ns, '--subresource', 'status', '--type', 'merge',
            '-p', '{"status":{"conditions":[{"type":"Ready","status":"True","reason":"Done","message":"ok"}]}}')
    out, err = waiter.communicate(timeout=20)
    assert waiter.returncode == 0, err
    assert 'condition met' in out


def test_server_dry_run_stores_nothing(ns: str) -> None:
    out = kubectl('create', '--dry-run=server', '-f', '-', '-o', 'json', input=widget('w1', ns, 4))
    assert json.loads(out.stdout)['spec'] == {'size': 4}
    assert kubectl('get', 'rgw', 'w1', '-n', ns, '--ignore-not-found', '-o', 'name').stdout == ''
    kubectl('create', '-f', '-', input=widget('w1', ns, 1))
    kubectl('patch', 'rgw', 'w1', '-n', ns, '--type', 'merge', '--dry-run=server', '-p', '{"spec":{"size":9}}')
    kubectl('delete', 'rgw', 'w1', '-n', ns, '--dry-run=server')
    assert get(ns, 'w1')['spec'] == {'size': 1}


# ----------------------------------------------------------------------------- built-in kinds

def test_events_share_storage_between_api_groups(ns: str) -> None:
    event = {'apiVersion': 'events.k8s.io/v1', 'kind': 'Event', 'metadata': {'name': 'w1.1', 'namespace': ns},
             'eventTime': '2025-01-01T00:00:00.000000Z', 'reportingController': 'rolegate.dev/controller',
             'reportingInstance': 'rolegate-0', 'action': 'Reconcile', 'reason': 'Accepted', 'type': 'Normal',
             'note': '[R5] all good', 'regarding': {'apiVersion': 'rolegate.dev/v1alpha1', 'kind': 'Widget',
                                                    'name': 'w1', 'namespace': ns}}
    kubectl('create', '-f', '-', input=event)
    core = json.loads(kubectl('get', 'events.v1.', '-n', ns, '-o', 'json').stdout)['items']
    assert [(e['message'], e['involvedObject']['name'], e['reason']) for e in core] == [('[R5] all good', 'w1', 'Accepted')]
    picked = kubectl('get', 'events.v1.', '-n', ns, '--field-selector', 'involvedObject.name=w1', '-o', 'name').stdout
    assert picked.split() == ['event/w1.1']
    assert get(ns, 'w1.1', 'events.v1.events.k8s.io')['note'] == '[R5] all good'


def test_leases_for_leader_election(ns: str) -> None:
    lease = {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease', 'metadata': {'name': 'rolegate', 'namespace': ns},
             'spec': {'holderIdentity': 'a', 'leaseDurationSeconds': 15}}
    kubectl('create', '-f', '-', input=lease)
    current = get(ns, 'rolegate', 'lease')
    current['spec']['holderIdentity'] = 'b'
    kubectl('replace', '-f', '-', input=current)
    current['spec']['holderIdentity'] = 'c'  # lost the race: stale resourceVersion
    stale = kubectl('replace', '-f', '-', input=current, check=False)
    assert stale.returncode == 1 and 'Conflict' in stale.stderr
    assert get(ns, 'rolegate', 'lease')['spec']['holderIdentity'] == 'b'


@emulator_only
def test_namespaces_are_created_on_demand_and_deletion_cascades(emulator: Cluster, widget_crd: str) -> None:
    kubectl('create', '-f', '-', input=widget('w1', 'made-on-demand'))
    assert kubectl('get', 'namespace', 'made-on-demand', '-o', 'jsonpath={.status.phase}').stdout == 'Active'
    kubectl('delete', 'namespace', 'made-on-demand')
    assert kubectl('get', 'rgw', '-n', 'made-on-demand', '-o', 'name').stdout == ''


@emulator_only
def test_bookmarks_initial_events_and_crd_preload(emulator_factory) -> None:
    emu = emulator_factory('--bookmark-interval', '0.3', '--crd', str(REPO / 'tests/e2e/fixtures/widget-crd.yaml'))
    emu.kubectl('create', '-f', '-', input=widget('w1', 'default'))
    out = emu.kubectl('get', '--raw', f'{API}/widgets?watch=true&allowWatchBookmarks=true&sendInitialEvents=true'
                                      '&resourceVersionMatch=NotOlderThan&timeoutSeconds=1').stdout
    seen = events(out)
    assert seen[0]['type'] == 'ADDED' and seen[0]['object']['metadata']['name'] == 'w1'
    assert seen[1]['type'] == 'BOOKMARK'
    assert seen[1]['object']['metadata']['annotations'] == {'k8s.io/initial-events-end': 'true'}
    assert [e['type'] for e in seen[2:]] and {e['type'] for e in seen[2:]} == {'BOOKMARK'}


@emulator_only
def test_crd_deletion_removes_the_resource(emulator_factory) -> None:
    emu = emulator_factory('--crd', str(REPO / 'tests/e2e/fixtures/widget-crd.yaml'))
    emu.kubectl('create', '-f', '-', input=widget('w1', 'default'))
    emu.kubectl('delete', 'crd', 'widgets.rolegate.dev')
    gone = emu.kubectl('get', '--raw', f'{API}/widgets', check=False)
    assert gone.returncode == 1 and 'NotFound' in gone.stderr


@emulator_only
def test_kube_rs_request_shapes(emulator: Cluster, ns: str) -> None:
    """The requests rolegate's kube-rs code makes, byte for byte: status server-side apply without
    metadata.name (src/controller), watch query strings, and Lease create/replace (src/runtime/leader.rs)."""
    import urllib.error
    import urllib.request

    def call(method: str, path: str, body: object = None, ctype: str = 'application/json') -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(emulator.url + path, data=data, method=method, headers={'Content-Type': ctype})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    kubectl('create', '-f', '-', input=widget('w1', ns, 1))
    status = {'apiVersion': 'rolegate.dev/v1alpha1', 'kind': 'Widget',
              'status': {'observedGeneration': 1, 'conditions': [{'type': 'Ready', 'status': 'True'}, {'type': 'Stale', 'status': 'True'}]}}
    apply = f'{API}/namespaces/{ns}/widgets/w1/status?&fieldManager=rolegate&force=true'
    code, obj = call('PATCH', apply, status, 'application/apply-patch+yaml')
    assert code == 200 and obj['status']['observedGeneration'] == 1 and obj['metadata']['generation'] == 1
    rv = obj['metadata']['resourceVersion']
    assert call('PATCH', apply, status, 'application/apply-patch+yaml')[1]['metadata']['resourceVersion'] == rv  # no-op
    del status['status']['observedGeneration']
    code, obj = call('PATCH', apply, status, 'application/apply-patch+yaml')
    assert 'observedGeneration' not in obj['status']  # dropped by its only applier
    entry = [m for m in obj['metadata']['managedFields'] if m['manager'] == 'rolegate']
    assert entry[0]['operation'] == 'Apply' and entry[0]['subresource'] == 'status'

    watch = f'{API}/namespaces/{ns}/widgets?&watch=true&timeoutSeconds=1&allowWatchBookmarks=true&resourceVersion={rv}'
    with urllib.request.urlopen(emulator.url + watch, timeout=10) as resp:
        assert resp.headers['Content-Type'].startswith('application/json')
        assert [e['type'] for e in events(resp.read().decode())] == ['MODIFIED']

    leases = f'/apis/coordination.k8s.io/v1/namespaces/{ns}/leases'
    lease = {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease', 'metadata': {'name': 'rolegate-leader'},
             'spec': {'holderIdentity': 'pod-a', 'leaseDurationSeconds': 15, 'renewTime': '2025-01-01T00:00:00.000000Z'}}
    assert call('POST', leases, lease)[0] == 201
    code, err = call('POST', leases, lease)
    assert code == 409 and err['reason'] == 'AlreadyExists'
    current = call('GET', f'{leases}/rolegate-leader')[1]
    current['spec']['holderIdentity'] = 'pod-b'
    assert call('PUT', f'{leases}/rolegate-leader', current)[0] == 200
    code, err = call('PUT', f'{leases}/rolegate-leader', current)  # same resourceVersion again
    assert code == 409 and err['reason'] == 'Conflict'


# ----------------------------------------------------------------------------- admission webhook

class WebhookStub:
    """A tiny HTTPS validating webhook: denies Widgets named `bad`, warns on `warn`, records reviews."""

    def __init__(self, directory: pathlib.Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'rolegate-webhook-stub')])
        start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(start)
                .not_valid_after(start + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]), critical=False)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(key, hashes.SHA256()))
        self.ca = directory / 'webhook.pem'
        self.ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        keyfile = directory / 'webhook.key'
        keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        self.reviews: list[dict] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                review = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
                req = review['request']
                stub.reviews.append(req)
                answer: dict = {'uid': req['uid'], 'allowed': True}
                if req['name'] == 'bad' and req['operation'] != 'DELETE':
                    answer = {'uid': req['uid'], 'allowed': False,
                              'status': {'code': 403, 'reason': 'Forbidden', 'message': '[R0] widgets named bad are not allowed'}}
                elif req['name'] == 'warn':
                    answer['warnings'] = ['[R9] widget "warn" is redundant']
                body = json.dumps({'apiVersion': 'admission.k8s.io/v1', 'kind': 'AdmissionReview', 'response': answer}).encode()
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.ca, keyfile)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f'https://127.0.0.1:{self.server.server_address[1]}/validate'
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ops(self) -> list[tuple[str, str]]:
        return [(r['operation'], r['name']) for r in self.reviews]


@pytest.fixture
def webhook(tmp_path: pathlib.Path, emulator_factory) -> Iterator[tuple[WebhookStub, Cluster]]:
    stub = WebhookStub(tmp_path)
    emu = emulator_factory('--webhook-url', stub.url, '--webhook-ca', str(stub.ca),
                           '--crd', str(REPO / 'tests/e2e/fixtures/widget-crd.yaml'))
    yield stub, emu
    stub.server.shutdown()


@emulator_only
def test_webhook_denies_with_its_message(webhook) -> None:
    stub, emu = webhook
    denied = emu.kubectl('apply', '-f', '-', input=widget('bad', 'default'), check=False)
    assert denied.returncode == 1
    assert ('Error from server (Forbidden): error when creating "STDIN": admission webhook "validate.rolegate.dev" '
            'denied the request: [R0] widgets named bad are not allowed') in denied.stderr
    assert emu.kubectl('get', 'rgw', 'bad', '--ignore-not-found', '-o', 'name').stdout == ''
    review = stub.reviews[-1]
    assert review['kind'] == {'group': 'rolegate.dev', 'version': 'v1alpha1', 'kind': 'Widget'}
    assert review['resource'] == {'group': 'rolegate.dev', 'version': 'v1alpha1', 'resource': 'widgets'}
    assert (review['operation'], review['namespace'], review['dryRun'], review['oldObject']) == ('CREATE', 'default', False, None)
    assert review['object']['spec'] == {'size': 1} and review['options']['kind'] == 'CreateOptions'
    assert review['userInfo'] == {'username': 'kubernetes-admin', 'groups': ['system:masters', 'system:authenticated']}


@emulator_only
def test_webhook_warnings_reach_kubectl(webhook) -> None:
    stub, emu = webhook
    out = emu.kubectl('apply', '-f', '-', input=widget('warn', 'default'))
    assert 'Warning: [R9] widget "warn" is redundant' in out.stderr
    assert 'widget.rolegate.dev/warn created' in out.stdout


@emulator_only
def test_webhook_sees_updates_deletes_and_the_requester(webhook) -> None:
    stub, emu = webhook
    emu.kubectl('create', '-f', '-', '--as', 'alice@acme.example', '--as-group', 'acme-admins', input=widget('w1', 'default', 1))
    assert stub.reviews[-1]['userInfo'] == {'username': 'alice@acme.example', 'groups': ['acme-admins', 'system:authenticated']}
    emu.kubectl('patch', 'rgw', 'w1', '--type', 'merge', '-p', '{"spec":{"size":2}}')
    update = stub.reviews[-1]
    assert update['operation'] == 'UPDATE' and update['oldObject']['spec'] == {'size': 1} and update['object']['spec'] == {'size': 2}
    emu.kubectl('apply', '--server-side', '--field-manager=gitops', '-f', '-', input=widget('w1', 'default', 3))
    assert stub.reviews[-1]['operation'] == 'UPDATE' and stub.reviews[-1]['options']['fieldManager'] == 'gitops'
    count = len(stub.reviews)
    emu.kubectl('patch', 'rgw', 'w1', '--subresource', 'status', '--type', 'merge', '-p', '{"status":{"ok":true}}')
    emu.kubectl('create', 'configmap', 'not-ours')
    assert len(stub.reviews) == count  # /status writes and other API groups are not sent
    emu.kubectl('delete', 'rgw', 'w1')
    delete = stub.reviews[-1]
    assert (delete['operation'], delete['name'], delete['object']) == ('DELETE', 'w1', None)
    assert delete['oldObject']['spec'] == {'size': 3} and delete['options']['kind'] == 'DeleteOptions'


@emulator_only
def test_webhook_dry_run_is_passed_through(webhook) -> None:
    stub, emu = webhook
    emu.kubectl('apply', '--dry-run=server', '-f', '-', input=widget('w1', 'default'))
    assert stub.reviews[-1]['dryRun'] is True and stub.reviews[-1]['operation'] == 'CREATE'
    assert emu.kubectl('get', 'rgw', 'w1', '--ignore-not-found', '-o', 'name').stdout == ''


@emulator_only
def test_unreachable_webhook_fails_closed(emulator_factory, tmp_path: pathlib.Path) -> None:
    stub = WebhookStub(tmp_path)
    stub.server.server_close()  # nobody listens on its port any more
    emu = emulator_factory('--webhook-url', stub.url, '--webhook-ca', str(stub.ca), '--webhook-timeout', '2',
                           '--crd', str(REPO / 'tests/e2e/fixtures/widget-crd.yaml'))
    failed = emu.kubectl('create', '-f', '-', input=widget('w1', 'default'), check=False)
    assert failed.returncode == 1
    assert 'Internal error occurred: failed calling webhook "validate.rolegate.dev"' in failed.stderr
    assert emu.kubectl('get', 'rgw', '-o', 'name').stdout == ''
