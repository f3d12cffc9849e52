"""End to end: real kubectl applies the shipped CRDs, presets and manifests while `rolegate run` is
running, and the status conditions are read back with `kubectl get -o json`.

Two set-ups, each with its own API server and its own `rolegate run`:
- `controller`: no admission call-out, so conflicting bindings can both get in (as when the webhook
  is down) and the controller has to resolve them;
- `webhook`: the API server calls rolegate's webhook over HTTPS for the rolegate.dev kinds.

In the envtest tier (KUBEBUILDER_ASSETS) each set-up is a real control plane with the Helm chart
installed, and rolegate runs locally as the chart's ServiceAccount (so with the chart's RBAC); the
chart's webhook configuration is pointed at rolegate's local URL, which a local API server reaches.
With ROLEGATE_E2E_KUBECONFIG, rolegate runs with that kubeconfig's credentials; the webhook tests run
when the API server can reach this machine: its address is loopback, or ROLEGATE_E2E_WEBHOOK_HOST
names this machine's address as the API server sees it (kind: the docker network's gateway).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import pathlib
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator

import pytest

import chart_install
from conftest import REAL, REPO, TIER, Cluster, kubectl, start_cluster

BINARY = pathlib.Path(os.environ.get(
    'ROLEGATE_BINARY', pathlib.Path(os.environ.get('CARGO_TARGET_DIR', REPO / 'target')) / 'debug' / 'rolegate'
))
VALIDATE = [] if REAL else ['--validate=false']
# The address the API server reaches this machine's webhook at (ROLEGATE_E2E_KUBECONFIG tier).
WEBHOOK_HOST = os.environ.get('ROLEGATE_E2E_WEBHOOK_HOST', '127.0.0.1')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def self_signed(directory: pathlib.Path, host: str = '127.0.0.1') -> tuple[pathlib.Path, pathlib.Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'rolegate-e2e')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName('localhost'),
                                                        x509.IPAddress(ipaddress.ip_address('127.0.0.1')),
                                                        *([x509.IPAddress(ipaddress.ip_address(host))]
                                                          if host != '127.0.0.1' else [])]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    crt, pem = directory / 'tls.crt', directory / 'tls.key'
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


class Rolegate:
    """A running `rolegate run` and the cluster it watches."""

    # The suite's tests of findings that wait for a missing object need not wait the 30 s a sync
    # is given (test_api_server.py runs with the chart's defaults).
    QUICK = ('--reference-grace', '2s')

    def __init__(self, cluster: Cluster, directory: pathlib.Path, webhook: tuple[int, pathlib.Path, pathlib.Path] | None,
                 chart: chart_install.Installed | None = None, namespace_label: dict[str, str] | None = None,
                 webhook_host: str = '127.0.0.1', extra: tuple[str, ...] = QUICK):
        self.cluster = cluster
        self.chart = chart  # envtest tier: rolegate runs as the chart's ServiceAccount
        self.namespace_label = namespace_label or {}  # namespaces the webhook judges (a shared cluster)
        self.metrics_port = free_port()
        lease = chart.run_args() if chart else ['--leader-election-namespace', 'default']
        args = [str(BINARY), 'run', '--metrics-addr', f'127.0.0.1:{self.metrics_port}',
                *lease, '--identity', f'e2e-{uuid.uuid4().hex[:6]}', *extra]
        if webhook is None:
            args.append('--no-webhook')
        else:
            port, crt, pem = webhook
            args += ['--webhook-addr', f'{webhook_host}:{port}', '--tls-cert', str(crt), '--tls-key', str(pem)]
        self.log = directory / 'rolegate.log'
        env = dict(os.environ, KUBECONFIG=chart.kubeconfig if chart else cluster.kubeconfig,
                   RUST_LOG=os.environ.get('RUST_LOG', 'info'))
        with open(self.log, 'w') as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f'rolegate exited {self.process.returncode}:\n{self.log.read_text()}')
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{self.metrics_port}/readyz', timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f'rolegate never became ready:\n{self.log.read_text()}')

    def metrics(self) -> str:
        with urllib.request.urlopen(f'http://127.0.0.1:{self.metrics_port}/metrics', timeout=5) as r:
            return r.read().decode()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def install_crds(cluster: Cluster) -> None:
    kubectl('apply', *VALIDATE, '-f', REPO / 'crds', kubeconfig=cluster.kubeconfig)
    for crd in ('accounts', 'members', 'teams', 'roles', 'rolebindings'):
        kubectl('wait', '--for=condition=Established', '--timeout=60s', f'crd/{crd}.rolegate.dev',
                kubeconfig=cluster.kubeconfig)


@pytest.fixture(scope='module')
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rolegate]:
    directory = tmp_path_factory.mktemp('controller')
    cluster = start_cluster(directory / 'cluster')
    try:
        install_crds(cluster)
        chart = chart_install.install(cluster, directory, webhook=False) if TIER == 'envtest' else None
        rolegate = Rolegate(cluster, directory, webhook=None, chart=chart)
    except BaseException:
        cluster.stop()
        raise
    yield rolegate
    rolegate.stop()
    cluster.stop()


def reaches_this_machine(server: str) -> bool:
    """Whether an API server at `server` can call a webhook served here: it is on a loopback
    address, or ROLEGATE_E2E_WEBHOOK_HOST says where it reaches us."""
    host = urllib.parse.urlsplit(server).hostname or ''
    if 'ROLEGATE_E2E_WEBHOOK_HOST' in os.environ or host == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope='module')
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rolegate]:
    directory = tmp_path_factory.mktemp('webhook')
    port = free_port()
    host = WEBHOOK_HOST if TIER == 'kubeconfig' else '127.0.0.1'  # an emulator or envtest is local
    url = f'https://{host}:{port}/validate'
    if TIER == 'kubeconfig':
        cluster = start_cluster(directory / 'cluster')
        if not reaches_this_machine(cluster.url):
            pytest.skip(f'the API server at {cluster.url} cannot reach a webhook here: install the Helm chart, or set '
                        'ROLEGATE_E2E_WEBHOOK_HOST to the address it reaches this machine at')
        crt, pem = self_signed(directory, host)
        install_crds(cluster)
        name, label = f'rolegate-e2e-{uuid.uuid4().hex[:6]}', {'rolegate.dev/e2e-webhook': uuid.uuid4().hex[:8]}
        chart_install.register_webhook(cluster, name, url, crt, label)
        try:
            rolegate = Rolegate(cluster, directory, webhook=(port, crt, pem), namespace_label=label,
                                webhook_host=host)
        except BaseException:
            kubectl('delete', 'validatingwebhookconfiguration', name, kubeconfig=cluster.kubeconfig, check=False)
            raise
        yield rolegate
        rolegate.stop()
        kubectl('delete', 'validatingwebhookconfiguration', name, kubeconfig=cluster.kubeconfig, check=False)
        return
    crt, pem = self_signed(directory)
    cluster = start_cluster(directory / 'cluster', '--webhook-url', url, '--webhook-ca', str(crt))
    try:
        install_crds(cluster)
        chart = None
        if TIER == 'envtest':
            chart = chart_install.install(cluster, directory, webhook=True)
            chart_install.point_webhook_at(cluster, chart.fullname, url, crt)
        rolegate = Rolegate(cluster, directory, webhook=(port, crt, pem), chart=chart)
    except BaseException:
        cluster.stop()
        raise
    yield rolegate
    rolegate.stop()
    cluster.stop()


def namespace(rolegate: Rolegate) -> str:
    name = f'e2e-{uuid.uuid4().hex[:8]}'
    kubectl('create', 'namespace', name, kubeconfig=rolegate.cluster.kubeconfig)
    if rolegate.namespace_label:
        kubectl('label', 'namespace', name, *(f'{k}={v}' for k, v in rolegate.namespace_label.items()),
                kubeconfig=rolegate.cluster.kubeconfig)
    return name


def apply(rolegate: Rolegate, ns: str, manifest: str, check: bool = True) -> subprocess.CompletedProcess:
    # A leading document marker makes kubectl read the stream as YAML (JSON documents are YAML).
    return kubectl('apply', *VALIDATE, '-n', ns, '-f', '-', input='---\n' + manifest, check=check,
                   kubeconfig=rolegate.cluster.kubeconfig)


def get(rolegate: Rolegate, ns: str, resource: str, name: str) -> dict:
    out = kubectl('get', '-n', ns, resource, name, '-o', 'json', kubeconfig=rolegate.cluster.kubeconfig)
    return json.loads(out.stdout)


def condition(obj: dict, type_: str) -> dict | None:
    return next((c for c in (obj.get('status') or {}).get('conditions', []) if c['type'] == type_), None)


def eventually(what: str, probe: Callable[[], object], timeout: float = 30) -> object:
    """Polls `probe` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f'timed out waiting for {what}; last: {last!r}')


