"""What only a real kube-apiserver proves: the CRDs accepted as structural schemas with their CEL
rules within the cost budget, those rules enforced by the server itself (R6, R10, R11, R17, R18;
the emulator evaluates no CEL), and the chart's RBAC refusing its ServiceAccount what the chart
does not grant.

They run in the envtest tier (KUBEBUILDER_ASSETS) and against ROLEGATE_E2E_KUBECONFIG; on the
emulator they skip with the line that says how to enable them. The `controller` set-up has no
webhook, so every denial here is the API server's own.
"""

from __future__ import annotations

import json

import pytest

from conftest import ENVTEST_OFF, REAL, kubectl
from test_rolegate import Rolegate, apply, controller, doc, get, tenant  # noqa: F401 (fixture)

if not REAL:
    pytest.skip(ENVTEST_OFF, allow_module_level=True)  # one line for the whole tier

CRDS = ('accounts', 'members', 'teams', 'roles', 'rolebindings')


def refused(rolegate: Rolegate, ns: str, manifest: str) -> str:
    out = apply(rolegate, ns, manifest, check=False)
    assert out.returncode != 0, f'accepted:\n{out.stdout}'
    return out.stderr


def patch_refused(rolegate: Rolegate, ns: str, resource: str, name: str, patch: dict) -> str:
    out = kubectl('patch', '-n', ns, resource, name, '--type', 'merge', '-p', json.dumps(patch), check=False,
                  kubeconfig=rolegate.cluster.kubeconfig)
    assert out.returncode != 0, f'patched:\n{out.stdout}'
    return out.stderr


def test_the_crds_are_accepted_as_structural_schemas(controller: Rolegate) -> None:
    for crd in CRDS:
        obj = json.loads(kubectl('get', 'crd', f'{crd}.rolegate.dev', '-o', 'json',
                                 kubeconfig=controller.cluster.kubeconfig).stdout)
        conditions = {c['type']: c['status'] for c in obj['status']['conditions']}
        assert conditions.get('Established') == 'True' and conditions.get('NamesAccepted') == 'True', (crd, conditions)
        assert conditions.get('NonStructuralSchema') != 'True', (crd, conditions)


def test_r6_an_owner_role_of_project_scope_is_refused_by_cel(controller: Rolegate) -> None:
    ns = tenant(controller)
    error = refused(controller, ns, doc('Role', 'bad-owner', {'scope': 'Project', 'owner': True, 'permissions': ['x']}))
    assert '[R6] an owner role must have scope Account' in error


def test_r10_a_locked_role_never_changes(controller: Rolegate) -> None:
    ns = tenant(controller)
    error = patch_refused(controller, ns, 'rgrole', 'owner', {'spec': {'permissions': ['account.own']}})
    assert '[R10] the role is locked: its spec never changes' in error
    assert get(controller, ns, 'rgrole', 'owner')['spec']['permissions'] == ['account.own', 'members.manage']


def test_r11_immutable_fields_stay(controller: Rolegate) -> None:
    ns = tenant(controller)
    apply(controller, ns, doc('RoleBinding', 'bob-pv', {'account': 'acme', 'member': 'bob', 'role': 'project-viewer',
                                                        'project': 'web'}))
    assert '[R11] spec.account is immutable' in patch_refused(controller, ns, 'rgmember', 'bob',
                                                             {'spec': {'account': 'other'}})
    assert '[R11] spec.type is immutable' in patch_refused(controller, ns, 'rgmember', 'bob', {'spec': {'type': 'Service'}})
    assert '[R11] spec.role is immutable' in patch_refused(controller, ns, 'rgbinding', 'bob-pv',
                                                          {'spec': {'role': 'project-admin'}})
    assert '[R11] spec.project is immutable' in patch_refused(controller, ns, 'rgbinding', 'bob-pv',
                                                             {'spec': {'project': 'shop'}})
    assert '[R11] spec.member is immutable' in patch_refused(controller, ns, 'rgbinding', 'bob-pv',
                                                            {'spec': {'member': 'alice'}})
    # The owner binding's member may move (R4 decides whether it may): the exemption keys on its name.
    kubectl('patch', '-n', ns, 'rgbinding', 'acme-owner', '--type', 'merge', '-p', '{"spec":{"member":"bob"}}',
            kubeconfig=controller.cluster.kubeconfig)


def test_r17_a_binding_names_exactly_one_subject(controller: Rolegate) -> None:
    ns = tenant(controller)
    message = '[R17] a binding names exactly one subject: spec.member or spec.team'
    assert message in refused(controller, ns, doc('RoleBinding', 'both', {'account': 'acme', 'member': 'bob', 'team': 'crew',
                                                                          'role': 'support'}))
    assert message in refused(controller, ns, doc('RoleBinding', 'neither', {'account': 'acme', 'role': 'support'}))


def test_r18_a_window_starts_before_it_ends(controller: Rolegate) -> None:
    ns = tenant(controller)
    error = refused(controller, ns, doc('RoleBinding', 'backwards', {
        'account': 'acme', 'member': 'bob', 'role': 'support',
        'validFrom': '2026-09-30T00:00:00Z', 'validUntil': '2026-07-01T00:00:00Z'}))
    assert '[R18] spec.validFrom must be before spec.validUntil' in error


def test_the_charts_service_account_gets_no_more_than_the_chart_grants(controller: Rolegate) -> None:
    if controller.chart is None:
        pytest.skip('rolegate runs as the chart\'s ServiceAccount in the envtest tier only')
    ns = tenant(controller)
    user, as_sa = controller.chart.user, controller.chart.kubeconfig

    def forbidden(*args: str, input: str | None = None) -> str:
        out = kubectl(*args, input=input, check=False, kubeconfig=as_sa)
        assert out.returncode != 0 and 'forbidden' in out.stderr.lower(), (args, out.stdout, out.stderr)
        return out.stderr

    error = forbidden('create', '-n', ns, '-f', '-', input='---\n' + doc(
        'RoleBinding', 'sneaky', {'account': 'acme', 'member': 'bob', 'role': 'owner'}))
    assert f'User "{user}" cannot create resource "rolebindings" in API group "rolegate.dev"' in error
    forbidden('delete', '-n', ns, 'rgaccount', 'acme')
    forbidden('patch', '-n', ns, 'rgrole', 'support', '--type', 'merge', '-p', '{"spec":{"permissions":["all"]}}')
    forbidden('get', 'secrets', '-n', controller.chart.namespace)
    forbidden('create', 'namespace', 'rolegate-e2e-forbidden')
    # What it was granted, it used: every status in the tests was written under this token, and the
    # API server never refused rolegate anything.
    assert 'forbidden' not in controller.log.read_text().lower()
    can = kubectl('auth', 'can-i', 'patch', 'rolebindings.rolegate.dev', '--subresource=status', '-n', ns,
                  check=False, kubeconfig=as_sa)
    assert can.stdout.strip() == 'yes', can.stderr
