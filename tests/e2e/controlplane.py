"""A real kube-apiserver and etcd for the end-to-end suite, started as controller-runtime's envtest
starts them (pkg/internal/testing/controlplane): binaries from the directory `KUBEBUILDER_ASSETS`
names (what `setup-envtest use -p path` prints), etcd and the API server on 127.0.0.1 at free
ports, a throw-away PKI made with the `openssl` CLI (a serving CA, a client CA with an admin in
`system:masters`, a service-account signing key), `--authorization-mode=RBAC`, and envtest's
default flags. Stopped by pid at the end.

Everything that builds flags, certificates and kubeconfigs is a plain function, so it is tested
without the binaries (test_controlplane_unit.py).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import socket
import ssl
import subprocess
import time
import urllib.request

ASSETS_VARIABLE = 'KUBEBUILDER_ASSETS'
BINARIES = ('kube-apiserver', 'etcd')
HOW_TO_ENABLE = (f'real control plane tier off: set {ASSETS_VARIABLE} to a directory holding kube-apiserver and etcd, '
                 f'e.g. {ASSETS_VARIABLE}="$(setup-envtest use -p path)"')
# envtest's: service IPs that never collide with a real network, the cluster's first address.
SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24'
ADMIN_USER, ADMIN_GROUP = 'admin', 'system:masters'


def assets(environ: dict[str, str] | os._Environ = os.environ) -> tuple[pathlib.Path | None, str]:
    """The assets directory, or None and the one line that says why the tier is off."""
    value = environ.get(ASSETS_VARIABLE, '')
    if not value:
        return None, HOW_TO_ENABLE
    directory = pathlib.Path(value)
    missing = [b for b in BINARIES if not os.access(directory / b, os.X_OK)]
    if missing:
        return None, f'{HOW_TO_ENABLE} ({ASSETS_VARIABLE}={value} has no executable {" or ".join(missing)})'
    return directory, ''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- PKI

@dataclasses.dataclass(frozen=True)
class Pki:
    """File paths of the throw-away PKI, all PEM."""
    ca_crt: pathlib.Path          # signs the API server's serving certificate; clients trust it
    serving_crt: pathlib.Path     # the API server's, for 127.0.0.1 and localhost
    serving_key: pathlib.Path
    client_ca_crt: pathlib.Path   # --client-ca-file: client certificates it signed authenticate
    admin_crt: pathlib.Path       # CN=admin, O=system:masters
    admin_key: pathlib.Path
    sa_key: pathlib.Path          # --service-account-signing-key-file (TokenRequest signs with it)
    sa_pub: pathlib.Path          # --service-account-key-file (tokens are verified with it)


def _openssl(*args: str | pathlib.Path, openssl: str = 'openssl') -> None:
    proc = subprocess.run([openssl, *map(str, args)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f'openssl {" ".join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}')


def _ca(directory: pathlib.Path, name: str, openssl: str) -> tuple[pathlib.Path, pathlib.Path]:
    crt, key = directory / f'{name}.crt', directory / f'{name}.key'
    # OpenSSL 3's `req -x509` marks the certificate CA:TRUE with key identifiers (its v3_ca section).
    _openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
             '-subj', f'/CN=rolegate-e2e-{name}', '-keyout', key, '-out', crt, openssl=openssl)
    return crt, key


def _leaf(directory: pathlib.Path, name: str, subject: str, extensions: str, ca: tuple[pathlib.Path, pathlib.Path],
          openssl: str) -> tuple[pathlib.Path, pathlib.Path]:
    crt, key, csr, ext = (directory / f'{name}.{s}' for s in ('crt', 'key', 'csr', 'ext'))
    _openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', subject,
             '-keyout', key, '-out', csr, openssl=openssl)
    ext.write_text(extensions)
    _openssl('x509', '-req', '-in', csr, '-CA', ca[0], '-CAkey', ca[1], '-set_serial', str(int.from_bytes(os.urandom(8), 'big')),
             '-days', '2', '-extfile', ext, '-out', crt, openssl=openssl)
    csr.unlink()
    ext.unlink()
    return crt, key


def make_pki(directory: pathlib.Path, openssl: str = 'openssl') -> Pki:
    """A serving CA and certificate, a client CA and an admin certificate, and a service-account key
    pair, all made with the openssl CLI into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    serving_ca = _ca(directory, 'serving-ca', openssl)
    client_ca = _ca(directory, 'client-ca', openssl)
    serving = _leaf(directory, 'apiserver', '/CN=kube-apiserver',
                    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n'
                    'extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n', serving_ca, openssl)
    admin = _leaf(directory, 'admin', f'/O={ADMIN_GROUP}/CN={ADMIN_USER}',
                  'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n'
                  'extendedKeyUsage=clientAuth\n', client_ca, openssl)
    sa_key, sa_pub = directory / 'sa-signer.key', directory / 'sa-signer.pub'
    _openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', sa_key, openssl=openssl)
    _openssl('pkey', '-in', sa_key, '-pubout', '-out', sa_pub, openssl=openssl)
    for key in (serving_ca[1], client_ca[1], serving[1], admin[1], sa_key):
        key.chmod(0o600)
    return Pki(ca_crt=serving_ca[0], serving_crt=serving[0], serving_key=serving[1], client_ca_crt=client_ca[0],
               admin_crt=admin[0], admin_key=admin[1], sa_key=sa_key, sa_pub=sa_pub)


