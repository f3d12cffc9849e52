"""The envtest tier's own parts, without kube-apiserver or etcd: the skip line, the PKI the openssl
CLI makes (verified with openssl and by a TLS handshake), the flags, and the start / readyz / stop
cycle against stand-ins that serve /readyz over mutual TLS exactly where the flags say."""

from __future__ import annotations

import json
import os
import pathlib
import ssl
import subprocess
import sys
import textwrap
import urllib.request

import pytest

import controlplane
from controlplane import ControlPlane, apiserver_args, assets, etcd_args, make_pki


def openssl(*args: str | pathlib.Path) -> str:
    out = subprocess.run(['openssl', *map(str, args)], capture_output=True, text=True, check=True)
    return out.stdout


@pytest.fixture(scope='module')
def pki(tmp_path_factory: pytest.TempPathFactory) -> controlplane.Pki:
    return make_pki(tmp_path_factory.mktemp('pki'))


def test_without_the_variable_the_tier_is_off_with_one_line_saying_how_to_enable_it() -> None:
    directory, why = assets({})
    assert directory is None
    assert '\n' not in why and 'KUBEBUILDER_ASSETS' in why and 'setup-envtest use -p path' in why


def test_a_directory_without_the_binaries_says_which_are_missing(tmp_path: pathlib.Path) -> None:
    (tmp_path / 'etcd').write_text('#!/bin/sh\n')
    (tmp_path / 'etcd').chmod(0o755)
    directory, why = assets({'KUBEBUILDER_ASSETS': str(tmp_path)})
    assert directory is None and '\n' not in why
    assert why.endswith(f'(KUBEBUILDER_ASSETS={tmp_path} has no executable kube-apiserver)')
    (tmp_path / 'kube-apiserver').write_text('#!/bin/sh\n')
    (tmp_path / 'kube-apiserver').chmod(0o755)
    assert assets({'KUBEBUILDER_ASSETS': str(tmp_path)}) == (tmp_path, '')


def test_the_serving_certificate_verifies_for_loopback(pki: controlplane.Pki) -> None:
    assert openssl('verify', '-CAfile', pki.ca_crt, '-purpose', 'sslserver', pki.serving_crt).strip().endswith('OK')
    text = openssl('x509', '-in', pki.serving_crt, '-noout', '-text')
    assert 'IP Address:127.0.0.1' in text and 'DNS:localhost' in text and 'CA:FALSE' in text
    assert 'CA:TRUE' in openssl('x509', '-in', pki.ca_crt, '-noout', '-text')


def test_the_admin_is_in_system_masters_under_the_client_ca(pki: controlplane.Pki) -> None:
    assert openssl('verify', '-CAfile', pki.client_ca_crt, '-purpose', 'sslclient', pki.admin_crt).strip().endswith('OK')
    subject = openssl('x509', '-in', pki.admin_crt, '-noout', '-subject', '-nameopt', 'RFC2253')
    assert subject.strip() == 'subject=CN=admin,O=system:masters'
    # Signed by the client CA only: the serving CA does not vouch for clients.
    refused = subprocess.run(['openssl', 'verify', '-CAfile', str(pki.ca_crt), str(pki.admin_crt)], capture_output=True)
    assert refused.returncode != 0


def test_the_service_account_keys_are_a_pair_and_private_keys_are_private(pki: controlplane.Pki) -> None:
    assert openssl('pkey', '-in', pki.sa_key, '-pubout') == pki.sa_pub.read_text()
    assert 'Private-Key: (2048 bit' in openssl('pkey', '-in', pki.sa_key, '-noout', '-text')
    for key in (pki.sa_key, pki.admin_key, pki.serving_key):
        assert key.stat().st_mode & 0o077 == 0, key


def test_the_flags_are_envtests_defaults(pki: controlplane.Pki, tmp_path: pathlib.Path) -> None:
    args = apiserver_args(pki, tmp_path / 'certs', 2379, 6443)
    flags = dict(a.removeprefix('--').split('=', 1) for a in args)
    assert len(flags) == len(args), 'no flag twice'
    assert flags['authorization-mode'] == 'RBAC'
    assert flags['disable-admission-plugins'] == 'ServiceAccount'
    assert flags['service-cluster-ip-range'] == '10.0.0.0/24' and flags['allow-privileged'] == 'true'
    assert flags['etcd-servers'] == 'http://127.0.0.1:2379'
    assert (flags['secure-port'], flags['bind-address'], flags['advertise-address']) == ('6443', '127.0.0.1', '127.0.0.1')
    assert flags['service-account-issuer'] == 'https://127.0.0.1:6443/'
    assert flags['client-ca-file'] == str(pki.client_ca_crt)
    assert flags['service-account-key-file'] == str(pki.sa_pub)
    assert flags['service-account-signing-key-file'] == str(pki.sa_key)
    for name in ('tls-cert-file', 'tls-private-key-file', 'client-ca-file', 'service-account-key-file',
                 'service-account-signing-key-file'):
        assert pathlib.Path(flags[name]).is_file(), name
    assert etcd_args(tmp_path, 1, 2, no_fsync=True) == [
        f'--data-dir={tmp_path}', '--listen-client-urls=http://127.0.0.1:1', '--advertise-client-urls=http://127.0.0.1:1',
        '--listen-peer-urls=http://127.0.0.1:2', '--unsafe-no-fsync=true']
    assert '--unsafe-no-fsync=true' not in etcd_args(tmp_path, 1, 2, no_fsync=False)


