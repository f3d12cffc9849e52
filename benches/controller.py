"""The controller's figures (issue 3): load the API emulator with N accounts (default 1,000: 10k
bindings, 5k members, 16,011 objects), start `rolegate run`, and report

- the time until every object carries a Ready condition for its current generation,
- status writes per object (the target is one), and how many reconciles failed and were retried,
- the most files (connections, mostly) the controller held open at once,
- the time from a conflicting `kubectl apply` to `Accepted=False`,
- account evaluations per account touched (the initial sync, then the conflicting change),
- the controller's peak RSS (VmHWM).

Run it with `scripts/bench-controller.sh [N…]` (it builds the release binary and the venv, and runs
once per N accounts); `ROLEGATE_BENCH_ACCOUNTS=100` for a quick run. The emulator is one Python thread on a machine the
controller shares, so the times are upper bounds for the controller, not a real cluster's figures.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[1]
# ROLEGATE_BENCH_BINARY runs another build, to compare builds side by side.
BINARY = pathlib.Path(os.environ.get('ROLEGATE_BENCH_BINARY', REPO / 'target' / 'release' / 'rolegate'))
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


_local = threading.local()


def post(url: str, o: dict) -> None:
    """Create one object, over a keep-alive connection per thread (a new connection per object
    would leave thousands of sockets in TIME_WAIT, taking the ephemeral ports rolegate needs)."""
    path = f"/apis/rolegate.dev/v1alpha1/namespaces/{NS}/{PLURALS[o['kind']]}"
    if getattr(_local, 'url', None) != url:
        _local.url, _local.conn = url, http.client.HTTPConnection(urllib.parse.urlsplit(url).netloc, timeout=60)
    _local.conn.request('POST', path, body=json.dumps(o), headers={'Content-Type': 'application/json'})
    r = _local.conn.getresponse()
    body = r.read()
    if r.status != 201:
        raise RuntimeError(f'POST {path} {o["metadata"]["name"]}: {r.status} {body[:300]!r}')


def list_items(url: str, plural: str) -> list[dict]:
    """All objects of a kind, in pages of 2,000 (as kubectl and client-go list)."""
    items, token = [], ''
    while True:
        query = urllib.parse.urlencode({'limit': 2000, **({'continue': token} if token else {})})
        with urllib.request.urlopen(f'{url}/apis/rolegate.dev/v1alpha1/namespaces/{NS}/{plural}?{query}', timeout=120) as r:
            page = json.load(r)
        items += page['items']
        token = page['metadata'].get('continue')
        if not token:
            return items


def ready(o: dict) -> bool:
    status = o.get('status') or {}
    c = next((c for c in status.get('conditions', []) if c['type'] == 'Ready'), None)
    return bool(c) and status.get('observedGeneration') == o['metadata'].get('generation')


def rss_kib(pid: int, field: str) -> int:
    for line in pathlib.Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def metric_sum(text: str, name: str, labels: str = '') -> float:
    return sum(float(m.group(1)) for m in re.finditer(rf'^{name}{{[^}}]*{labels}[^}}]*}} ([0-9.e+]+)$', text, re.M))


def metric_value(text: str, name: str) -> float:
    """An unlabelled sample."""
    m = re.search(rf'^{name} ([0-9.e+]+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f'/proc/{pid}/fd'))
    except OSError:
        return 0


def open_files_limit(pid: int) -> str:
    for line in pathlib.Path(f'/proc/{pid}/limits').read_text().splitlines():
        if line.startswith('Max open files'):
            return line.split()[3]
    return '?'


def log_tail(path: pathlib.Path, lines: int = 20) -> str:
    return '\n'.join(path.read_text(errors='replace').splitlines()[-lines:])


def main() -> None:
    work = pathlib.Path(tempfile.mkdtemp(prefix='rolegate-bench-controller-'))
    kubeconfig = work / 'kubeconfig.yaml'
    emulator = subprocess.Popen([sys.executable, str(REPO / 'tests/emulator/rolegate_emulator.py'), '--port', '0',
                                 '--kubeconfig', str(kubeconfig), '--crd', str(REPO / 'crds')],
                                stdout=subprocess.PIPE, stderr=open(work / 'emulator.log', 'w'), text=True)
    rolegate = None
    try:
        url = emulator.stdout.readline().strip()
        if not url:
            raise SystemExit(f'the emulator did not start:\n{log_tail(work / "emulator.log")}')
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
        # ROLEGATE_BENCH_WRAP runs the controller under a profiler, e.g. `heaptrack -o /tmp/rg`.
        wrap = os.environ.get('ROLEGATE_BENCH_WRAP', '').split()
        rolegate = subprocess.Popen([*wrap, str(BINARY), 'run', '--no-webhook', '--metrics-addr', f'127.0.0.1:{metrics_port}',
                                     '--leader-election-namespace', 'default', '--identity', 'bench'],
                                    env=env, stdout=open(work / 'rolegate.log', 'w'), stderr=subprocess.STDOUT)

        def alive() -> None:
            if rolegate.poll() is not None:
                raise SystemExit(f'rolegate exited with {rolegate.returncode}:\n{log_tail(work / "rolegate.log")}')

        # Listing 16k objects while the controller writes would slow both (the emulator is one
        # Python thread), so the clock reads rolegate's own metrics: the time of the last status
        # write, once writes have been quiet for 5 s. A list then checks that every object is Ready
        # for its current generation; if some are not yet (a failed write is retried 5 s later),
        # wait for the next quiet period and check again. The figure is the last write before a
        # successful check.
        last_write, last_writes, last_check, failed, peak_files, by_kind = time.monotonic(), -1.0, 0.0, 0.0, 0, {}
        evaluations = 0.0
        while True:
            alive()
            peak_files = max(peak_files, open_files(rolegate.pid))
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{metrics_port}/metrics', timeout=5) as r:
                    text = r.read().decode()
                writes = metric_sum(text, 'rolegate_status_writes_total')
                by_kind = {kind: metric_sum(text, 'rolegate_status_writes_total', f'kind="{kind}"') for kind in PLURALS}
                failed = metric_sum(text, 'rolegate_reconciles_total') - metric_sum(text, 'rolegate_reconciles_total', 'result="ok"')
                evaluations = metric_value(text, 'rolegate_account_evaluations_total')
            except OSError:  # e.g. rolegate out of file descriptors: quiet means 5 s of successful reads
                writes, last_check = last_writes, time.monotonic()
            if writes != last_writes:
                last_write, last_writes = time.monotonic(), writes
            if time.monotonic() - started > 1800:
                raise SystemExit(f'timed out; {last_writes:.0f} status writes so far')
            if time.monotonic() - max(last_write, last_check) >= 5 and last_writes > 0:
                pending = sum(1 for plural in PLURALS.values() for o in list_items(url, plural) if not ready(o))
                if pending == 0:
                    break
                last_check = time.monotonic()
                print(f'  {pending} objects not Ready yet, {last_check - started:.0f} s after start; waiting')
            time.sleep(0.2)
        print(f'every object Ready (current generation): {last_write - started:.1f} s after start (last status write)')
        print(f'status writes: {last_writes:.0f} for {len(objects)} objects = {last_writes / len(objects):.2f} per object'
              f' ({failed:.0f} failed reconciles, retried)')
        counts = {kind: sum(1 for o in objects if o['kind'] == kind) for kind in PLURALS}
        print('  by kind: ' + ', '.join(f'{kind} {by_kind.get(kind, 0):.0f}/{n} = {by_kind.get(kind, 0) / n:.2f}'
                                        for kind, n in counts.items()))
        # The first sync is one change per account: each account should be evaluated once, however
        # many of its objects reconcile.
        print(f'account evaluations: {evaluations:.0f} for {ACCOUNTS} accounts = {evaluations / ACCOUNTS:.2f} per account touched')
        # kube-rs speaks HTTP/1.1 (one request per connection at a time): rolegate's open files
        # show how many connections its reconciles (at most --concurrency per kind) held at once.
        print(f'controller open files: peak {peak_files} (limit {open_files_limit(rolegate.pid)})')

        conflict = obj('RoleBinding', 'acct-7-m2-pv-web', {'account': 'acct-7', 'member': 'acct-7-m2',
                                                           'role': 'project-viewer', 'project': 'web'})
        started = time.monotonic()
        subprocess.run(['kubectl', 'apply', '--validate=false', '-f', '-'], input=json.dumps(conflict), text=True,
                       check=True, capture_output=True, env=dict(os.environ, KUBECONFIG=str(kubeconfig)))
        while True:
            alive()
            with urllib.request.urlopen(f'{url}/apis/rolegate.dev/v1alpha1/namespaces/{NS}/rolebindings/acct-7-m2-pv-web') as r:
                b = json.load(r)
            c = next((c for c in (b.get('status') or {}).get('conditions', []) if c['type'] == 'Accepted'), None)
            if c and c['status'] == 'False':
                break
            if time.monotonic() - started > 120:
                raise SystemExit(f'no Accepted=False after 120 s: {b.get("status")}')
            time.sleep(0.01)
        print(f'conflicting kubectl apply -> Accepted=False ({c["reason"]}): {time.monotonic() - started:.2f} s (kubectl included)')
        # The conflicting binding touches one account: once its statuses settle, count its evaluations.
        time.sleep(3)
        with urllib.request.urlopen(f'http://127.0.0.1:{metrics_port}/metrics', timeout=5) as r:
            after = metric_value(r.read().decode(), 'rolegate_account_evaluations_total')
        print(f'account evaluations for that change (one account touched): {after - evaluations:.0f}')
        print(f'controller RSS: {rss_kib(rolegate.pid, "VmRSS:") / 1024:.0f} MiB now, '
              f'peak (VmHWM) {rss_kib(rolegate.pid, "VmHWM:") / 1024:.0f} MiB'
              + (' (of the wrapper, not the controller: see its own report)' if wrap else ''))
        print('reproduce: scripts/bench-controller.sh')
    finally:
        for process in (rolegate, emulator):
            if process is not None:
                process.terminate()
                process.wait()


if __name__ == '__main__':
    main()
