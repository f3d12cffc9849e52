"""The chart's configuration during a GitOps sync (issue 23): `rolegate run` with the webhook and the
controller in one process, started on an empty cluster (the API emulator, calling the webhook on
every write); then the generated tree of N accounts (default 1,000) is created object by object by
8 concurrent writers in GitOps order: the accounts' files first (Account, Members, RoleBindings),
the role catalog last (`roles.yaml` sorts after `accounts-*.yaml`), so every binding arrives before
its role. One more account, the "big account", has 5,000 projects and an owner (whose role
includes admin, billing, support and project-admin). Prints:

- seconds from the last create until every object is Ready for its generation,
- status writes per object (by kind) and Events per object (by type and reason), as the API
  server saw them (the emulator's counters),
- account evaluations per account, peak RSS (VmHWM) of the one process,
- the largest status of each kind, in bytes of compact JSON,
- after the sync: the time from a change (a binding created with kubectl's API, one account at a
  time) to the member's status showing it, p50 / p99 over 40 changes.

Run it with `scripts/bench-controller.sh --sync [N…]`; `ROLEGATE_BENCH_BINARIES=old,new` runs
builds side by side (A, B, A, B). The emulator is one Python thread on the same 2 cores, so times are
upper bounds; counts (writes, Events, evaluations) do not depend on speed.
"""

from __future__ import annotations

import concurrent.futures
import gc
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / 'tests' / 'e2e'))

from controller import (NS, PLURALS, REPO, account, catalog, free_port, list_items, log_tail, metric_value, obj,
                        post, ready, rss_kib)  # noqa: E402

ACCOUNTS = int(os.environ.get('ROLEGATE_BENCH_ACCOUNTS', '1000'))
BINARIES = [pathlib.Path(b) for b in os.environ.get('ROLEGATE_BENCH_BINARIES', str(REPO / 'target' / 'release' / 'rolegate')).split(',')]
ROUNDS = int(os.environ.get('ROLEGATE_BENCH_ROUNDS', '1'))
WRITERS = 8
PLURALS = {**PLURALS, 'Team': 'teams'}


def big_account() -> list[dict]:
    """An account of 5,000 projects and its owner (the owner role includes admin and through it the rest)."""
    a = 'big-account'
    return [obj('Account', a, {'projects': [{'name': f'hosting-{i:04}'} for i in range(5000)]}),
            obj('Member', f'{a}-owner-m', {'account': a, 'type': 'User'}),
            obj('RoleBinding', f'{a}-owner', {'account': a, 'member': f'{a}-owner-m', 'role': 'owner'})]