# Stand-ins: etcd records its arguments and waits; kube-apiserver serves /readyz over TLS with the
# certificate its flags name, requires a client certificate from --client-ca-file, and answers 500
# for its first few probes, as the real one does until its post-start hooks finish.
FAKE_ETCD = '''\
import json, os, signal, sys, time
if sys.argv[1:] == ['--help']:
    print('  --unsafe-no-fsync  Disables fsync, unsafe, will cause data loss.')
    sys.exit(0)
json.dump(sys.argv[1:], open(sys.argv[0] + '.args', 'w'))
open(sys.argv[0] + '.pid', 'w').write(str(os.getpid()))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    time.sleep(1)
'''
FAKE_APISERVER = '''\
import http.server, json, ssl, sys
json.dump(sys.argv[1:], open(sys.argv[0] + '.args', 'w'))
flags = dict(a[2:].split('=', 1) for a in sys.argv[1:])
probes = []
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        probes.append(self.path)
        user = dict(x[0] for x in self.connection.getpeercert()['subject'])
        ok = self.path == '/readyz' and len(probes) > 2 and user == {'commonName': 'admin', 'organizationName': 'system:masters'}
        self.send_response(200 if ok else 500)
        self.end_headers()
        self.wfile.write(b'ok' if ok else b'[-]poststarthook/rbac/bootstrap-roles failed')
    def log_message(self, *args):
        pass
server = http.server.HTTPServer((flags['bind-address'], int(flags['secure-port'])), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(flags['tls-cert-file'], flags['tls-private-key-file'])
context.verify_mode = ssl.CERT_REQUIRED
context.load_verify_locations(flags['client-ca-file'])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
'''


def test_start_waits_for_readyz_and_stop_ends_both_by_pid(tmp_path: pathlib.Path) -> None:
    bin_dir = tmp_path / 'assets'
    bin_dir.mkdir()
    for name, source in (('etcd', FAKE_ETCD), ('kube-apiserver', FAKE_APISERVER)):
        (bin_dir / name).write_text(f'#!{sys.executable}\n' + source)
        (bin_dir / name).chmod(0o755)
    plane = ControlPlane(bin_dir, tmp_path / 'plane', start_timeout=30)
    try:
        assert len(plane.processes) == 2 and all(p.poll() is None for p in plane.processes)
        assert 0 < plane.ready_seconds < 30
        etcd = json.loads((bin_dir / 'etcd.args').read_text())
        apiserver = json.loads((bin_dir / 'kube-apiserver.args').read_text())
        assert '--unsafe-no-fsync=true' in etcd
        client_url = next(a for a in etcd if a.startswith('--listen-client-urls=')).split('=', 1)[1]
        assert f'--etcd-servers={client_url}' in apiserver and f'--secure-port={plane.port}' in apiserver
        # The admin kubeconfig names the server, the CA and the client certificate the stand-in accepted.
        config = json.loads(pathlib.Path(plane.kubeconfig).read_text())
        assert config['clusters'][0]['cluster']['server'] == plane.url
        user = config['users'][0]['user']
        context = ssl.create_default_context(cafile=config['clusters'][0]['cluster']['certificate-authority'])
        context.load_cert_chain(user['client-certificate'], user['client-key'])
        with urllib.request.urlopen(f'{plane.url}/readyz', context=context, timeout=5) as r:
            assert r.status == 200
        processes = list(plane.processes)
    finally:
        plane.stop()
    assert all(p.returncode is not None for p in processes)
    assert plane.processes == []


def test_a_binary_that_exits_fails_the_start_with_its_log(tmp_path: pathlib.Path) -> None:
    bin_dir = tmp_path / 'assets'
    bin_dir.mkdir()
    (bin_dir / 'etcd').write_text(f'#!{sys.executable}\n' + FAKE_ETCD)
    (bin_dir / 'kube-apiserver').write_text(textwrap.dedent(f'''\
        #!{sys.executable}
        import sys, time
        time.sleep(0.5)  # etcd, started first, is running by now
        print('Error: unknown flag: --no-such-flag', file=sys.stderr)
        sys.exit(1)
        '''))
    for b in bin_dir.iterdir():
        b.chmod(0o755)
    with pytest.raises(RuntimeError, match='exited 1') as failure:
        ControlPlane(bin_dir, tmp_path / 'plane', start_timeout=30)
    assert 'unknown flag: --no-such-flag' in str(failure.value)
    etcd_pid = (bin_dir / 'etcd.pid').read_text()
    assert not os.path.exists(f'/proc/{etcd_pid}'), 'etcd was left running'


@pytest.mark.parametrize('server, reachable', [
    ('https://127.0.0.1:6443', True), ('https://[::1]:6443', True), ('https://localhost:6443', True),
    ('https://10.96.0.1:443', False), ('https://kube.example:443', False),
])
def test_the_webhook_tests_run_where_the_api_server_can_call_back(monkeypatch: pytest.MonkeyPatch, server: str,
                                                                   reachable: bool) -> None:
    from test_rolegate import reaches_this_machine
    monkeypatch.delenv('ROLEGATE_E2E_WEBHOOK_HOST', raising=False)
    assert reaches_this_machine(server) is reachable
    monkeypatch.setenv('ROLEGATE_E2E_WEBHOOK_HOST', '172.18.0.1')
    assert reaches_this_machine(server)