def has_condition(rolegate: Rolegate, ns: str, resource: str, name: str, type_: str, status: str,
                  reason: str | None = None) -> Callable[[], dict | None]:
    def probe() -> dict | None:
        obj = get(rolegate, ns, resource, name)
        c = condition(obj, type_)
        current = (obj.get('status') or {}).get('observedGeneration') == obj['metadata'].get('generation')
        if c and c['status'] == status and (reason is None or c['reason'] == reason) and current:
            return obj
        return None
    return probe


def doc(kind: str, name: str, spec: dict) -> str:
    return json.dumps({'apiVersion': 'rolegate.dev/v1alpha1', 'kind': kind, 'metadata': {'name': name}, 'spec': spec})


CATALOG = '\n---\n'.join([
    doc('Role', 'owner', {'scope': 'Account', 'owner': True, 'locked': True, 'memberTypes': ['User'],
                          'permissions': ['account.own', 'members.manage']}),
    doc('Role', 'support', {'scope': 'Account', 'permissions': ['tickets.view']}),
    doc('Role', 'project-admin', {'scope': 'Project', 'exclusiveGroups': ['project-access'],
                                  'permissions': ['project.manage', 'project.view']}),
    doc('Role', 'project-viewer', {'scope': 'Project', 'exclusiveGroups': ['project-access'],
                                   'permissions': ['project.view']}),
])

