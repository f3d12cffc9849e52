"""The controller's figures (issue 3): load the API emulator with N accounts (default 1,000: 10k
bindings, 5k members), start `rolegate run`, and report

- the time until every object carries a Ready condition for its current generation,
- status writes per object (the target is one),
- the time from a conflicting `kubectl apply` to `Accepted=False`,
- the controller's peak RSS.

Run it with `scripts/bench-controller.sh` (it builds the release binary and the venv).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]
BINARY = REPO / 'target' / 'release' / 'rolegate'
ACCOUNTS = int(os.environ.get('ROLEGATE_BENCH_ACCOUNTS', '1000'))
NS = 'bench'
PLURALS = {'Account': 'accounts', 'Member': 'members', 'Role': 'roles', 'RoleBinding': 'rolebindings'}


def obj(kind: str, name: str, spec: dict) -> dict:
    return {'apiVersion': 'rolegate.dev/v1alpha1', 'kind': kind, 'metadata': {'name': name, 'namespace': NS}, 'spec': spec}


def catalog() -> list[dict]:
    role = lambda name, **spec: obj('Role', name, spec)
    return [
        role('owner', scope='Account', owner=True, locked=True, memberTypes=['User'], permissions=['account.close'], includes=['admin']),
        role('admin', scope='Account', permissions=['members.manage'], includes=['billing', 'support', 'project-admin']),
        role('billing', scope='Account', permissions=['billing.view', 'billing.manage']),
        role('support', scope='Account', permissions=['tickets.view', 'tickets.create']),
        role('users', scope='Account', permissions=['members.manage']),
        role('viewer', scope='Account', default=True, permissions=['account.view']),
        role('project-admin', scope='Project', exclusiveGroups=['project-access'], permissions=['project.manage'], includes=['project-viewer']),
        role('project-viewer', scope='Project', exclusiveGroups=['project-access'], permissions=['project.view']),
        role('deployer', scope='Project', permissions=['project.deploy']),
        role('notifications', scope='Account', memberTypes=['Subscriber'], permissions=['notifications.billing.receive']),
        role('stats', scope='Project', permissions=['project.stats.view']),
    ]


def account(i: int) -> list[dict]:
    a = f'acct-{i}'
    out = [obj('Account', a, {'projects': [{'name': 'web'}, {'name': 'shop'}], 'memberAdminPermission': 'members.manage'})]
    for m, t in enumerate(['User', 'User', 'User', 'Service', 'Subscriber']):
        out.append(obj('Member', f'{a}-m{m}', {'account': a, 'type': t}))

    def bind(name: str, member: int, role: str, project: str | None = None) -> None:
        spec = {'account': a, 'member': f'{a}-m{member}', 'role': role}
        if project:
            spec['project'] = project
        out.append(obj('RoleBinding', f'{a}-{name}', spec))

    bind('owner', 0, 'owner')
    bind('m1-billing', 1, 'billing')
    bind('m1-support', 1, 'support')
    bind('m1-users', 1, 'users')
    bind('m2-pa-web', 2, 'project-admin', 'web')
    bind('m2-pv-shop', 2, 'project-viewer', 'shop')
    bind('m2-support', 2, 'support')
    bind('m3-deploy-web', 3, 'deployer', 'web')
    bind('m4-notifications', 4, 'notifications')
    bind('m3-stats-shop', 3, 'stats', 'shop')
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def post(url: str, o: dict) -> None:
    path = f"/apis/rolegate.dev/v1alpha1/namespaces/{NS}/{PLURALS[o['kind']]}"
    req = urllib.request.Request(url + path, data=json.dumps(o).encode(), method='POST',
                                 headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()


def list_items(url: str, plural: str) -> list[dict]:
    with urllib.request.urlopen(f'{url}/apis/rolegate.dev/v1alpha1/namespaces/{NS}/{plural}', timeout=120) as r:
        return json.load(r)['items']


def ready(o: dict) -> bool:
    status = o.get('status') or {}
    c = next((c for c in status.get('conditions', []) if c['type'] == 'Ready'), None)
    return bool(c) and status.get('observedGeneration') == o['metadata'].get('generation')


def rss_kib(pid: int, field: str) -> int:
    for line in pathlib.Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def metric_sum(text: str, name: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(rf'^{name}{{[^}}]*}} ([0-9.e+]+)$', text, re.M))


def main() -> None:
    work = pathlib.Path(tempfile.mkdtemp(prefix='rolegate-bench-controller-'))
    kubeconfig = work / 'kubeconfig.yaml'
    emulator = subprocess.Popen([sys.executable, str(REPO / 'tests/emulator/rolegate_emulator.py'), '--port', '0',
                                 '--kubeconfig', str(kubeconfig), '--crd', str(REPO / 'crds')],
                                stdout=subprocess.PIPE, stderr=open(work / 'emulator.log', 'w'), text=True)
    url = emulator.stdout.readline().strip()
    objects = catalog() + [o for i in range(ACCOUNTS) for o in account(i)]
    started = time.monotonic()
    for o in objects[:len(catalog())]:
        post(url, o)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda o: post(url, o), objects[len(catalog()):]))
    print(f'loaded {len(objects)} objects ({ACCOUNTS} accounts) into the emulator in {time.monotonic() - started:.1f} s')

    metrics_port = free_port()
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), RUST_LOG='warn')
    started = time.monotonic()
    rolegate = subprocess.Popen([str(BINARY), 'run', '--no-webhook', '--metrics-addr', f'127.0.0.1:{metrics_port}',
                                 '--leader-election-namespace', 'default', '--identity', 'bench'],
                                env=env, stdout=open(work / 'rolegate.log', 'w'), stderr=subprocess.STDOUT)
    try:
        # The emulator is Python and slow to list 10k objects, so the clock reads rolegate's own
        # metrics: the time of the last status write, once writes have been quiet for 5 s; then one
        # list proves every object Ready.
        last_change, last_writes = time.monotonic(), -1.0
        while time.monotonic() - last_change < 5 or last_writes <= 0:
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{metrics_port}/metrics', timeout=5) as r:
                    writes = metric_sum(r.read().decode(), 'rolegate_status_writes_total')
            except OSError:
                writes = -1.0
            if writes != last_writes:
                last_change, last_writes = time.monotonic(), writes
            if time.monotonic() - started > 1800:
                raise SystemExit('timed out')
            time.sleep(0.2)
        to_ready = last_change - started
        pending = sum(1 for plural in PLURALS.values() for o in list_items(url, plural) if not ready(o))
        assert pending == 0, f'{pending} objects not Ready'
        writes = last_writes
        print(f'every object Ready (current generation): {to_ready:.1f} s after start (last status write)')
        print(f'status writes: {writes:.0f} for {len(objects)} objects = {writes / len(objects):.2f} per object')

        conflict = obj('RoleBinding', 'acct-7-m2-pv-web', {'account': 'acct-7', 'member': 'acct-7-m2',
                                                           'role': 'project-viewer', 'project': 'web'})
        started = time.monotonic()
        subprocess.run(['kubectl', 'apply', '--validate=false', '-f', '-'], input=json.dumps(conflict), text=True,
                       check=True, capture_output=True, env=dict(os.environ, KUBECONFIG=str(kubeconfig)))
        while True:
            with urllib.request.urlopen(f'{url}/apis/rolegate.dev/v1alpha1/namespaces/{NS}/rolebindings/acct-7-m2-pv-web') as r:
                b = json.load(r)
            c = next((c for c in (b.get('status') or {}).get('conditions', []) if c['type'] == 'Accepted'), None)
            if c and c['status'] == 'False':
                break
            time.sleep(0.01)
        print(f'conflicting kubectl apply -> Accepted=False ({c["reason"]}): {time.monotonic() - started:.2f} s (kubectl included)')
        print(f'controller RSS: {rss_kib(rolegate.pid, "VmRSS:") / 1024:.0f} MiB now, peak {rss_kib(rolegate.pid, "VmHWM:") / 1024:.0f} MiB')
        print('reproduce: scripts/bench-controller.sh')
    finally:
        rolegate.terminate()
        emulator.terminate()


if __name__ == '__main__':
    main()
