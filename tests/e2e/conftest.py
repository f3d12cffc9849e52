"""Fixtures for the end-to-end suite: real kubectl against one of three tiers of API server.

- emulator (the default, what CI runs): the rolegate API emulator (tests/emulator/), started on a
  free port in a subprocess per cluster the tests ask for;
- envtest: with KUBEBUILDER_ASSETS naming a directory holding kube-apiserver and etcd (as
  `setup-envtest use -p path` prints), each of those clusters is a real control plane started on
  127.0.0.1 (controlplane.py), as controller-runtime's envtest does;
- kubeconfig: with ROLEGATE_E2E_KUBECONFIG=/path/to/kubeconfig, the cluster it names (kind, say).

In the last two, emulator-only tests (fault injection, the emulator's own flags) skip themselves.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator

import pytest

from controlplane import ControlPlane, assets

REPO = pathlib.Path(__file__).resolve().parents[2]
EMULATOR = REPO / 'tests' / 'emulator' / 'rolegate_emulator.py'
FIXTURES = pathlib.Path(__file__).resolve().parent / 'fixtures'
REAL_KUBECONFIG = os.environ.get('ROLEGATE_E2E_KUBECONFIG')
ASSETS, ENVTEST_OFF = assets()
TIER = 'kubeconfig' if REAL_KUBECONFIG else 'envtest' if ASSETS else 'emulator'
REAL = TIER != 'emulator'  # a real kube-apiserver: CEL, RBAC and schema validation are enforced

# kubectl caches discovery per server under this directory; one per test session keeps runs apart.
_CACHE_DIR = tempfile.mkdtemp(prefix='rolegate-e2e-kubectl-cache-')
_current_kubeconfig: str | None = None


@dataclasses.dataclass
class Cluster:
    kubeconfig: str
    url: str
    real: bool = False  # a real API server (envtest or ROLEGATE_E2E_KUBECONFIG), not the emulator
    process: subprocess.Popen | None = None
    log: pathlib.Path | None = None
    plane: ControlPlane | None = None  # the envtest tier's etcd and kube-apiserver

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return kubectl(*args, input=input, check=check, kubeconfig=self.kubeconfig)

    def stop(self) -> None:
        if self.plane is not None:
            self.plane.stop()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def kubectl_env(kubeconfig: str | None = None) -> dict[str, str]:
    """The environment kubectl runs in (for tests that start it themselves, e.g. `kubectl get -w`)."""
    return dict(os.environ, KUBECONFIG=kubeconfig or _current_kubeconfig or os.environ.get('KUBECONFIG', ''),
                KUBECACHEDIR=_CACHE_DIR)


def kubectl(*args: str, input: str | dict | None = None, check: bool = True, kubeconfig: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """Run real kubectl against the current cluster; a dict `input` is sent as JSON."""
    env = kubectl_env(kubeconfig)
    if isinstance(input, dict):
        input = json.dumps(input)
    proc = subprocess.run(['kubectl', *map(str, args)], input=input, capture_output=True, text=True, env=env,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'kubectl {" ".join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}{proc.stdout}')
    return proc


def start_emulator(directory: pathlib.Path, *args: str) -> Cluster:
    """Start the emulator on a free port and wait until it listens (its first stdout line is the URL)."""
    directory.mkdir(parents=True, exist_ok=True)
    kubeconfig = directory / 'kubeconfig.yaml'
    log = directory / 'emulator.log'
    with open(log, 'w') as stderr:
        process = subprocess.Popen([sys.executable, str(EMULATOR), '--port', '0', '--kubeconfig', str(kubeconfig), *args],
                                   stdout=subprocess.PIPE, stderr=stderr, text=True)
    timer = threading.Timer(30, process.kill)  # never hang the suite on a stuck start
    timer.start()
    try:
        url = process.stdout.readline().strip()
    finally:
        timer.cancel()
    if not url.startswith('http://'):
        process.kill()
        raise RuntimeError(f'the emulator did not start:\n{log.read_text()}')
    return Cluster(str(kubeconfig), url, process=process, log=log)


def _server_of(kubeconfig: str) -> str:
    out = kubectl('config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}', kubeconfig=kubeconfig)
    return out.stdout.strip()


# Seconds from starting etcd to the API server's /readyz, per control plane started (envtest tier).
READY_SECONDS: list[float] = []


def start_cluster(directory: pathlib.Path, *emulator_args: str) -> Cluster:
    """A cluster of the session's tier: a new emulator, a new envtest control plane, or the one
    ROLEGATE_E2E_KUBECONFIG names. `emulator_args` are the emulator's own flags."""
    if TIER == 'kubeconfig':
        return Cluster(REAL_KUBECONFIG, _server_of(REAL_KUBECONFIG), real=True)
    if TIER == 'envtest':
        plane = ControlPlane(ASSETS, directory)
        READY_SECONDS.append(plane.ready_seconds)
        return Cluster(plane.kubeconfig, plane.url, real=True, plane=plane)
    return start_emulator(directory, *emulator_args)


def pytest_report_header(config: pytest.Config) -> str:
    return f'rolegate e2e tier: {TIER}' + (f' ({ENVTEST_OFF})' if TIER == 'emulator' else '')


def pytest_terminal_summary(terminalreporter) -> None:
    if READY_SECONDS:
        terminalreporter.write_line(
            f'envtest: {len(READY_SECONDS)} control planes, start to /readyz {min(READY_SECONDS):.1f}-'
            f'{max(READY_SECONDS):.1f} s (mean {sum(READY_SECONDS) / len(READY_SECONDS):.1f} s)')


@pytest.fixture(scope='session')
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's cluster: an emulator, an envtest control plane, or ROLEGATE_E2E_KUBECONFIG's."""
    global _current_kubeconfig
    cluster = start_cluster(tmp_path_factory.mktemp('cluster'))
    _current_kubeconfig = cluster.kubeconfig
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def emulator_factory(tmp_path: pathlib.Path) -> Iterator:
    """Start extra emulators with extra flags (webhook, bookmarks…); all are stopped afterwards."""
    if REAL:
        pytest.skip('needs the emulator')
    started: list[Cluster] = []

    def start(*args: str) -> Cluster:
        cluster = start_emulator(tmp_path / f'emulator-{len(started)}', *args)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.stop()


@pytest.fixture(scope='session')
def widget_crd(emulator: Cluster) -> str:
    """The small test CRD (rolegate.dev Widget) applied and Established."""
    kubectl('apply', '-f', FIXTURES / 'widget-crd.yaml')
    kubectl('wait', '--for=condition=Established', '--timeout=60s', 'crd/widgets.rolegate.dev')
    return 'widgets.rolegate.dev'


@pytest.fixture
def ns(emulator: Cluster, widget_crd: str) -> Iterator[str]:
    """A fresh namespace per test, so tests never see each other's objects."""
    name = f'e2e-{uuid.uuid4().hex[:8]}'
    kubectl('create', 'namespace', name)
    yield name
    kubectl('delete', 'namespace', name, '--wait=false', '--ignore-not-found', check=False)
