"""Benchmark (not collected by pytest): the lag between a window boundary (R18) and the status
change, over N bindings (default 100) of N members that all expire at the same second.

Starts the emulator and `rolegate run` (target/debug/rolegate unless ROLEGATE_BINARY is set),
applies the bindings with real kubectl, waits until every one is Active=True, then watches
RoleBindings and Members over the API and records, for each binding, when its Active=False
(Expired) arrives, and for each member when its permissionsGeneration rises. Prints p50, p90 and
max of both lags. The watch sees events as the API server sends them, so the lag includes the
status write and the watch delivery, not a poll interval.

    .venv/bin/python tests/e2e/bench_windows.py [N]
"""

from __future__ import annotations

import json
import pathlib
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from conftest import kubectl, start_emulator  # noqa: E402
from test_rolegate import ACCOUNT, CATALOG, Rolegate, doc, install_crds  # noqa: E402
from test_windows import rfc3339  # noqa: E402

SETUP = 40.0  # seconds ahead of now the boundary is set: enough to create and reconcile N bindings


def watch(url: str, path: str, on_event, stop: threading.Event) -> None:
    with urllib.request.urlopen(f'{url}{path}?watch=true', timeout=120) as stream:
        for line in stream:
            if stop.is_set():
                return
            if line.strip():
                on_event(json.loads(line), time.time())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    directory = pathlib.Path(tempfile.mkdtemp(prefix='rolegate-bench-windows-'))
    cluster = start_emulator(directory / 'emulator')
    rolegate = None
    try:
        install_crds(cluster)
        rolegate = Rolegate(cluster, directory, webhook=None)
        ns = 'bench-windows'
        kubectl('create', 'namespace', ns, kubeconfig=cluster.kubeconfig)
        boundary = float(int(time.time() + SETUP))
        objects = [CATALOG, ACCOUNT]
        for i in range(n):
            objects.append(doc('Member', f'm{i}', {'account': 'acme', 'type': 'User'}))
            objects.append(doc('RoleBinding', f'm{i}-shop', {'account': 'acme', 'member': f'm{i}', 'role': 'project-admin',
                                                            'project': 'shop', 'validUntil': rfc3339(boundary)}))
        kubectl('apply', '-n', ns, '-f', '-', input='---\n' + '\n---\n'.join(objects), kubeconfig=cluster.kubeconfig)

        def active(binding: dict) -> str | None:
            return next((c['status'] for c in (binding.get('status') or {}).get('conditions', [])
                         if c['type'] == 'Active'), None)

        deadline = time.time() + SETUP
        while time.time() < deadline:
            items = json.loads(kubectl('get', '-n', ns, 'rgbinding', '-o', 'json', kubeconfig=cluster.kubeconfig).stdout)['items']
            if sum(active(b) == 'True' for b in items if b['metadata']['name'] != 'acme-owner') == n:
                break
            time.sleep(0.5)
        members = json.loads(kubectl('get', '-n', ns, 'rgmember', '-o', 'json', kubeconfig=cluster.kubeconfig).stdout)['items']
        generation = {m['metadata']['name']: (m.get('status') or {}).get('permissionsGeneration', 0) for m in members}
        ready_at = time.time()
        if ready_at >= boundary:
            raise SystemExit(f'setup took {ready_at - boundary + SETUP:.1f}s, longer than SETUP: raise it')

        expired: dict[str, float] = {}
        dropped: dict[str, float] = {}

        def on_binding(event: dict, at: float) -> None:
            obj = event['object']
            name = obj['metadata']['name']
            if name.endswith('-shop') and active(obj) == 'False' and name not in expired:
                expired[name] = at

        def on_member(event: dict, at: float) -> None:
            obj = event['object']
            name = obj['metadata']['name']
            g = (obj.get('status') or {}).get('permissionsGeneration', 0)
            if name in generation and name.startswith('m') and g > generation[name] and name not in dropped:
                dropped[name] = at

        stop = threading.Event()
        base = f'/apis/rolegate.dev/v1alpha1/namespaces/{ns}'
        for path, handler in ((f'{base}/rolebindings', on_binding), (f'{base}/members', on_member)):
            threading.Thread(target=watch, args=(cluster.url, path, handler, stop), daemon=True).start()
        while time.time() < boundary + 30 and (len(expired) < n or len(dropped) < n):
            time.sleep(0.1)
        stop.set()
        for what, seen in (('Active=False (Expired) on the binding', expired),
                           ('permissionsGeneration rise on the member', dropped)):
            lags = [t - boundary for t in seen.values()]
            if len(lags) < n:
                print(f'{what}: only {len(lags)} of {n} within 30 s')
            if lags:
                print(f'{what}: {len(lags)} of {n}, lag p50 {statistics.median(lags):.3f} s, '
                      f'p90 {percentile(lags, 0.9):.3f} s, max {max(lags):.3f} s')
        print(f'(setup finished {boundary - ready_at:.1f} s before the boundary; resync is 600 s)')
    finally:
        if rolegate is not None:
            rolegate.stop()
        cluster.stop()


if __name__ == '__main__':
    main()