ACCOUNT = '\n---\n'.join([
    doc('Account', 'acme', {'projects': [{'name': 'web'}, {'name': 'shop'}], 'memberAdminPermission': 'members.manage'}),
    doc('Member', 'alice', {'account': 'acme', 'type': 'User'}),
    doc('Member', 'bob', {'account': 'acme', 'type': 'User'}),
    doc('RoleBinding', 'acme-owner', {'account': 'acme', 'member': 'alice', 'role': 'owner'}),
])


def tenant(rolegate: Rolegate) -> str:
    ns = namespace(rolegate)
    apply(rolegate, ns, CATALOG + '\n---\n' + ACCOUNT)
    eventually('the owner binding is accepted',
               has_condition(rolegate, ns, 'rolebindings.rolegate.dev', 'acme-owner', 'Accepted', 'True'))
    return ns


# The controller

def all_ready(rolegate: Rolegate, ns: str, resource: str) -> Callable[[], list | None]:
    """Every object of `resource` in `ns` has a current Ready=True condition."""
    def probe() -> list | None:
        items = json.loads(kubectl('get', '-n', ns, resource, '-o', 'json', kubeconfig=rolegate.cluster.kubeconfig).stdout)['items']
        ready = all((c := condition(o, 'Ready')) and c['status'] == 'True'
                    and o['status'].get('observedGeneration') == o['metadata'].get('generation') for o in items)
        return items if items and ready else None
    return probe


def test_presets_and_examples_become_ready(controller: Rolegate) -> None:
    for preset in [*sorted(p for p in (REPO / 'presets').iterdir() if p.is_dir()), REPO / 'examples' / 'tenant']:
        ns = 'tenant-a' if preset.name == 'tenant' else namespace(controller)
        if preset.name == 'tenant':
            kubectl('create', 'namespace', ns, kubeconfig=controller.cluster.kubeconfig)
        kubectl('apply', *VALIDATE, '-n', ns, '-f', preset, kubeconfig=controller.cluster.kubeconfig)
        for resource in ('rgbinding', 'rgmember', 'rgaccount', 'rgrole'):
            eventually(f'{preset.name}: every {resource} Ready', all_ready(controller, ns, resource))
        teams = json.loads(kubectl('get', '-n', ns, 'rgteam', '-o', 'json',
                                   kubeconfig=controller.cluster.kubeconfig).stdout)['items']
        if teams:
            eventually(f'{preset.name}: every rgteam Ready', all_ready(controller, ns, 'rgteam'))
        for account in json.loads(kubectl('get', '-n', ns, 'rgaccount', '-o', 'json',
                                          kubeconfig=controller.cluster.kubeconfig).stdout)['items']:
            assert condition(account, 'OwnerBound')['status'] == 'True', account['metadata']['name']
            assert account['status']['conflicts'] == 0
    listed = kubectl('get', 'rolegate', '-A', kubeconfig=controller.cluster.kubeconfig).stdout
    assert 'rolebinding.rolegate.dev/' in listed and 'account.rolegate.dev/' in listed


