"""The Helm chart on a real API server, for the envtest tier: `helm install` (CRDs skipped: the suite
applies crds/ itself, as a GitOps tool would), a token for the chart's ServiceAccount from the
TokenRequest API (`kubectl create token`), and the webhook's clientConfig pointed at a local URL.

No kubelet runs in a control plane, so the chart's Deployment never gets pods: `rolegate run` runs
on this machine instead, as that ServiceAccount, so the chart's RBAC is what it gets.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import pathlib
import subprocess

from conftest import REPO, Cluster, kubectl
from controlplane import token_kubeconfig

RELEASE = 'rolegate'
NAMESPACE = 'rolegate-system'
CHART = REPO / 'charts' / 'rolegate'


@dataclasses.dataclass(frozen=True)
class Installed:
    namespace: str
    fullname: str          # the chart's full name: Deployment, Lease, webhook configuration
    service_account: str
    kubeconfig: str        # authenticates as the ServiceAccount

    @property
    def user(self) -> str:
        return f'system:serviceaccount:{self.namespace}:{self.service_account}'

    def run_args(self) -> list[str]:
        """`rolegate run` flags the chart's Deployment passes for the Lease (its Role names it)."""
        return ['--leader-election-namespace', self.namespace, '--lease-name', self.fullname]


def helm() -> str:
    out = subprocess.run(['bash', str(REPO / 'scripts' / 'install-helm.sh')], capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f'scripts/install-helm.sh failed:\n{out.stderr}')
    return out.stdout.strip().splitlines()[-1]


def install(cluster: Cluster, directory: pathlib.Path, webhook: bool) -> Installed:
    """`helm install` the chart (one replica, CRDs skipped) into an envtest control plane and mint
    its ServiceAccount a token."""
    assert cluster.plane is not None, 'the chart is installed on envtest control planes only'
    values = ['--set', f'webhook.enabled={str(webhook).lower()}', '--set', 'replicaCount=1']
    out = subprocess.run([helm(), 'install', RELEASE, str(CHART), '--namespace', NAMESPACE, '--create-namespace',
                          '--skip-crds', '--kubeconfig', cluster.kubeconfig, *values],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise AssertionError(f'helm install failed:\n{out.stderr}{out.stdout}')
    deployment = json.loads(kubectl('get', 'deployment', '-n', NAMESPACE, '-l', f'app.kubernetes.io/instance={RELEASE}',
                                    '-o', 'json', kubeconfig=cluster.kubeconfig).stdout)['items'][0]
    fullname = deployment['metadata']['name']
    service_account = deployment['spec']['template']['spec']['serviceAccountName']
    token = kubectl('create', 'token', service_account, '-n', NAMESPACE, '--duration', '2h',
                    kubeconfig=cluster.kubeconfig).stdout.strip()
    kubeconfig = directory / 'serviceaccount.kubeconfig.json'
    kubeconfig.write_text(token_kubeconfig(cluster.url, cluster.plane.pki.ca_crt, service_account, token))
    kubeconfig.chmod(0o600)
    return Installed(NAMESPACE, fullname, service_account, str(kubeconfig))


def point_webhook_at(cluster: Cluster, name: str, url: str, ca: pathlib.Path) -> None:
    """Replace the chart's Service clientConfig with a URL (a local API server reaches 127.0.0.1),
    keeping the chart's rules, selectors and failure policy."""
    patch = [{'op': 'replace', 'path': '/webhooks/0/clientConfig',
              'value': {'url': url, 'caBundle': base64.b64encode(ca.read_bytes()).decode()}}]
    kubectl('patch', 'validatingwebhookconfiguration', name, '--type', 'json', '-p', json.dumps(patch),
            kubeconfig=cluster.kubeconfig)


def register_webhook(cluster: Cluster, name: str, url: str, ca: pathlib.Path, namespace_label: dict[str, str]) -> None:
    """A webhook configuration of the chart's shape, by URL, for namespaces carrying `namespace_label`
    (on a shared cluster, so other tests' namespaces are not judged)."""
    kubectl('apply', '-f', '-', kubeconfig=cluster.kubeconfig, input={
        'apiVersion': 'admissionregistration.k8s.io/v1', 'kind': 'ValidatingWebhookConfiguration',
        'metadata': {'name': name},
        'webhooks': [{
            'name': 'validate.rolegate.dev', 'admissionReviewVersions': ['v1'], 'sideEffects': 'None',
            'timeoutSeconds': 5, 'failurePolicy': 'Fail', 'matchPolicy': 'Equivalent',
            'clientConfig': {'url': url, 'caBundle': base64.b64encode(ca.read_bytes()).decode()},
            'rules': [{'apiGroups': ['rolegate.dev'], 'apiVersions': ['*'], 'operations': ['CREATE', 'UPDATE', 'DELETE'],
                       'resources': ['accounts', 'members', 'teams', 'roles', 'rolebindings'], 'scope': 'Namespaced'}],
            'namespaceSelector': {'matchLabels': namespace_label},
        }],
    })