# ----------------------------------------------------------------------------- flags

def etcd_args(data_dir: pathlib.Path, client_port: int, peer_port: int, no_fsync: bool) -> list[str]:
    """envtest's etcd flags: one member on loopback; without fsync where etcd offers it (3.5+),
    as envtest does: the data is thrown away."""
    client = f'http://127.0.0.1:{client_port}'
    args = [f'--data-dir={data_dir}', f'--listen-client-urls={client}', f'--advertise-client-urls={client}',
            f'--listen-peer-urls=http://127.0.0.1:{peer_port}']
    if no_fsync:
        args.append('--unsafe-no-fsync=true')
    return args


def apiserver_args(pki: Pki, cert_dir: pathlib.Path, etcd_port: int, secure_port: int) -> list[str]:
    """envtest's kube-apiserver defaults (APIServer.defaultArgs and CertAuthn), with the serving
    certificate named explicitly rather than found in --cert-dir."""
    url = f'https://127.0.0.1:{secure_port}'
    return [
        '--advertise-address=127.0.0.1',
        f'--etcd-servers=http://127.0.0.1:{etcd_port}',
        f'--cert-dir={cert_dir}',
        f'--secure-port={secure_port}',
        '--bind-address=127.0.0.1',
        f'--tls-cert-file={pki.serving_crt}',
        f'--tls-private-key-file={pki.serving_key}',
        f'--client-ca-file={pki.client_ca_crt}',
        f'--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}',
        '--allow-privileged=true',
        # No controller-manager creates the `default` ServiceAccounts this plugin would require.
        '--disable-admission-plugins=ServiceAccount',
        '--authorization-mode=RBAC',
        f'--service-account-issuer={url}/',
        f'--service-account-key-file={pki.sa_pub}',
        f'--service-account-signing-key-file={pki.sa_key}',
    ]


def admin_kubeconfig(server: str, pki: Pki) -> str:
    """A kubeconfig for the admin client certificate (JSON is YAML)."""
    return _kubeconfig(server, pki.ca_crt, 'admin', {'client-certificate': str(pki.admin_crt),
                                                     'client-key': str(pki.admin_key)})


def token_kubeconfig(server: str, ca: pathlib.Path, user: str, token: str) -> str:
    """A kubeconfig that authenticates with a bearer token (a ServiceAccount's, say)."""
    return _kubeconfig(server, ca, user, {'token': token})


def _kubeconfig(server: str, ca: pathlib.Path, user: str, credentials: dict[str, str]) -> str:
    import json
    return json.dumps({
        'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'envtest',
        'clusters': [{'name': 'envtest', 'cluster': {'server': server, 'certificate-authority': str(ca)}}],
        'users': [{'name': user, 'user': credentials}],
        'contexts': [{'name': 'envtest', 'context': {'cluster': 'envtest', 'user': user, 'namespace': 'default'}}],
    }, indent=2)


# ----------------------------------------------------------------------------- processes

class ControlPlane:
    """etcd and kube-apiserver from `assets`, running until stop()."""

    def __init__(self, assets_dir: pathlib.Path, directory: pathlib.Path, start_timeout: float = 60) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.pki = make_pki(directory / 'pki')
        self.processes: list[subprocess.Popen] = []
        etcd = str(assets_dir / 'etcd')
        etcd_port, peer_port, self.port = free_port(), free_port(), free_port()
        self.url = f'https://127.0.0.1:{self.port}'
        self.kubeconfig = str(directory / 'kubeconfig.json')
        pathlib.Path(self.kubeconfig).write_text(admin_kubeconfig(self.url, self.pki))
        no_fsync = 'unsafe-no-fsync' in subprocess.run([etcd, '--help'], capture_output=True, text=True,
                                                       timeout=30).stdout
        (directory / 'certs').mkdir(exist_ok=True)
        started = time.monotonic()
        try:
            self._start('etcd', [etcd, *etcd_args(directory / 'etcd', etcd_port, peer_port, no_fsync)])
            self._start('kube-apiserver', [str(assets_dir / 'kube-apiserver'),
                                           *apiserver_args(self.pki, directory / 'certs', etcd_port, self.port)])
            self._wait_ready(start_timeout)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - started

    def _start(self, name: str, command: list[str]) -> None:
        with open(self.directory / f'{name}.log', 'w') as log:
            self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))

    def _wait_ready(self, timeout: float) -> None:
        context = ssl.create_default_context(cafile=str(self.pki.ca_crt))
        context.load_cert_chain(str(self.pki.admin_crt), str(self.pki.admin_key))
        deadline = time.monotonic() + timeout
        last = ''
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f'{process.args[0]} exited {process.returncode}:\n{self.logs()}')
            try:
                with urllib.request.urlopen(f'{self.url}/readyz', timeout=2, context=context) as r:
                    if r.status == 200:
                        return
            except OSError as e:  # refused while starting; 500 until the post-start hooks finish
                last = str(e)
            time.sleep(0.2)
        raise RuntimeError(f'kube-apiserver never answered /readyz within {timeout}s ({last}):\n{self.logs()}')

    def logs(self) -> str:
        return '\n'.join(f'--- {p.name}\n' + p.read_text()[-4000:] for p in sorted(self.directory.glob('*.log')))

    def stop(self) -> None:
        """The API server first, then etcd; each by its pid, killed if it ignores SIGTERM."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()
