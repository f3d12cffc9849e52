"""End to end: the decision API of `rolegate run` on the API emulator. The emulator answers the
TokenReviews and SubjectAccessReviews from a table the test sets (POST /_emulator/delegation), as
a real API server answers them from its authenticators and RBAC.

A binding deleted with kubectl is never answered from stale state: the check that carries the
deletion's resourceVersion as `minResourceVersion` says `allowed: false`.
"""

from __future__ import annotations

import json
import pathlib
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from conftest import REAL, Cluster, kubectl, start_emulator
from test_rolegate import (Rolegate, apply, doc, eventually, free_port, install_crds, self_signed, tenant)

pytestmark = pytest.mark.skipif(REAL, reason='the emulator answers TokenReviews from a test table (emulator tier only)')

GATEWAY = 'system:serviceaccount:platform:gateway'
INTRUDER = 'system:serviceaccount:platform:intruder'


class DecisionApi:
    def __init__(self, port: int, crt: pathlib.Path) -> None:
        self.url = f'https://127.0.0.1:{port}'
        self.tls = ssl.create_default_context(cafile=str(crt))

    def post(self, path: str, body: dict, token: str | None = 'gateway-token') -> tuple[int, dict, dict]:
        headers = {'Content-Type': 'application/json'}
        if token:
            headers['Authorization'] = f'Bearer {token}'
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), headers=headers, method='POST')
        try:
            with urllib.request.urlopen(request, context=self.tls, timeout=10) as r:
                return r.status, json.loads(r.read()), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b'null'), dict(e.headers)


def with_api(cluster: Cluster, directory: pathlib.Path, port: int, crt: pathlib.Path, pem: pathlib.Path) -> Rolegate:
    """`rolegate run` with the decision API on `port` and no webhook (the API serves the same
    certificate flags)."""
    return Rolegate(cluster, directory, webhook=None,
                    extra=(*Rolegate.QUICK, '--api-addr', f'127.0.0.1:{port}', '--tls-cert', str(crt), '--tls-key', str(pem)))


@pytest.fixture(scope='module')
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rolegate, DecisionApi]]:
    directory = tmp_path_factory.mktemp('decision')
    cluster = start_emulator(directory / 'emulator')
    install_crds(cluster)
    crt, pem = self_signed(directory)
    port = free_port()
    rolegate = with_api(cluster, directory, port, crt, pem)
    yield rolegate, DecisionApi(port, crt)
    rolegate.stop()
    cluster.stop()


def delegation(cluster: Cluster, ns: str) -> None:
    table = {'tokens': {'gateway-token': {'username': GATEWAY, 'groups': ['system:serviceaccounts']},
                        'intruder-token': {'username': INTRUDER}},
             'grants': [{'user': GATEWAY, 'verb': 'create', 'group': 'rolegate.dev', 'resource': r, 'namespace': ns}
                        for r in ('checks', 'lookups')]}
    request = urllib.request.Request(f'{cluster.url}/_emulator/delegation', data=json.dumps(table).encode(),
                                     headers={'Content-Type': 'application/json'}, method='POST')
    with urllib.request.urlopen(request, timeout=5) as r:
        assert r.status == 200


def test_a_deleted_binding_is_never_answered_from_stale_state(served) -> None:
    rolegate, api = served
    ns = tenant(rolegate)
    delegation(rolegate.cluster, ns)
    apply(rolegate, ns, doc('RoleBinding', 'bob-shop', {'account': 'acme', 'member': 'bob', 'role': 'project-admin',
                                                        'project': 'shop'}))
    question = {'namespace': ns, 'account': 'acme', 'member': 'bob', 'permission': 'project.manage', 'project': 'shop'}

    def allowed():
        code, body, _ = api.post('/v1/check', question)
        return body if code == 200 and body['allowed'] else None

    answer = eventually('bob may manage shop', allowed)
    assert answer['via'] == {'binding': 'bob-shop', 'role': 'project-admin'}, answer
    deleted = json.loads(kubectl('delete', '--raw', f'/apis/rolegate.dev/v1alpha1/namespaces/{ns}/rolebindings/bob-shop',
                                 kubeconfig=rolegate.cluster.kubeconfig).stdout)
    rv = deleted['metadata']['resourceVersion']
    code, body, _ = api.post('/v1/check', {**question, 'minResourceVersion': rv})
    assert code == 200, body
    assert body['allowed'] is False and body['via'] is None, body
    assert int(body['resourceVersion']) >= int(rv), body
    # Batches and lookups say the same.
    code, body, _ = api.post('/v1/check:batch', {'checks': [question], 'minResourceVersion': rv})
    assert code == 200 and body['results'][0]['allowed'] is False, body
    code, body, _ = api.post('/v1/lookup/subjects', {'namespace': ns, 'account': 'acme', 'permission': 'project.manage',
                                                     'project': 'shop', 'minResourceVersion': rv})
    assert code == 200 and body['members'] == [], body


def test_a_caller_without_the_rbac_is_refused(served) -> None:
    rolegate, api = served
    ns = tenant(rolegate)
    delegation(rolegate.cluster, ns)
    question = {'namespace': ns, 'account': 'acme', 'member': 'alice', 'permission': 'account.own'}
    code, body, _ = api.post('/v1/check', question, token='intruder-token')
    assert code == 403 and body['reason'] == 'Forbidden' and 'allowed' not in body, body
    code, body, headers = api.post('/v1/check', question, token=None)
    assert code == 401 and 'allowed' not in body, body
    code, body, headers = api.post('/v1/check', question, token='no-such-token')
    assert code == 401, body
    code, body, _ = api.post('/v1/check', question)
    assert code == 200 and body['allowed'] is True, body
    metrics = rolegate.metrics()
    assert 'rolegate_decision_requests_total{endpoint="check",result="forbidden"}' in metrics
    assert 'rolegate_decision_delegate_cache_total{cache="authentication",result="miss"}' in metrics