def self_signed(directory: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    from test_rolegate import self_signed as make
    return make(directory)


def stats(url: str) -> dict:
    with urllib.request.urlopen(f'{url}/_emulator/stats', timeout=30) as r:
        return json.load(r)


def get(url: str, plural: str, name: str) -> dict:
    with urllib.request.urlopen(f'{url}/apis/rolegate.dev/v1alpha1/namespaces/{NS}/{plural}/{name}', timeout=30) as r:
        return json.load(r)


def run(binary: pathlib.Path) -> dict:
    work = pathlib.Path(tempfile.mkdtemp(prefix='rolegate-bench-sync-'))
    crt, pem = self_signed(work)
    port, metrics_port = free_port(), free_port()
    emulator = subprocess.Popen([sys.executable, str(REPO / 'tests/emulator/rolegate_emulator.py'), '--port', '0',
                                 '--kubeconfig', str(work / 'kubeconfig.yaml'), '--crd', str(REPO / 'crds'),
                                 '--webhook-url', f'https://127.0.0.1:{port}/validate', '--webhook-ca', str(crt)],
                                stdout=subprocess.PIPE, stderr=open(work / 'emulator.log', 'w'), text=True)
    rolegate = None
    try:
        url = emulator.stdout.readline().strip()
        if not url:
            raise SystemExit(f'the emulator did not start:\n{log_tail(work / "emulator.log")}')
        env = dict(os.environ, KUBECONFIG=str(work / 'kubeconfig.yaml'), RUST_LOG='warn')
        # ROLEGATE_BENCH_WRAP runs rolegate under a profiler, e.g. `heaptrack -o /tmp/rg`.
        wrap = os.environ.get('ROLEGATE_BENCH_WRAP', '').split()
        rolegate = subprocess.Popen([*wrap, str(binary), 'run', '--metrics-addr', f'127.0.0.1:{metrics_port}',
                                     '--webhook-addr', f'127.0.0.1:{port}', '--tls-cert', str(crt), '--tls-key', str(pem),
                                     '--leader-election-namespace', 'default', '--identity', 'bench'],
                                    env=env, stdout=open(work / 'rolegate.log', 'w'), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{metrics_port}/readyz', timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or rolegate.poll() is not None:
                    raise SystemExit(f'rolegate never became ready:\n{log_tail(work / "rolegate.log")}')
                time.sleep(0.2)
        accounts = [account(i) for i in range(ACCOUNTS)] + [big_account()]
        files = [[o for a in accounts[i:i + 100] for o in a] for i in range(0, len(accounts), 100)]
        roles = catalog()
        objects = sum(map(len, files)) + len(roles)
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
            for f in files:  # a file at a time, its objects by 8 writers (kubectl's order within a file is kept loosely)
                list(pool.map(lambda o: post(url, o), f))
            list(pool.map(lambda o: post(url, o), roles))
        applied = time.monotonic()

        def alive() -> None:
            if rolegate.poll() is not None:
                raise SystemExit(f'rolegate exited with {rolegate.returncode}:\n{log_tail(work / "rolegate.log")}')

        # Ready: poll the metrics until status writes are quiet for 3 s, then list to check.
        last, last_change = -1.0, time.monotonic()
        while True:
            alive()
            with urllib.request.urlopen(f'http://127.0.0.1:{metrics_port}/metrics', timeout=10) as r:
                text = r.read().decode()
            writes = sum(float(line.rsplit(' ', 1)[1]) for line in text.splitlines()
                         if line.startswith('rolegate_status_writes_total{'))
            if writes != last:
                last, last_change = writes, time.monotonic()
            if time.monotonic() - last_change >= 3:
                items = [o for plural in PLURALS.values() for o in list_items(url, plural)]
                if all(ready(o) for o in items):
                    break
                last_change = time.monotonic()
            if time.monotonic() - applied > 1800:
                raise SystemExit('timed out waiting for every object to be Ready')
            time.sleep(0.2)
        ready_after = last_change - applied if last_change > applied else 0.0
        s = stats(url)
        evaluations = metric_value(text, 'rolegate_account_evaluations_total')
        largest: dict[str, int] = {}
        for o in items:
            size = len(json.dumps(o.get('status') or {}, separators=(',', ':')))
            largest[o['kind']] = max(largest.get(o['kind'], 0), size)
        # The 160,000 listed objects would make this process's own garbage collection pause the
        # timing below for seconds: drop them first.
        del items
        gc.collect()
        # A change after the sync: one binding per account, each waited for before the next.
        lags = []
        for i in range(40):
            a = f'acct-{i * max(1, ACCOUNTS // 40)}'
            member = f'{a}-m3'
            binding = obj('RoleBinding', f'{member}-billing', {'account': a, 'member': member, 'role': 'billing'})
            t0 = time.monotonic()
            post(url, binding)
            while True:
                m = get(url, 'members', member)
                if 'billing.view' in ((m.get('status') or {}).get('permissions') or {}).get('account', []):
                    break
                if time.monotonic() - t0 > 30:
                    raise SystemExit(f'{member}: no change in status after 30 s')
                time.sleep(0.005)
            lags.append(time.monotonic() - t0)
        slow = [f'#{i}: {lag:.2f} s' for i, lag in enumerate(lags) if lag > 1]
        lags.sort()
        return {
            'binary': str(binary), 'objects': objects, 'apply_s': applied - started, 'ready_s': ready_after,
            'writes': sum(s['statusWrites'].values()), 'writes_by_kind': s['statusWrites'],
            'events': s['events'], 'event_updates': s['eventUpdates'], 'evaluations': evaluations,
            'rss_mib': rss_kib(rolegate.pid, 'VmHWM:') / 1024, 'largest': largest, 'slow': slow,
            'anon_mib': rss_kib(rolegate.pid, 'RssAnon:') / 1024, 'file_mib': rss_kib(rolegate.pid, 'RssFile:') / 1024,
            'lag_p50': statistics.median(lags), 'lag_p99': lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        }
    finally:
        for process in (rolegate, emulator):
            if process is not None:
                process.terminate()
                process.wait()


def show(r: dict) -> None:
    n = r['objects']
    events = sum(r['events'].values())
    warnings = sum(v for k, v in r['events'].items() if k.startswith('Warning/'))
    print(f"  {r['binary']}")
    print(f"    created {n} objects in {r['apply_s']:.1f} s (8 writers, webhook on); every object Ready "
          f"{r['ready_s']:.1f} s after the last create")
    print(f"    status writes: {r['writes']} = {r['writes'] / n:.2f} per object; by kind: {r['writes_by_kind']}")
    print(f"    Events: {events} = {events / n:.3f} per object ({warnings} Warnings; series updates {r['event_updates']}): "
          f"{r['events']}")
    print(f"    account evaluations: {r['evaluations']:.0f} = {r['evaluations'] / (ACCOUNTS + 1):.2f} per account")
    print(f"    peak RSS (VmHWM, webhook + controller): {r['rss_mib']:.0f} MiB (at the end: {r['anon_mib']:.0f} MiB "
          f"anonymous, {r['file_mib']:.0f} MiB of mapped files, the binary's code)")
    print(f"    largest status by kind (bytes): {r['largest']}")
    print(f"    a change after the sync visible in status: p50 {r['lag_p50'] * 1000:.0f} ms, p99 {r['lag_p99'] * 1000:.0f} ms"
          + (f" (over 1 s: {', '.join(r['slow'])})" if r['slow'] else ''))


def main() -> None:
    print(f'== sync in GitOps order, {ACCOUNTS} accounts + the big account (5,000 projects)')
    results: dict[str, list[dict]] = {}
    for _ in range(ROUNDS):
        for binary in BINARIES:
            r = run(binary)
            results.setdefault(str(binary), []).append(r)
            show(r)
    if len(BINARIES) == 2 and ROUNDS > 0:
        a, b = (results[str(x)] for x in BINARIES)
        med = lambda rs, k: statistics.median(x[k] for x in rs)  # noqa: E731
        print(f"  B/A (medians): writes {med(b, 'writes') / max(1, med(a, 'writes')):.2f}, "
              f"RSS {med(b, 'rss_mib') / med(a, 'rss_mib'):.2f}, Ready {med(b, 'ready_s') / max(0.01, med(a, 'ready_s')):.2f}")
    print('reproduce: scripts/bench-controller.sh --sync ' + str(ACCOUNTS))


if __name__ == '__main__':
    main()