def test_conflicting_bindings_resolve_deterministically(controller: Rolegate) -> None:
    ns = tenant(controller)
    both = '\n---\n'.join([
        doc('RoleBinding', 'bob-pv-web', {'account': 'acme', 'member': 'bob', 'role': 'project-viewer', 'project': 'web'}),
        doc('RoleBinding', 'bob-pa-web', {'account': 'acme', 'member': 'bob', 'role': 'project-admin', 'project': 'web'}),
    ])
    apply(controller, ns, both)
    pv = get(controller, ns, 'rgbinding', 'bob-pv-web')
    pa = get(controller, ns, 'rgbinding', 'bob-pa-web')
    # The older wins: creationTimestamp, then name.
    key = lambda o: (o['metadata']['creationTimestamp'], o['metadata']['name'])
    winner, loser = sorted([pv, pa], key=key)
    eventually('the winner is accepted', has_condition(controller, ns, 'rgbinding', winner['metadata']['name'], 'Accepted', 'True'))
    lost = eventually('the loser is rejected by R5',
                      has_condition(controller, ns, 'rgbinding', loser['metadata']['name'], 'Accepted', 'False',
                                    'ExclusiveRoleConflict'))
    message = condition(lost, 'Accepted')['message']
    assert message.startswith('[R5] bob already holds ') and winner['metadata']['name'] in message
    assert condition(lost, 'Stalled')['status'] == 'True'
    account = eventually('the account counts the conflict',
                         lambda: (a := get(controller, ns, 'rgaccount', 'acme'))['status'].get('conflicts') == 1 and a)
    assert account['status']['conflictsByRule'] == {'R5': 1}


def test_a_dangling_reference_heals_when_the_object_arrives(controller: Rolegate) -> None:
    ns = tenant(controller)
    apply(controller, ns, doc('RoleBinding', 'carol-support', {'account': 'acme', 'member': 'carol', 'role': 'support'}))
    waiting = eventually('MemberNotFound',
                         has_condition(controller, ns, 'rgbinding', 'carol-support', 'Accepted', 'False', 'MemberNotFound'))
    assert condition(waiting, 'Reconciling')['status'] == 'True'
    apply(controller, ns, doc('Member', 'carol', {'account': 'acme', 'type': 'User'}))
    healed = eventually('healed', has_condition(controller, ns, 'rgbinding', 'carol-support', 'Accepted', 'True'))
    assert condition(healed, 'Reconciling') is None and condition(healed, 'Ready')['status'] == 'True'
    carol = eventually('carol has access',
                       lambda: (m := get(controller, ns, 'rgmember', 'carol')).get('status', {}).get('permissions', {}).get('account') and m)
    assert carol['status']['permissions']['account'] == ['tickets.view']


def test_an_ownership_transfer_shows_on_the_account(controller: Rolegate) -> None:
    ns = tenant(controller)
    eventually('alice owns acme', lambda: get(controller, ns, 'rgaccount', 'acme').get('status', {}).get('owner') == 'alice')
    kubectl('patch', '-n', ns, 'rgbinding', 'acme-owner', '--type', 'merge', '-p', '{"spec":{"member":"bob"}}',
            kubeconfig=controller.cluster.kubeconfig)
    account = eventually('bob owns acme',
                         lambda: (a := get(controller, ns, 'rgaccount', 'acme')).get('status', {}).get('owner') == 'bob' and a)
    assert condition(account, 'OwnerBound')['status'] == 'True'
    assert condition(account, 'OwnerBound')['message'] == 'bob owns the account'


def test_permissions_generation_rises_on_a_role_change(controller: Rolegate) -> None:
    ns = tenant(controller)
    apply(controller, ns, doc('RoleBinding', 'bob-support', {'account': 'acme', 'member': 'bob', 'role': 'support'}))
    before = eventually('bob holds support',
                        lambda: (m := get(controller, ns, 'rgmember', 'bob')).get('status', {}).get('permissions', {}).get('account') == ['tickets.view'] and m)
    generation = before['status']['permissionsGeneration']
    kubectl('patch', '-n', ns, 'rgrole', 'support', '--type', 'merge',
            '-p', '{"spec":{"permissions":["tickets.view","tickets.create"]}}', kubeconfig=controller.cluster.kubeconfig)
    after = eventually('permissionsGeneration rose',
                       lambda: (m := get(controller, ns, 'rgmember', 'bob'))['status']['permissionsGeneration'] > generation and m)
    assert after['status']['permissionsGeneration'] == generation + 1
    assert after['status']['permissions']['account'] == ['tickets.create', 'tickets.view']
    role = eventually('the role reports its permissions',
                      lambda: (r := get(controller, ns, 'rgrole', 'support')).get('status', {}).get('effectivePermissions') == ['tickets.create', 'tickets.view'] and r)
    assert role['status']['boundCount'] == 1


