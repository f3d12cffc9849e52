"""End to end: the lifecycle of `rolegate run` on the API emulator — two replicas and their Lease,
kill -9 and SIGTERM of the leader, SIGTERM under webhook load, and servers that cannot start.

The emulator records every accepted write with its User-Agent (GET /emulator/writes); rolegate
names its replica's identity there (`rolegate/<version> (<identity>)`), so a test can tell which
replica wrote each status and each Lease update.
"""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from conftest import REAL, Cluster, kubectl, start_emulator
from test_faults import faults
from test_rolegate import (ACCOUNT, BINARY, CATALOG, VALIDATE, apply, doc, eventually, free_port, has_condition,
                           install_crds, self_signed)

pytestmark = pytest.mark.skipif(REAL, reason='needs the emulator (it records who wrote what)')

FAST_LEASE = ['--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '500ms']
ROLEGATE_KINDS = {'accounts', 'members', 'roles', 'rolebindings'}


class Replica:
    """One `rolegate run` process; no POD_NAME and no --identity unless given, so the default
    identity is what two replicas start with."""

    def __init__(self, cluster: Cluster, directory: pathlib.Path, name: str, *args: str,
                 metrics_port: int | None = None) -> None:
        self.cluster = cluster
        self.metrics_port = metrics_port or free_port()
        self.log = directory / f'{name}.log'
        env = dict(os.environ, KUBECONFIG=cluster.kubeconfig, RUST_LOG='info', NO_COLOR='1')
        env.pop('POD_NAME', None)
        command = [str(BINARY), 'run', '--metrics-addr', f'127.0.0.1:{self.metrics_port}',
                   '--leader-election-namespace', 'default', *args]
        with open(self.log, 'w') as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f'http://127.0.0.1:{self.metrics_port}/readyz', timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f'rolegate exited {self.process.returncode}:\n{self.log.read_text()}')
            if self.ready():
                return
            time.sleep(0.1)
        raise AssertionError(f'rolegate never became ready:\n{self.log.read_text()}')

    @property
    def identity(self) -> str:
        found = eventually('the identity in the log',
                           lambda: re.search(r'starting identity=(\S+)', re.sub(r'\x1b\[[0-9;]*m', '', self.log.read_text())),
                           timeout=10)
        return found.group(1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def cluster(tmp_path: pathlib.Path) -> Iterator[Cluster]:
    c = start_emulator(tmp_path / 'emulator')
    install_crds(c)
    yield c
    c.stop()


@pytest.fixture
def replicas(cluster: Cluster, tmp_path: pathlib.Path) -> Iterator:
    started: list[Replica] = []

    def start(*args: str) -> Replica:
        replica = Replica(cluster, tmp_path, f'replica-{len(started)}', *args)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()


def writes(cluster: Cluster) -> list[dict]:
    with urllib.request.urlopen(f'{cluster.url}/emulator/writes', timeout=5) as r:
        return json.loads(r.read())['writes']


def writer(entry: dict) -> str | None:
    """The replica identity in a rolegate User-Agent."""
    m = re.fullmatch(r'rolegate/\S+ \((.+)\)', entry['userAgent'])
    return m.group(1) if m else None


def status_writes(cluster: Cluster) -> list[dict]:
    return [w for w in writes(cluster) if w['subresource'] == 'status' and w['resource'] in ROLEGATE_KINDS]


def holder_since(cluster: Cluster, identity: str) -> float | None:
    """When (emulator clock) `identity` first wrote itself into the Lease as holder."""
    return next((w['time'] for w in writes(cluster) if w['resource'] == 'leases' and w['holder'] == identity), None)


def holds(cluster: Cluster, identity: str):
    return lambda: holder_since(cluster, identity)


def new_tenant(replica: Replica) -> str:
    ns = f'e2e-{uuid.uuid4().hex[:8]}'
    kubectl('create', 'namespace', ns, kubeconfig=replica.cluster.kubeconfig)
    apply(replica, ns, CATALOG + '\n---\n' + ACCOUNT)
    eventually('the owner binding is accepted',
               has_condition(replica, ns, 'rolebindings.rolegate.dev', 'acme-owner', 'Accepted', 'True'))
    return ns


def accepted_after_change(replica: Replica, ns: str, name: str) -> None:
    apply(replica, ns, doc('RoleBinding', name, {'account': 'acme', 'member': 'bob', 'role': 'support'}))
    eventually(f'{name} is accepted', has_condition(replica, ns, 'rolebindings.rolegate.dev', name, 'Accepted', 'True'))


# Two replicas

def test_two_replicas_with_default_identities_only_the_lease_holder_writes_status(cluster: Cluster, replicas) -> None:
    a, b = replicas('--no-webhook'), replicas('--no-webhook')
    a.wait_ready()
    b.wait_ready()
    assert a.identity != b.identity, 'two replicas without POD_NAME must not share an identity'
    leader = eventually('a leader', lambda: next((r for r in (a, b) if holder_since(cluster, r.identity)), None))
    ns = new_tenant(leader)
    accepted_after_change(leader, ns, 'bob-support')
    wrote = status_writes(cluster)
    assert wrote, 'no status was written'
    assert {writer(w) for w in wrote} == {leader.identity}, wrote
    holders = {w['holder'] for w in writes(cluster) if w['resource'] == 'leases'}
    assert holders == {leader.identity}, holders


def test_kill_9_of_the_leader_hands_over_within_the_lease_duration(cluster: Cluster, replicas) -> None:
    a = replicas('--no-webhook', *FAST_LEASE)
    a.wait_ready()
    eventually('a leads', holds(cluster, a.identity))
    b = replicas('--no-webhook', *FAST_LEASE)
    b.wait_ready()
    ns = new_tenant(a)
    time.sleep(1)  # b has seen a renew
    killed = time.time()
    a.process.kill()
    a.process.wait()
    took_over = eventually('b takes over', holds(cluster, b.identity), timeout=20) - killed
    print(f'kill -9 takeover: {took_over:.2f} s (lease 4 s, retry 0.5 s)')
    # Not before the lease could have expired by b's own clock, and no later than one retry after.
    assert 3.0 <= took_over <= 4 + 0.5 + 1.5, took_over
    accepted_after_change(b, ns, 'bob-support')
    wrote = status_writes(cluster)
    assert {writer(w) for w in wrote if w['time'] < killed} == {a.identity}
    assert {writer(w) for w in wrote if w['time'] >= killed} == {b.identity}
    assert b.process.poll() is None


def test_sigterm_of_the_leader_releases_the_lease_and_hands_over_at_the_next_retry(cluster: Cluster, replicas) -> None:
    # Default timing (15 s lease, 2 s retry): without the release, the takeover would take 15 s.
    a = replicas('--no-webhook')
    a.wait_ready()
    eventually('a leads', holds(cluster, a.identity))
    b = replicas('--no-webhook')
    b.wait_ready()
    ns = new_tenant(a)
    time.sleep(2.5)  # b has read the Lease at least once
    stopped = time.time()
    a.process.send_signal(signal.SIGTERM)
    assert a.process.wait(10) == 0, a.log.read_text()
    took_over = eventually('b takes over', holds(cluster, b.identity), timeout=20) - stopped
    print(f'SIGTERM takeover: {took_over:.2f} s (lease 15 s, retry 2 s)')
    assert took_over <= 2 + 1.5, took_over
    released = [w for w in writes(cluster) if w['resource'] == 'leases' and w['holder'] is None]
    assert released and writer(released[0]) == a.identity
    accepted_after_change(b, ns, 'bob-support')
    wrote = status_writes(cluster)
    assert {writer(w) for w in wrote if w['time'] < stopped} == {a.identity}
    assert {writer(w) for w in wrote if w['time'] > released[0]['time']} == {b.identity}


def test_the_leader_renews_its_lease_while_its_caches_sync(cluster: Cluster, replicas) -> None:
    # The first list of RoleBindings takes 5 s, two and a half lease durations (a large cluster's
    # first list). The Lease is taken before the caches sync; it must be renewed meanwhile, or
    # another replica would take it and this one would exit once it noticed.
    lease, slow = 2.0, 5.0
    faults(cluster, slow_list={'resource': 'rolebindings', 'delay': slow, 'count': 1})
    started = time.time()
    a = replicas('--no-webhook', '--lease-duration', '2s', '--renew-deadline', '1500ms', '--retry-period', '250ms')
    a.wait_ready(timeout=30)
    synced = time.time()
    assert faults(cluster)['injected'].get('list:slow:rolebindings') == 1
    assert synced - started >= slow, 'the slow list must hold the caches back'
    lease_writes = [w for w in writes(cluster) if w['resource'] == 'leases']
    assert {w['holder'] for w in lease_writes} == {a.identity}, 'the holder never changed'
    renewed = [w['time'] for w in lease_writes if w['time'] <= synced]
    assert renewed, 'the lease was not taken before the caches synced'
    gaps = [later - earlier for earlier, later in zip(renewed, renewed[1:])] + [synced - renewed[-1]]
    print(f'{len(renewed)} lease writes while the caches synced ({synced - renewed[0]:.1f} s); '
          f'longest gap {max(gaps):.2f} s (lease {lease:.0f} s)')
    assert len(renewed) >= 3 and max(gaps) < lease, (renewed, synced)
    renew_time = lambda: kubectl('get', 'lease', 'rolegate', '-n', 'default', '-o', 'jsonpath={.spec.renewTime}',
                                 kubeconfig=cluster.kubeconfig).stdout
    before = renew_time()
    eventually('the leader keeps renewing once synced', lambda: renew_time() != before)
    assert a.process.poll() is None, a.log.read_text()


# SIGTERM under webhook load

def review(ns: str, name: str) -> bytes:
    member = {'apiVersion': 'rolegate.dev/v1alpha1', 'kind': 'Member', 'metadata': {'name': name, 'namespace': ns},
              'spec': {'account': 'acme', 'type': 'User'}}
    return json.dumps({'apiVersion': 'admission.k8s.io/v1', 'kind': 'AdmissionReview', 'request': {
        'uid': str(uuid.uuid4()), 'kind': {'group': 'rolegate.dev', 'version': 'v1alpha1', 'kind': 'Member'},
        'resource': {'group': 'rolegate.dev', 'version': 'v1alpha1', 'resource': 'members'},
        'name': name, 'namespace': ns, 'operation': 'CREATE', 'object': member, 'oldObject': None, 'dryRun': False,
        'userInfo': {'username': 'alice', 'groups': ['system:authenticated']}}}).encode()


def test_sigterm_under_webhook_load_answers_every_review(tmp_path: pathlib.Path) -> None:
    crt, pem = self_signed(tmp_path)
    port = free_port()
    cluster = start_emulator(tmp_path / 'emulator', '--webhook-url', f'https://127.0.0.1:{port}/validate',
                             '--webhook-ca', str(crt))
    replica = None
    try:
        install_crds(cluster)
        replica = Replica(cluster, tmp_path, 'webhook', '--webhook-addr', f'127.0.0.1:{port}', '--tls-cert', str(crt),
                          '--tls-key', str(pem), '--shutdown-delay', '2s', '--drain-timeout', '5s')
        replica.wait_ready()
        ns = new_tenant(replica)
        results: list[tuple[float, str]] = []  # (time, outcome): 'ok' or what went wrong
        lock = threading.Lock()
        # The Service: it stops routing to the replica a little after readiness fails (endpoint
        # propagation), as the endpoints controller and kube-proxy do.
        routed = threading.Event()
        routed.set()
        unready_at: list[float] = []

        def service() -> None:
            while routed.is_set():
                if not replica.ready():
                    unready_at.append(time.time())
                    time.sleep(0.5)
                    routed.clear()
                    return
                time.sleep(0.05)

        def api_server(worker: int) -> None:
            context = ssl.create_default_context(cafile=str(crt))
            connection = None
            n = 0
            while routed.is_set():
                n += 1
                try:
                    if connection is None:
                        connection = http.client.HTTPSConnection('127.0.0.1', port, context=context, timeout=10)
                    connection.request('POST', '/validate?timeout=10s', body=review(ns, f'w{worker}-{n}'),
                                       headers={'Content-Type': 'application/json'})
                    response = connection.getresponse()
                    body = json.loads(response.read())
                    outcome = 'ok' if response.status == 200 and body['response']['allowed'] is True \
                        else f'{response.status} {body}'
                    if response.getheader('Connection', '').lower() == 'close':
                        connection.close()
                        connection = None
                except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
                    outcome = f'{type(e).__name__}: {e}'
                    connection = None
                with lock:
                    results.append((time.time(), outcome))

        def kubectl_writer() -> None:  # through the emulator's own webhook call-out
            n = 0
            while routed.is_set():
                n += 1
                out = kubectl('apply', *VALIDATE, '--dry-run=server', '-n', ns, '-f', '-', check=False,
                              input=doc('Member', f'k{n}', {'account': 'acme', 'type': 'User'}),
                              kubeconfig=cluster.kubeconfig)
                with lock:
                    results.append((time.time(), 'ok' if out.returncode == 0 else f'kubectl: {out.stderr.strip()}'))

        threads = [threading.Thread(target=api_server, args=(i,)) for i in range(4)]
        threads += [threading.Thread(target=kubectl_writer), threading.Thread(target=service)]
        for t in threads:
            t.start()
        time.sleep(1)
        signalled = time.time()
        replica.process.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(30)
        code = replica.process.wait(15)
        failures = [r for r in results if r[1] != 'ok']
        after = [r for r in results if r[0] > signalled]
        print(f'{len(results)} reviews, {len(after)} after SIGTERM, readiness failed after '
              f'{unready_at[0] - signalled:.2f} s' if unready_at else 'readiness never failed')
        assert not failures, failures[:5]
        assert unready_at and unready_at[0] - signalled < 1.0, 'readiness must fail at once on SIGTERM'
        assert len(after) >= 4, 'the load must continue into the drain'
        assert code == 0, replica.log.read_text()
    finally:
        if replica is not None:
            replica.stop()
        cluster.stop()


# Servers that cannot start

def test_no_flags_on_a_laptop_says_what_to_do(tmp_path: pathlib.Path) -> None:
    env = dict(os.environ, KUBECONFIG=str(tmp_path / 'none'), NO_COLOR='1')
    out = subprocess.run([str(BINARY), 'run'], capture_output=True, text=True, env=env, timeout=30, cwd=tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert '/etc/rolegate/tls/tls.crt' in text and '--tls-cert and --tls-key' in text and '--no-webhook' in text, text


@pytest.mark.parametrize('taken', ['metrics', 'webhook'])
def test_a_port_that_cannot_be_bound_ends_the_process(cluster: Cluster, tmp_path: pathlib.Path, taken: str) -> None:
    crt, pem = self_signed(tmp_path)
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        address = f'127.0.0.1:{busy.getsockname()[1]}'
        webhook = address if taken == 'webhook' else f'127.0.0.1:{free_port()}'
        replica = Replica(cluster, tmp_path, taken, '--webhook-addr', webhook, '--tls-cert', str(crt), '--tls-key', str(pem),
                          metrics_port=busy.getsockname()[1] if taken == 'metrics' else None)
        try:
            code = replica.process.wait(20)
        finally:
            replica.stop()
    assert code != 0
    assert address in replica.log.read_text(), replica.log.read_text()


def test_a_webhook_that_cannot_serve_ends_the_process(cluster: Cluster, tmp_path: pathlib.Path) -> None:
    crt, pem = tmp_path / 'tls.crt', tmp_path / 'tls.key'
    crt.write_text('not a certificate')
    pem.write_text('not a key')
    replica = Replica(cluster, tmp_path, 'bad-tls', '--webhook-addr', f'127.0.0.1:{free_port()}',
                      '--tls-cert', str(crt), '--tls-key', str(pem))
    try:
        code = replica.process.wait(20)
    finally:
        replica.stop()
    assert code != 0
    assert 'TLS certificate' in replica.log.read_text(), replica.log.read_text()