def test_status_is_written_once_and_metrics_are_served(controller: Rolegate) -> None:
    ns = tenant(controller)
    binding = get(controller, ns, 'rgbinding', 'acme-owner')
    version = binding['metadata']['resourceVersion']
    time.sleep(2)
    assert get(controller, ns, 'rgbinding', 'acme-owner')['metadata']['resourceVersion'] == version, 'no write storm'
    metrics = controller.metrics()
    assert 'rolegate_reconciles_total{kind="RoleBinding",result="ok"}' in metrics
    assert 'rolegate_status_writes_total{kind="Account"}' in metrics


# The webhook

def test_an_illegal_combination_is_rejected_with_rolegates_message(webhook: Rolegate) -> None:
    ns = tenant(webhook)
    apply(webhook, ns, doc('RoleBinding', 'bob-pv-web', {'account': 'acme', 'member': 'bob', 'role': 'project-viewer', 'project': 'web'}))
    out = apply(webhook, ns, doc('RoleBinding', 'bob-pa-web', {'account': 'acme', 'member': 'bob', 'role': 'project-admin', 'project': 'web'}), check=False)
    assert out.returncode != 0
    assert 'denied the request: [R5] bob already holds project-viewer on project web through binding bob-pv-web' in out.stderr
    assert kubectl('get', '-n', ns, 'rgbinding', 'bob-pa-web', check=False, kubeconfig=webhook.cluster.kubeconfig).returncode != 0


def test_a_redundant_binding_prints_a_warning(webhook: Rolegate) -> None:
    ns = tenant(webhook)
    apply(webhook, ns, doc('RoleBinding', 'bob-pa-web', {'account': 'acme', 'member': 'bob', 'role': 'project-admin', 'project': 'web'}))
    out = apply(webhook, ns, doc('RoleBinding', 'bob-pa-web-2', {'account': 'acme', 'member': 'bob', 'role': 'project-admin', 'project': 'web'}))
    assert 'Warning: [R9] binding bob-pa-web-2 gives bob role project-admin on project web' in out.stderr


def test_deleting_the_owner_binding_is_refused(webhook: Rolegate) -> None:
    ns = tenant(webhook)
    out = kubectl('delete', '-n', ns, 'rgbinding', 'acme-owner', check=False, kubeconfig=webhook.cluster.kubeconfig)
    assert out.returncode != 0
    assert '[R3] RoleBinding acme-owner makes alice the owner of account acme' in out.stderr
    assert get(webhook, ns, 'rgbinding', 'acme-owner')['spec']['member'] == 'alice'


def test_a_legal_change_passes(webhook: Rolegate) -> None:
    ns = tenant(webhook)
    out = apply(webhook, ns, doc('RoleBinding', 'bob-support', {'account': 'acme', 'member': 'bob', 'role': 'support'}))
    assert 'created' in out.stdout and 'Warning' not in out.stderr
    eventually('accepted', has_condition(webhook, ns, 'rgbinding', 'bob-support', 'Accepted', 'True'))


def test_a_server_dry_run_is_judged_like_the_request(webhook: Rolegate) -> None:
    ns = tenant(webhook)
    apply(webhook, ns, doc('RoleBinding', 'bob-pv-web', {'account': 'acme', 'member': 'bob', 'role': 'project-viewer', 'project': 'web'}))
    dry_run = lambda manifest: kubectl('apply', *VALIDATE, '--dry-run=server', '-n', ns, '-f', '-', input='---\n' + manifest,
                                       check=False, kubeconfig=webhook.cluster.kubeconfig)
    out = dry_run(doc('RoleBinding', 'bob-pa-web', {'account': 'acme', 'member': 'bob', 'role': 'project-admin', 'project': 'web'}))
    assert out.returncode != 0
    assert 'denied the request: [R5] bob already holds project-viewer on project web through binding bob-pv-web' in out.stderr
    out = dry_run(doc('RoleBinding', 'bob-support', {'account': 'acme', 'member': 'bob', 'role': 'support'}))
    assert out.returncode == 0 and '(server dry run)' in out.stdout, out.stderr
    assert kubectl('get', '-n', ns, 'rgbinding', 'bob-support', check=False, kubeconfig=webhook.cluster.kubeconfig).returncode != 0
