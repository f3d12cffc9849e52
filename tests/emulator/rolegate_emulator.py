"""A stateful Kubernetes API emulator for rolegate's tests, built on kmock.

There is no kube-apiserver (and no Docker) on our machines, so the end-to-end tests talk to this
instead: real kubectl and the kube-rs client both work against it.

Run it::

    .venv/bin/python tests/emulator/rolegate_emulator.py --port 0 --kubeconfig /tmp/kc.yaml \\
        [--crd crds/] [--webhook-url https://127.0.0.1:8443/validate --webhook-ca ca.pem] [-v]
    KUBECONFIG=/tmp/kc.yaml kubectl get rolegate -A

The first line printed on stdout is the server URL (``http://127.0.0.1:PORT``); it is printed only
once the port listens and the kubeconfig (if asked for) is written, so it doubles as the ready signal.

What it emulates (see tests/emulator/README.md for the full list and the gaps):
CRD registration and discovery (shortNames, categories, server-side tables from
additionalPrinterColumns), core Namespaces/Events/ConfigMaps/Secrets, events.k8s.io Events (the
same storage as core Events, like the real server), coordination.k8s.io Leases; resourceVersion,
uid, generation, creationTimestamp, managedFields; create/get/list/replace/merge, JSON and
server-side apply patches/delete; the /status subresource; finalizers and deletionTimestamp;
resumable watches with bookmarks; label and field selectors; pagination; dryRun; and the call-out
to one validating admission webhook for the resources of chosen API groups.

Namespaces are created on demand: writing an object into a namespace that does not exist creates
the Namespace (the real server would answer 404). Deleting a Namespace deletes what is in it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import copy
import datetime
import inspect
import json
import marshal
import pathlib
import random
import re
import ssl
import string
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import aiohttp.web
import aiohttp.web_server
import attrs
import jsonpatch
import kmock
import yaml
from kmock._internal import dsl as _kmock_dsl
from kmock._internal import filtering as _kmock_filtering
from kmock._internal import parsing as _kmock_parsing
from kmock._internal import rendering as _kmock_rendering

# kmock 0.8 parses the URL of every request, and its parser crashes on `/api/v1/namespaces` (and reads
# `/api/v1/namespaces/x` as "namespace x, no resource"): the core Namespace resource is the one
# collection whose plural is also the namespace prefix. Wrap the parser for exactly those paths.
_kmock_parse_path = _kmock_parsing.parse_path


def _parse_path(path: str) -> _kmock_parsing.ParsedPath:
    p = path.strip('/').split('/')
    if p[:3] == ['api', 'v1', 'namespaces'] and (len(p) <= 4 or (len(p) == 5 and p[4] in ('status', 'finalize'))):
        return _kmock_parsing.ParsedPath('', 'v1', 'namespaces', None, *(p[3:5] + [None, None])[:2])
    return _kmock_parse_path(path)


_kmock_parsing.parse_path = _parse_path

APPLIED_META = ('labels', 'annotations', 'finalizers', 'ownerReferences')  # what SSA may set in metadata
VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']
DEFAULT_USER = {'username': 'kubernetes-admin', 'groups': ['system:masters', 'system:authenticated']}
# events.k8s.io/v1 and core v1 Events are two views of one storage; these fields are renamed.
EVENT_FIELDS = {'regarding': 'involvedObject', 'note': 'message', 'reportingController': 'reportingComponent',
                'deprecatedSource': 'source', 'deprecatedFirstTimestamp': 'firstTimestamp',
                'deprecatedLastTimestamp': 'lastTimestamp', 'deprecatedCount': 'count'}


_NOW: list = [None, '']


# The API server reads request bodies up to 3 MiB (aiohttp's default would refuse at 1 MiB with a
# 413 of its own), so that a large object reaches etcd's limit below, as on a real control plane.
API_SERVER_MAX_BODY = 3 * 1024 * 1024


def _make_request(self: Any, message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> Any:
    return aiohttp.web.BaseRequest(message, payload, protocol, writer, task, self._loop,
                                   client_max_size=API_SERVER_MAX_BODY)


aiohttp.web_server.Server._make_request = _make_request  # type: ignore[method-assign]

# etcd's default request limit (--max-request-bytes, 1.5 MiB): a write whose stored object is larger
# fails as the real API server fails it, with etcd's message passed on as a 500.
ETCD_MAX_REQUEST_BYTES = 1536 * 1024


def now() -> str:
    second = int(time.time())
    if second != _NOW[0]:  # formatting is the costly part: once a second
        _NOW[:] = [second, datetime.datetime.fromtimestamp(second, datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')]
    return _NOW[1]


def jcopy(obj: Any) -> Any:
    """A deep copy of JSON-like data; marshal does it in C, some 3-4 times faster than copy.deepcopy."""
    try:
        return marshal.loads(marshal.dumps(obj))
    except ValueError:  # not only dicts, lists and scalars (e.g. a datetime from a YAML body)
        return copy.deepcopy(obj)


def _age(ts: Any) -> Any:
    """A timestamp as kubectl's AGE column shows it."""
    try:
        then = datetime.datetime.strptime(ts, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.UTC)
    except (TypeError, ValueError):
        return ts
    s = max(int((datetime.datetime.now(datetime.UTC) - then).total_seconds()), 0)
    return f'{s}s' if s < 120 else f'{s // 60}m' if s < 7200 else f'{s // 3600}h' if s < 172800 else f'{s // 86400}d'


class ApiError(Exception):
    """Becomes a metav1.Status response: what clients (kubectl, kube-rs) parse as the error."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None,
                 warnings: list[str] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details, self.warnings = code, reason, message, details, warnings


@attrs.define
class Res:
    """One served group/version/resource; several may share a storage (`store`)."""
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short: list[str] = attrs.field(factory=list)
    categories: list[str] = attrs.field(factory=list)
    status: bool = False  # has the /status subresource
    generation: bool = False  # keeps metadata.generation (CRs, CRDs)
    builtin: bool = True  # False for custom resources
    columns: list[dict] | None = None  # additionalPrinterColumns
    store: tuple[str, str] | None = None  # storage key (group, plural); defaults to its own
    event_view: bool = False  # core v1 view of events.k8s.io Events

    def __attrs_post_init__(self) -> None:
        self.store = self.store or (self.group, self.plural)

    @property
    def gv(self) -> str:
        return f'{self.group}/{self.version}' if self.group else self.version

    @property
    def qualified(self) -> str:  # "widgets.rolegate.dev", as the real server names it in messages
        return f'{self.plural}.{self.group}' if self.group else self.plural


BUILTINS = [
    Res('', 'v1', 'namespaces', 'Namespace', False, ['ns'], status=True),
    Res('', 'v1', 'events', 'Event', True, ['ev'], event_view=True, store=('events.k8s.io', 'events')),
    Res('', 'v1', 'configmaps', 'ConfigMap', True, ['cm']),
    Res('', 'v1', 'secrets', 'Secret', True),
    Res('events.k8s.io', 'v1', 'events', 'Event', True, ['ev']),
    Res('coordination.k8s.io', 'v1', 'leases', 'Lease', True),
    Res('apiextensions.k8s.io', 'v1', 'customresourcedefinitions', 'CustomResourceDefinition', False,
        ['crd', 'crds'], status=True, generation=True),
]


# ---------------------------------------------------------------------------------------------
# Small pure helpers: merge patch, selectors, JSONPath for printer columns, managed fields.

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return jcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _strip_directives(patch: Any) -> Any:
    """Strategic merge patch, approximated (built-in kinds only): drop the `$…` directives, merge."""
    if isinstance(patch, dict):
        return {k: _strip_directives(v) for k, v in patch.items() if not k.startswith('$')}
    return patch


_TERM = re.compile(r'^\s*(!?)\s*([\w./-]+)\s*(?:(==|=|!=)\s*([\w./-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$')


def label_match(selector: str | None, labels: dict) -> bool:
    for term in re.split(r',(?![^()]*\))', selector or ''):
        if not term.strip():
            continue
        m = _TERM.match(term)
        if not m:
            raise ApiError(400, 'BadRequest', f'unable to parse requirement: {term!r}')
        neg, key, op, value, setop, values = m.groups()
        have = labels.get(key)
        ok = (key not in labels if neg else
              have == value if op in ('=', '==') else
              have != value if op == '!=' else
              have in {v.strip() for v in values.split(',')} if setop == 'in' else
              have not in {v.strip() for v in values.split(',')} if setop == 'notin' else
              key in labels)
        if not ok:
            return False
    return True


def field_match(selector: str | None, obj: dict) -> bool:
    for term in (selector or '').split(','):
        if not term.strip():
            continue
        m = re.match(r'^\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*$', term)
        if not m:
            raise ApiError(400, 'BadRequest', f'invalid field selector: {term!r}')
        value: Any = obj
        for part in m.group(1).split('.'):
            value = value.get(part) if isinstance(value, dict) else None
        value = '' if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        if (value == m.group(3)) != (m.group(2) != '!='):
            return False
    return True


_JSONPATH = re.compile(r'\.([\w-]+)|\[(\d+)\]|\[\*\]|\[\?\(@\.([\w.-]+)\s*==\s*["\']([^"\']*)["\']\)\]')


def jsonpath(obj: Any, path: str) -> list[Any]:
    """The JSONPath subset printer columns use: .a.b, [0], [*], [?(@.type=="Ready")]."""
    values = [obj]
    for m in _JSONPATH.finditer(path):
        key, index, fkey, fval = m.groups()
        nxt = []
        for v in values:
            if key is not None and isinstance(v, dict) and key in v:
                nxt.append(v[key])
            elif index is not None and isinstance(v, list) and int(index) < len(v):
                nxt.append(v[int(index)])
            elif m.group(0) == '[*]' and isinstance(v, list):
                nxt.extend(v)
            elif fkey is not None and isinstance(v, list):
                nxt.extend(i for i in v if [str(x) for x in jsonpath(i, '.' + fkey)][:1] == [fval])
        values = nxt
    return values


def fields_v1(obj: Any, top: bool = True) -> dict:
    """managedFields' FieldsV1 for an applied object: every map key; lists are atomic."""
    if not isinstance(obj, dict):
        return {}
    out = {f'f:{k}': fields_v1(v, False) for k, v in obj.items() if not top or k not in ('apiVersion', 'kind', 'metadata')}
    meta = {k: v for k, v in (obj.get('metadata') or {}).items() if k in APPLIED_META} if top else {}
    return {**out, 'f:metadata': fields_v1(meta, False)} if meta else out


def _leaf_paths(fields: dict, prefix: tuple = ()) -> set[tuple]:
    out: set[tuple] = set()
    for k, sub in fields.items():
        path = prefix + (k[2:],)
        out |= _leaf_paths(sub, path) if sub else {path}
    return out


# kubectl's built-in generators (`kubectl create namespace|configmap|secret`) send protobuf, not
# JSON. Decode just those kinds (the fields the generators set); anything else gets 415.
_PB_META = {1: ('name', 'str'), 2: ('generateName', 'str'), 3: ('namespace', 'str'), 11: ('labels', 'map'),
            12: ('annotations', 'map'), 14: ('finalizers', 'strs')}
PB_KINDS = {
    'Namespace': {1: ('metadata', _PB_META), 2: ('spec', {1: ('finalizers', 'strs')})},
    'ConfigMap': {1: ('metadata', _PB_META), 2: ('data', 'map'), 3: ('binaryData', 'bytesmap'), 4: ('immutable', 'bool')},
    'Secret': {1: ('metadata', _PB_META), 2: ('data', 'bytesmap'), 3: ('type', 'str'), 4: ('stringData', 'map'),
               5: ('immutable', 'bool')},
}


def _pb_fields(buf: bytes) -> list[tuple[int, Any]]:
    """Protobuf wire format to [(field number, int or bytes)]."""
    out, i = [], 0

    def varint() -> int:
        nonlocal i
        n = shift = 0
        while True:
            b = buf[i]
            i += 1
            n |= (b & 0x7f) << shift
            shift += 7
            if b < 0x80:
                return n

    while i < len(buf):
        key = varint()
        if key & 7 == 0:
            value: Any = varint()
        elif key & 7 == 2:
            size = varint()
            value, i = buf[i:i + size], i + size
        else:
            size = 8 if key & 7 == 1 else 4
            value, i = buf[i:i + size], i + size
        out.append((key >> 3, value))
    return out


def _pb_message(buf: bytes, schema: dict) -> dict:
    out: dict[str, Any] = {}
    for field, value in _pb_fields(buf):
        name, kind = schema.get(field, (None, None))
        if isinstance(kind, dict):
            out[name] = _pb_message(value, kind)
        elif kind == 'str' and value:  # proto2 sends unset strings as ""
            out[name] = value.decode()
        elif kind == 'bool':
            out[name] = bool(value)
        elif kind == 'strs':
            out.setdefault(name, []).append(value.decode())
        elif kind in ('map', 'bytesmap'):
            entry = dict(_pb_fields(value))
            raw = entry.get(2, b'')
            out.setdefault(name, {})[entry.get(1, b'').decode()] = \
                base64.b64encode(raw).decode() if kind == 'bytesmap' else raw.decode()
    return out


def decode_protobuf(body: bytes) -> dict:
    """A `k8s\\0` envelope (runtime.Unknown: typeMeta=1 {apiVersion=1, kind=2}, raw=2) to JSON."""
    envelope = dict(_pb_fields(body[4:])) if body[:4] == b'k8s\x00' else {}
    type_meta = {f: v.decode() for f, v in _pb_fields(envelope.get(1, b''))}
    if type_meta.get(2) not in PB_KINDS:
        raise ApiError(415, 'UnsupportedMediaType', f'the emulator decodes protobuf only for {", ".join(PB_KINDS)} '
                                                    f'(got {type_meta.get(2)!r}); send JSON')
    return {'apiVersion': type_meta.get(1), 'kind': type_meta[2], **_pb_message(envelope.get(2, b''), PB_KINDS[type_meta[2]])}


def _split_objects(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


@attrs.define
class ChangeLog:
    """One store's changes, oldest first. `base` is the absolute index of entries[0] (positions stay
    valid across compaction); `floor` is the resourceVersion of the last entry compacted away: a
    watch from an older resourceVersion has missed changes and gets 410 Expired."""
    entries: list[tuple] = attrs.field(factory=list)
    base: int = 0
    floor: int = 0

    @property
    def end(self) -> int:
        return self.base + len(self.entries)

    def after(self, rv: int) -> int:
        """The position of the first change after resourceVersion `rv`, or -1 if compacted away."""
        if rv < self.floor:
            return -1
        return self.base + bisect.bisect_right(self.entries, rv, key=lambda e: e[0])


# ---------------------------------------------------------------------------------------------

@attrs.define
class Faults:
    """What fraction of status writes (`status`: PUT/PATCH of /status) and lists (`list`: GET of a
    collection, not a watch) fail, and how: `codes` are drawn from uniformly, each 500, 409 or
    "timeout" (a `timeout`-second wait, then 504). `seed` makes a run repeatable. `injected` counts
    what was injected, by target and code. `slow_list` (`{"resource": "rolebindings", "delay": 6,
    "count": 1}`) makes the next `count` lists of that resource wait `delay` seconds, then succeed:
    a large cluster's first list. Faults a test can set with `POST /_emulator/faults`."""
    status_rate: float = 0.0
    list_rate: float = 0.0
    codes: list = attrs.field(factory=lambda: [500])
    timeout: float = 1.0
    delay: float = 0.0  # seconds every status write waits before it is served (no failure)
    seed: int | None = None
    injected: dict = attrs.field(factory=dict)
    drops: int = 0
    spare: list = attrs.field(factory=lambda: ['kubectl'])
    # Status write requests received, by object name (faulted or not); `{"reset": true}` clears it.
    status_writes: dict = attrs.field(factory=dict)
    slow_list: dict = attrs.field(factory=dict)  # resource, delay (s), count (lists left to slow)
    _random: random.Random = attrs.field(factory=random.Random)

    def configure(self, spec: dict) -> None:
        self.status_rate = float(spec.get('status', self.status_rate))
        self.list_rate = float(spec.get('list', self.list_rate))
        self.timeout = float(spec.get('timeout', self.timeout))
        self.delay = float(spec.get('delay', self.delay))
        if 'codes' in spec:
            self.codes = [c if c == 'timeout' else int(c) for c in spec['codes']] or [500]
        if 'spare' in spec:
            self.spare = [str(p) for p in spec['spare']]
        if 'slow_list' in spec:
            slow = spec['slow_list'] or {}
            self.slow_list = {'resource': str(slow.get('resource', '')), 'delay': float(slow.get('delay', 0)),
                              'count': int(slow.get('count', 1))} if slow else {}
        if spec.get('reset'):
            self.injected.clear()
            self.status_writes.clear()
        if 'seed' in spec:
            self.seed = spec['seed']
            self._random.seed(self.seed)

    def pick(self, what: str) -> Any:
        """The fault for one request to `what`, or None."""
        rate = self.status_rate if what == 'status' else self.list_rate
        if rate <= 0 or self._random.random() >= rate:
            return None
        fault = self._random.choice(self.codes)
        key = f'{what}:{fault}'
        self.injected[key] = self.injected.get(key, 0) + 1
        return fault

    def report(self) -> dict:
        return {'status': self.status_rate, 'list': self.list_rate, 'codes': self.codes, 'timeout': self.timeout,
                'injected': dict(self.injected), 'drops': self.drops, 'status_writes': dict(self.status_writes),
                'slow_list': dict(self.slow_list)}


@attrs.define(kw_only=True)
class RolegateEmulator(kmock.KubernetesScaffold):
    """kmock's scaffold serves discovery from `self.resources` (kept in sync with `self.res`) and
    errors; everything under /api/v1/… and /apis/G/V/… is one low-priority kmock reaction, so a test
    can still inject faults with kmock's DSL (`emulator['patch', re.compile('.*/status')] << 500`)."""

    webhook_url: str | None = None
    webhook_ca: str | None = None
    webhook_name: str = 'validate.rolegate.dev'
    webhook_groups: list[str] = attrs.field(factory=lambda: ['rolegate.dev'])
    webhook_timeout: float = 10.0
    webhook_failure_policy: str = 'Fail'
    bookmark_interval: float = 10.0
    verbose: bool = False
    # Every accepted write, in order (see _record_write), for tests about who wrote what.
    writes: list[dict] = attrs.field(factory=list, init=False)

    res: dict[tuple[str, str, str], Res] = attrs.field(factory=dict, init=False)
    objects: dict[tuple, dict] = attrs.field(factory=dict, init=False)  # (store, ns, name) -> object
    stores: dict[tuple, dict[tuple, dict]] = attrs.field(factory=dict, init=False)  # the same, by store
    rv: int = attrs.field(default=0, init=False)
    # The change logs behind watches, one per store (like the real server's watch cache per
    # resource): entries (rv, key, type, object, old object). Unlike kmock's own bus they are
    # replayable, so a watch can resume from any resourceVersion (what kube-rs/client-go do).
    logs: dict[tuple, ChangeLog] = attrs.field(factory=dict, init=False)
    log_size: int = attrs.field(default=10000, init=False)  # per store: keep the last 10 000-20 000
    # The watches waiting for changes, by store: woken only by changes to what they watch.
    waiting: dict[tuple, set[asyncio.Event]] = attrs.field(factory=dict, init=False)
    _fields_of: tuple = attrs.field(default=(None, {}), init=False)
    write_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)
    session: aiohttp.ClientSession | None = attrs.field(default=None, init=False)
    faults: Faults = attrs.field(factory=lambda: Faults(), init=False)  # see "fault injection" below
    # What the API server's owner would watch: status write attempts per object (accepted or not)
    # and Events by type and reason, served at GET /_emulator/stats (POST clears them).
    stats: dict = attrs.field(factory=lambda: {'statusAttempts': {}, 'statusWrites': {}, 'events': {},
                                               'eventUpdates': 0, 'tooLarge': 0}, init=False)
    delegation: dict = attrs.field(factory=lambda: {'tokens': {}, 'grants': []}, init=False)  # see "delegated auth"

    # kmock keeps every request (for assertions) and, to pick a reaction, asks each reaction's view
    # whether it "sees" the current request by iterating the whole history through its filters:
    # O(history x reactions) per request, quadratic over a benchmark. `_handle` below decides the
    # same thing in O(reactions) for the common views (filters and priorities over this root) and
    # keeps kmock's scan only for the views that depend on history (slices, groups, exclusions).
    # Tests only ever look at recent requests, so the history is also bounded.
    history: int = attrs.field(default=2000, init=False)
    _order: tuple[tuple[int, ...], list, list] = attrs.field(factory=lambda: ((), [], []), init=False)
    _predicates: dict[int, tuple] = attrs.field(factory=dict, init=False)  # id(criteria) -> (criteria, predicate)

    def _predicate(self, criteria: Any) -> Any:
        """The criteria themselves, or for a path regex alone (as in our own reactions) the same
        test without kmock's generic matching: `pattern.fullmatch(path)`, what kmock does for it."""
        hit = self._predicates.get(id(criteria))
        if hit is None or hit[0] is not criteria:
            test = criteria
            if type(criteria) is _kmock_filtering.HTTPCriteria and isinstance(criteria.path, re.Pattern) \
                    and isinstance(criteria.path.pattern, str) \
                    and all(getattr(criteria, a.name) is ... for a in attrs.fields(type(criteria)) if a.name != 'path'):
                fullmatch = criteria.path.fullmatch
                test = lambda request: fullmatch(request.url.path) is not None  # noqa: E731
            hit = self._predicates[id(criteria)] = (criteria, test)
        return hit[1]

    def _sees(self, view: Any, request: kmock.Request) -> bool:
        """`request in view`, without the history scan where the view's chain allows it."""
        checks = []
        while True:
            if view is self:
                return all(c(request) for c in reversed(checks))  # the root sees what it received
            if type(view) is _kmock_dsl.Filter:
                checks.append(self._predicate(view.criteria))
            elif type(view) is not _kmock_dsl.Priority:
                return request in view  # history-dependent view: kmock's own (slow) way
            view = view._source

    async def _handle(self, request: Any) -> Any:
        if len(self._requests) > 2 * self.history:
            del self._requests[:-self.history]
        payloads = self._payloads
        ids = tuple(map(id, payloads))
        if self._order[0] != ids:  # kmock's ordering: by priority, stable; recomputed on change
            prios = [tuple(-p for p in payload.priorities) for payload in payloads]
            width = max(map(len, prios), default=0)
            prios = [p + (0,) * (width - len(p)) for p in prios]
            # (the reactions themselves are kept too, so that their ids cannot be reused meanwhile)
            self._order = (ids, list(payloads), [payloads[i] for i in sorted(range(len(payloads)), key=prios.__getitem__)])
        for payload in self._order[2]:
            if len(payload._requests) > 2 * self.history:  # every reaction keeps what it served too
                del payload._requests[:-self.history]
            if not payload._disabled.is_set() and self._sees(payload._source, request):
                try:
                    return await payload(request)
                except _kmock_rendering.ReactionMismatchError:  # either mismatch or depletion
                    payload._disabled.set()
                except NotImplementedError:  # matched, but non-actionable (nothing to respond with)
                    pass
        raise NotImplementedError('Undefined server behaviour: no reaction matching the request is defined.')

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        api = re.compile(r'/api/v1/.+|/apis/[^/]+/[^/]+/.+')
        # A notch above kmock's discovery fallbacks (whose paths never overlap it), so that API
        # requests, nearly all of them, find their reaction first; tests' reactions still come first.
        self.fallback[api] ** 1 << self._serve
        self.fallback['get', re.compile(r'/(healthz|livez|readyz)')] << b'ok'
        self.fallback['get', re.compile(r'/openapi/v3(/.*)?')] << self._serve_openapi
        self.fallback[re.compile(r'/_emulator/faults')] << self._serve_faults
        self.fallback['post', re.compile(r'/_emulator/drop-watches')] << self._serve_drop_watches
        self.fallback['get', re.compile(r'/emulator/writes')] << self._serve_writes
        self.fallback[re.compile(r'/_emulator/stats')] << self._serve_stats
        self._register_delegation()
        for r in BUILTINS:
            self._register(attrs.evolve(r))
        for ns in ('default', 'kube-system', 'kube-public'):
            self._ensure_namespace(ns)

    async def __aexit__(self, *exc: Any) -> None:
        if self.session is not None:
            await self.session.close()
        await super().__aexit__(*exc)

    # ------------------------------------------------------------------ writer recording

    def _record_write(self, request: kmock.Request, r: Res, method: str, sub: str | None, obj: dict) -> None:
        """Note an accepted write: who sent it (User-Agent, which rolegate sets to its replica's
        identity, and fieldManager), what it wrote, when, and for Leases the holder it wrote.
        Served at GET /emulator/writes, so an e2e test can check that only the leader writes status."""
        meta = obj.get('metadata') or {}
        entry = {'time': time.time(), 'method': method, 'resource': r.plural, 'namespace': meta.get('namespace'),
                 'name': meta.get('name'), 'subresource': sub, 'userAgent': request.headers.get('User-Agent', ''),
                 'fieldManager': request.params.get('fieldManager'), 'resourceVersion': meta.get('resourceVersion')}
        if r.plural == 'leases':
            entry['holder'] = (obj.get('spec') or {}).get('holderIdentity')
        self.writes.append(entry)
        if len(self.writes) > 2 * self.log_size:
            del self.writes[:-self.log_size]

    async def _serve_writes(self, request: kmock.Request) -> dict:
        return {'writes': self.writes}

    def _count(self, r: Res, method: str, sub: str | None, ns: str | None, name: str | None, body: Any) -> None:
        """Counts a status write attempt (before it is judged, so refused ones count too) and Events."""
        stats = self.stats
        if sub == 'status' and method in ('PUT', 'PATCH') and name:
            key = f'{r.plural}/{ns}/{name}'
            stats['statusAttempts'][key] = stats['statusAttempts'].get(key, 0) + 1
        elif r.plural == 'events' and method == 'POST' and isinstance(body, dict):
            key = f'{body.get("type", "")}/{body.get("reason", "")}'
            stats['events'][key] = stats['events'].get(key, 0) + 1
        elif r.plural == 'events' and method in ('PATCH', 'PUT'):
            stats['eventUpdates'] += 1  # a series: the same Event object counted again

    async def _serve_stats(self, request: kmock.Request) -> dict:
        if str(request.method.value).upper() == 'POST':
            self.stats.update({'statusAttempts': {}, 'statusWrites': {}, 'events': {}, 'eventUpdates': 0, 'tooLarge': 0})
        return self.stats

    # ------------------------------------------------------------------ discovery & registration

    async def _serve_server_version(self, request: kmock.Request) -> dict:
        return {'major': '1', 'minor': '32', 'gitVersion': 'v1.32.0-rolegate-emulator', 'platform': 'linux/amd64'}

    async def _serve_version(self, request: kmock.Request) -> dict | kmock.Response:
        # kmock's version lists give subresources the parent's shortNames and categories, which makes
        # kubectl's short names ambiguous ("ns" could also match namespaces/status): list them here.
        g, v = request.resource.group, request.resource.version
        found = [r for (rg, rv, _), r in sorted(self.res.items()) if (rg, rv) == (g, v)]
        if not found:
            return self._error(ApiError(404, 'NotFound', 'the server could not find the requested resource'))
        resources = []
        for r in found:
            resources.append({'name': r.plural, 'singularName': r.kind.lower(), 'namespaced': r.namespaced, 'kind': r.kind,
                              'verbs': VERBS, 'shortNames': r.short, 'categories': r.categories})
            if r.status:
                resources.append({'name': f'{r.plural}/status', 'singularName': '', 'namespaced': r.namespaced,
                                  'kind': r.kind, 'verbs': ['get', 'patch', 'update']})
        return {'kind': 'APIResourceList', 'apiVersion': 'v1', 'groupVersion': found[0].gv, 'resources': resources}

    async def _serve_openapi(self, request: kmock.Request) -> dict:
        """Just enough OpenAPI v3 for kubectl's default `--validate=strict`: every kind claims
        server-side field validation, so kubectl skips its client-side schema check (which would
        need /openapi/v2) and sends `?fieldValidation=Strict`, which the emulator ignores."""
        gvs = {f'api/{r.version}' if not r.group else f'apis/{r.gv}' for r in self.res.values()}
        gv = request.url.path.removeprefix('/openapi/v3').strip('/')
        if not gv:
            return {'paths': {p: {'serverRelativeURL': f'/openapi/v3/{p}?hash={self.rv}'} for p in sorted(gvs)}}
        paths = {}
        for r in self.res.values():
            if (f'api/{r.version}' if not r.group else f'apis/{r.gv}') == gv:
                ns = '/namespaces/{namespace}' if r.namespaced else ''
                paths[f'/{gv}{ns}/{r.plural}/{{name}}'] = {'patch': {
                    'x-kubernetes-group-version-kind': {'group': r.group, 'version': r.version, 'kind': r.kind},
                    'parameters': [{'name': 'fieldValidation', 'in': 'query', 'schema': {'type': 'string'}}],
                    'responses': {'200': {'description': 'OK'}}}}
        return {'openapi': '3.0.0', 'info': {'title': 'rolegate emulator', 'version': 'v1'}, 'paths': paths}

    def _register(self, r: Res) -> None:
        self.res[(r.group, r.version, r.plural)] = r
        self.resources[kmock.resource(r.group, r.version, r.plural)] = kmock.ResourceInfo(
            kind=r.kind, singular=r.kind.lower(), namespaced=r.namespaced, verbs=VERBS,
            shortnames=r.short, categories=r.categories, subresources=['status'] if r.status else [])

    def _unregister(self, group: str, plural: str, keep: set[str] = frozenset()) -> None:
        for (g, v, p) in list(self.res):
            if (g, p) == (group, plural) and v not in keep:
                del self.res[(g, v, p)]
                del self.resources[kmock.resource(g, v, p)]

    def _crd_written(self, crd: dict) -> None:
        """Serve (or stop serving) a CRD's versions when it is stored; fill in its status."""
        spec, names = crd['spec'], crd['spec']['names']
        versions = {v['name']: v for v in spec.get('versions', []) if v.get('served', True)}
        self._unregister(spec['group'], names['plural'], keep=set(versions))
        for name, v in versions.items():
            self._register(Res(
                spec['group'], name, names['plural'], names['kind'], spec.get('scope') == 'Namespaced',
                names.get('shortNames', []), names.get('categories', []),
                status='status' in (v.get('subresources') or {}), generation=True, builtin=False,
                columns=v.get('additionalPrinterColumns')))

    def _crd_status(self, crd: dict) -> dict:
        ts = now()
        return {'acceptedNames': crd['spec']['names'],
                'storedVersions': [v['name'] for v in crd['spec'].get('versions', []) if v.get('storage')],
                'conditions': [{'type': t, 'status': 'True', 'reason': r, 'message': m, 'lastTransitionTime': ts}
                               for t, r, m in (('NamesAccepted', 'NoConflicts', 'no conflicts found'),
                                               ('Established', 'InitialNamesAccepted',
                                                'the initial names have been accepted'))]}

    def load_crds(self, path: str | pathlib.Path) -> None:
        """Pre-register the CRDs in a file or directory (e.g. `crds/`) before serving."""
        path = pathlib.Path(path)
        files = sorted(path.glob('*.y*ml')) + sorted(path.glob('*.json')) if path.is_dir() else [path]
        crd_res = self.res[('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')]
        for f in files:
            for doc in _split_objects(f.read_text()):
                if doc.get('kind') == 'CustomResourceDefinition':
                    self._check_crd(doc)
                    obj = self._new_object(crd_res, None, doc)
                    obj['status'] = self._crd_status(obj)
                    self._commit((crd_res.store, None, obj['metadata']['name']), 'ADDED', obj, None)

    # ------------------------------------------------------------------ storage & change log

    def _commit(self, key: tuple, kind: str, obj: dict, old: dict | None) -> dict:
        """Store a new object version and log the change for watchers.

        Stored objects are never mutated afterwards, so versions may share what did not change
        between them: whoever changes an object changes a copy of what it changes (see jcopy).
        Here that is the top level and metadata (the resourceVersion)."""
        if kind != 'DELETED' and len(json.dumps(obj, separators=(',', ':'))) > ETCD_MAX_REQUEST_BYTES:
            self.stats['tooLarge'] += 1
            raise ApiError(500, 'InternalError', 'etcdserver: request is too large')
        self.rv += 1
        obj = {**obj, 'metadata': {**obj['metadata'], 'resourceVersion': str(self.rv)}}
        store = self.stores.setdefault(key[0], {})
        if kind == 'DELETED':
            self.objects.pop(key, None)
            store.pop(key, None)
        else:
            self.objects[key] = obj
            store[key] = obj
        log = self.logs.get(key[0]) or self.logs.setdefault(key[0], ChangeLog())
        log.entries.append((self.rv, key, kind, obj, old))
        if len(log.entries) > 2 * self.log_size:  # keep memory bounded; older resourceVersions become "too old"
            log.floor = log.entries[-self.log_size - 1][0]
            log.base += len(log.entries) - self.log_size
            del log.entries[:-self.log_size]
        for wake in self.waiting.get(key[0], ()):
            wake.set()
        if key[0] == ('apiextensions.k8s.io', 'customresourcedefinitions'):
            if kind == 'DELETED':
                self._unregister(obj['spec']['group'], obj['spec']['names']['plural'])
                self._cascade(lambda k: k[0] == (obj['spec']['group'], obj['spec']['names']['plural']), force=True)
            else:
                self._crd_written(obj)
        if key[0] == ('', 'namespaces') and kind == 'DELETED':
            self._cascade(lambda k: k[1] == key[2])
        return obj

    def _cascade(self, pick: Any, force: bool = False) -> None:
        """Delete what a deleted Namespace contained (finalizers still hold objects back) or a
        deleted CRD served (all gone at once: its resource no longer exists)."""
        for key in [k for k in self.objects if pick(k)]:
            obj = self.objects[key]
            if obj['metadata'].get('finalizers') and not force:
                if not obj['metadata'].get('deletionTimestamp'):
                    self._commit(key, 'MODIFIED', self._mark_deleted(obj), obj)
            else:
                self._commit(key, 'DELETED', obj, obj)

    @staticmethod
    def _mark_deleted(obj: dict) -> dict:
        obj = jcopy(obj)
        obj['metadata'].update(deletionTimestamp=now(), deletionGracePeriodSeconds=0)
        return obj

    def _ensure_namespace(self, ns: str) -> None:
        if ns and (('', 'namespaces'), None, ns) not in self.objects:
            r = self.res[('', 'v1', 'namespaces')]
            obj = self._new_object(r, None, {'metadata': {'name': ns}})
            self._commit((r.store, None, ns), 'ADDED', obj, None)

    def _new_object(self, r: Res, ns: str | None, body: dict) -> dict:
        obj = jcopy(body)
        obj['apiVersion'], obj['kind'] = r.gv, r.kind
        meta = obj.setdefault('metadata', {})
        for k in ('resourceVersion', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'selfLink'):
            meta.pop(k, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now())
        if r.namespaced:
            meta['namespace'] = ns
        else:
            meta.pop('namespace', None)
        if r.generation:
            meta['generation'] = 1
        if r.plural == 'namespaces' and not r.group:
            meta.setdefault('labels', {})['kubernetes.io/metadata.name'] = meta['name']
            obj.update(spec={'finalizers': ['kubernetes']}, status={'phase': 'Active'})
        if r.status and r.plural != 'namespaces':
            obj.pop('status', None)  # status is written through /status only
        return obj

    def _view(self, r: Res, obj: dict) -> dict:
        """The stored object as the requested group/version shows it. A shallow copy: it shares
        everything below the top level with the stored object, so it is only read (serialised,
        matched) or copied before changes (merge_patch and jsonpatch copy what they change)."""
        out = {EVENT_FIELDS.get(k, k): v for k, v in obj.items()} if r.event_view else dict(obj)
        out['apiVersion'], out['kind'] = r.gv, r.kind
        return out

    def _unview(self, r: Res, obj: dict) -> dict:
        if r.event_view:
            back = {v: k for k, v in EVENT_FIELDS.items()}
            obj = {back.get(k, k): v for k, v in obj.items()}
        return obj

    # ------------------------------------------------------------------ request dispatch

    async def _serve(self, request: kmock.Request) -> kmock.Response:
        # (kmock calls inspect.signature() on every request: see the __signature__ set below)
        warnings: list[str] = []
        try:
            res = request.resource
            r = self.res.get((res.group, res.version, res.plural)) if res else None
            if r is None:
                raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
            ns, name, sub = request.namespace, request.name, request.subresource
            method = str(request.method.value).upper()
            all_namespaces = r.namespaced and ns is None and name is None and method == 'GET'  # list/watch -A
            if (r.namespaced and ns is None and not all_namespaces) or (not r.namespaced and ns is not None) \
                    or sub not in (None, 'status') or (sub == 'status' and not r.status):
                raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
            params = request.params
            label_match(params.get('labelSelector'), {})  # reject malformed selectors up front
            field_match(params.get('fieldSelector'), {})
            watching = method == 'GET' and params.get('watch') in ('true', '1')
            await self._inject_fault(request, method, sub, name, watching)
            if watching:
                rv = params.get('resourceVersion') or ''
                if rv and not rv.isdigit():
                    raise ApiError(400, 'BadRequest', f'invalid resource version: {rv!r}')
                return self._respond(200, self._watch(request, r, ns, name))
            if method == 'GET':
                return self._respond(200, self._get(request, r, ns, name))
            body = self._body(request)
            self._count(r, method, sub, ns, name, body)
            async with self.write_lock:  # writes are serialised, including the webhook call-out
                if method == 'POST' and name is None:
                    code, obj = await self._create(request, r, ns, body, warnings)
                elif method == 'PUT' and name:
                    code, obj = await self._update(request, r, ns, name, sub, body, 'PUT', warnings)
                elif method == 'PATCH' and name:
                    code, obj = await self._update(request, r, ns, name, sub, body, 'PATCH', warnings)
                elif method == 'DELETE' and name:
                    code, obj = await self._delete(request, r, ns, name, body or {}, warnings)
                else:
                    raise ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource')
                self._record_write(request, r, method, sub, obj)
                if sub == 'status':
                    self.stats['statusWrites'][r.plural] = self.stats['statusWrites'].get(r.plural, 0) + 1
            return self._respond(code, self._view(r, obj), warnings)
        except ApiError as e:
            return self._error(e, warnings)
        finally:
            if self.verbose:
                print(f'{request.method.value} {request.url.path_qs}', file=sys.stderr, flush=True)

    _serve.__signature__ = inspect.signature(_serve)  # type: ignore[attr-defined]  # computed once

    def _error(self, e: ApiError, warnings: list[str] = ()) -> kmock.Response:
        status = {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure',
                  'message': e.message, 'reason': e.reason, 'code': e.code}
        if e.details:
            status['details'] = e.details
        return self._respond(e.code, status, list(warnings) + (e.warnings or []))

    @staticmethod
    def _respond(code: int, payload: Any, warnings: list[str] = ()) -> kmock.Response:
        # Warnings as one RFC 7234 header (client-go splits comma-separated values); kubectl prints
        # "Warning: <text>". NB: always name the same headers: kmock merges a reaction's headers.
        text = ', '.join('299 - "%s"' % w.replace('\\', '\\\\').replace('"', '\\"') for w in warnings)
        return kmock.Response(status=code, payload=payload,
                              headers={'Content-Type': 'application/json', 'Warning': text or None})

    @staticmethod
    def _body(request: kmock.Request) -> Any:
        if not request.body:
            return None
        if request.headers.get('Content-Type', '').startswith('application/vnd.kubernetes.protobuf'):
            return decode_protobuf(request.body)
        try:
            return json.loads(request.body)
        except ValueError:
            try:  # server-side apply may send YAML
                return yaml.safe_load(request.body)
            except yaml.YAMLError as e:
                raise ApiError(400, 'BadRequest', f'the body of the request could not be decoded: {e}')

    def _key(self, r: Res, ns: str | None, name: str) -> tuple:
        return (r.store, ns if r.namespaced else None, name)

    def _not_found(self, r: Res, name: str) -> ApiError:
        return ApiError(404, 'NotFound', f'{r.qualified} "{name}" not found',
                        {'name': name, 'group': r.group, 'kind': r.plural})

    def _conflict(self, r: Res, name: str, why: str) -> ApiError:
        return ApiError(409, 'Conflict', f'Operation cannot be fulfilled on {r.qualified} "{name}": {why}',
                        {'name': name, 'group': r.group, 'kind': r.plural})

    # ------------------------------------------------------------------ reads

    def _matches(self, request: kmock.Request, r: Res, ns: str | None, name: str | None, obj: dict | None) -> bool:
        if obj is None or (ns is not None and obj['metadata'].get('namespace') != ns):
            return False
        if name is not None and obj['metadata']['name'] != name:
            return False
        fields = request.params.get('fieldSelector')
        return (label_match(request.params.get('labelSelector'), obj['metadata'].get('labels') or {})
                and (not fields or field_match(fields, self._view(r, obj))))

    def _get(self, request: kmock.Request, r: Res, ns: str | None, name: str | None) -> dict:
        if name is not None:
            obj = self.objects.get(self._key(r, ns, name))
            if obj is None:
                raise self._not_found(r, name)
            return self._table(request, r, [obj]) if self._wants_table(request) else self._view(r, obj)
        items = sorted((o for o in self.stores.get(r.store, {}).values() if self._matches(request, r, ns, None, o)),
                       key=lambda o: (o['metadata'].get('namespace') or '', o['metadata']['name']))
        meta: dict[str, Any] = {'resourceVersion': str(self.rv)}
        limit = int(request.params.get('limit') or 0)
        start = int(json.loads(base64.b64decode(request.params['continue']))['offset']) if request.params.get('continue') else 0
        items = items[start:]
        if limit and len(items) > limit:
            meta['continue'] = base64.b64encode(json.dumps({'offset': start + limit}).encode()).decode()
            meta['remainingItemCount'] = len(items) - limit
            items = items[:limit]
        if self._wants_table(request):
            return self._table(request, r, items, meta)
        return {'apiVersion': r.gv, 'kind': f'{r.kind}List', 'metadata': meta, 'items': [self._view(r, o) for o in items]}

    @staticmethod
    def _wants_table(request: kmock.Request) -> bool:
        return 'as=Table' in request.headers.get('Accept', '')

    def _table(self, request: kmock.Request, r: Res, objs: list[dict], meta: dict | None = None,
               with_columns: bool = True) -> dict:
        """Server-side printing (what `kubectl get` shows): Name + printer columns (or Age)."""
        cols = r.columns or [{'name': 'Age', 'type': 'date', 'jsonPath': '.metadata.creationTimestamp'}]
        if r.plural == 'namespaces' and not r.group:
            cols = [{'name': 'Status', 'type': 'string', 'jsonPath': '.status.phase'}] + cols
        include = request.params.get('includeObject', 'PartialObjectMetadata')
        rows = []
        for obj in objs:
            view = self._view(r, obj)
            cells: list[Any] = [view['metadata']['name']]
            for c in cols:
                vals = jsonpath(view, c['jsonPath'])
                v = vals[0] if len(vals) == 1 else ','.join(map(str, vals)) if vals else None
                cells.append(_age(v) if c.get('type') == 'date' else v)
            row: dict[str, Any] = {'cells': cells}
            if include == 'Object':
                row['object'] = view
            elif include != 'None':
                row['object'] = {'kind': 'PartialObjectMetadata', 'apiVersion': 'meta.k8s.io/v1', 'metadata': view['metadata']}
            rows.append(row)
        defs = [{'name': 'Name', 'type': 'string', 'format': 'name', 'description': 'Name', 'priority': 0}] + [
            {'name': c['name'], 'type': 'string' if c.get('type') == 'date' else c.get('type', 'string'),
             'format': c.get('format', ''), 'description': c.get('description', ''), 'priority': c.get('priority', 0)}
            for c in cols]
        return {'kind': 'Table', 'apiVersion': 'meta.k8s.io/v1', 'metadata': meta or {'resourceVersion': str(self.rv)},
                'columnDefinitions': defs if with_columns else [], 'rows': rows}

    async def _watch(self, request: kmock.Request, r: Res, ns: str | None, name: str | None) -> AsyncIterator[Any]:
        """Newline-delimited JSON watch events after `resourceVersion` (or all objects first).
        Events go out as bytes, all those ready at once in one chunk (one socket write)."""
        yield b''  # make kmock send the response headers now, before the first event
        params = request.params
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(params.get('timeoutSeconds') or 1800)
        bookmarks = params.get('allowWatchBookmarks') in ('true', '1')
        table = self._wants_table(request)
        first = True

        def event(kind: str, obj: dict) -> bytes:
            nonlocal first
            if table:
                out = self._table(request, r, [obj], with_columns=first)
                first = False
            else:
                out = self._view(r, obj)
            return json.dumps({'type': kind, 'object': out}).encode() + b'\n'

        def bookmark(initial_end: bool = False) -> bytes:
            meta: dict[str, Any] = {'resourceVersion': str(self.rv)}
            if initial_end:
                meta['annotations'] = {'k8s.io/initial-events-end': 'true'}
            return json.dumps({'type': 'BOOKMARK', 'object': {'apiVersion': r.gv, 'kind': r.kind, 'metadata': meta}}).encode() + b'\n'

        log = self.logs.setdefault(r.store, ChangeLog())
        wake = asyncio.Event()
        self.waiting.setdefault(r.store, set()).add(wake)
        try:
            rv = params.get('resourceVersion') or ''
            initial = params.get('sendInitialEvents') == 'true' or rv in ('', '0')
            if initial:
                pos = log.end
                chunk = []
                for obj in sorted(self.stores.get(r.store, {}).values(), key=lambda o: int(o['metadata']['resourceVersion'])):
                    if self._matches(request, r, ns, name, obj):
                        chunk.append(event('ADDED', obj))
                    if len(chunk) >= 1000:
                        yield b''.join(chunk)
                        chunk = []
                if params.get('sendInitialEvents') == 'true' and bookmarks:
                    chunk.append(bookmark(initial_end=True))
                if chunk:
                    yield b''.join(chunk)
            else:
                pos = log.after(int(rv))
            next_bookmark = loop.time() + self.bookmark_interval
            drops = self.faults.drops
            while True:
                wake.clear()
                if self.faults.drops != drops:  # a test dropped every watch: end this one now
                    return
                if pos < log.base:  # compacted away: the client must list again
                    yield json.dumps({'type': 'ERROR', 'object': {
                        'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure',
                        'message': f'too old resource version: {rv}', 'reason': 'Expired', 'code': 410}}).encode() + b'\n'
                    return
                chunk = []
                while pos < log.end and len(chunk) < 1000:
                    _, key, kind, obj, old = log.entries[pos - log.base]
                    pos += 1
                    now_in, was_in = self._matches(request, r, ns, name, obj), self._matches(request, r, ns, name, old)
                    if kind == 'MODIFIED' and now_in != was_in:  # moved in/out of the selection
                        kind = 'ADDED' if now_in else 'DELETED'
                    if (now_in if kind != 'DELETED' else (was_in or now_in)):
                        chunk.append(event(kind, obj))
                if chunk:
                    yield b''.join(chunk)
                if pos < log.end:
                    continue
                timeout = min(deadline, next_bookmark if bookmarks else deadline) - loop.time()
                try:
                    async with asyncio.timeout(max(timeout, 0)):
                        await wake.wait()
                except TimeoutError:
                    if loop.time() >= deadline:
                        return
                    next_bookmark = loop.time() + self.bookmark_interval
                    yield bookmark()
        finally:
            self.waiting[r.store].discard(wake)

    # ------------------------------------------------------------------ fault injection
    # A test sets faults with `POST /_emulator/faults` (JSON, see `Faults`), reads what was injected
    # with `GET /_emulator/faults`, and ends every watch with `POST /_emulator/drop-watches`.

    async def _inject_fault(self, request: kmock.Request, method: str, sub: str | None, name: str | None,
                            watching: bool) -> None:
        """Fail this request as the faults ask: raises the ApiError a real server would send.
        Clients whose User-Agent starts with one of `spare` (kubectl, by default: the test's own
        eyes) are never failed."""
        what = 'status' if sub == 'status' and method in ('PUT', 'PATCH') else \
            'list' if method == 'GET' and name is None and not watching else None
        if what is None:
            return
        agent = request.headers.get('User-Agent', '')
        if any(agent.startswith(prefix) for prefix in self.faults.spare):
            return
        if what == 'status' and name:
            self.faults.status_writes[name] = self.faults.status_writes.get(name, 0) + 1
            if self.faults.delay > 0:  # a slow server: the write is served, late
                await asyncio.sleep(self.faults.delay)
        slow = self.faults.slow_list
        if what == 'list' and slow.get('count', 0) > 0 and request.resource and request.resource.plural == slow['resource']:
            slow['count'] -= 1  # a slow list: served, late (other requests go on meanwhile)
            key = f'list:slow:{slow["resource"]}'
            self.faults.injected[key] = self.faults.injected.get(key, 0) + 1
            await asyncio.sleep(slow['delay'])
        fault = self.faults.pick(what)
        if fault is None:
            return
        if fault == 'timeout':  # the apiserver's own request timeout: a slow answer, then 504
            await asyncio.sleep(self.faults.timeout)
            raise ApiError(504, 'Timeout', 'the server was unable to return a response in the time allotted, '
                                           'but may still be processing the request')
        if fault == 409:
            raise ApiError(409, 'Conflict', 'Operation cannot be fulfilled: the object has been modified; '
                                            'please apply your changes to the latest version and try again')
        raise ApiError(int(fault), 'InternalError', 'Internal error occurred: injected fault')

    async def _serve_faults(self, request: kmock.Request) -> dict:
        if str(request.method.value).upper() == 'POST':
            self.faults.configure(self._body(request) or {})
        return self.faults.report()

    async def _serve_drop_watches(self, request: kmock.Request) -> dict:
        """Ends every open watch and compacts every change log, as an apiserver restart does: a
        client that resumes from the resourceVersion it had gets `410 Gone` and must list again."""
        self.rv += 1  # lists from now on carry this version, at the new floor: their watches resume
        for log in self.logs.values():
            log.floor = self.rv
            log.base = log.end
            log.entries.clear()
        self.faults.drops += 1
        for wakes in self.waiting.values():
            for wake in wakes:
                wake.set()
        return self.faults.report()

    # ------------------------------------------------------------------ delegated auth (issue 26)
    # TokenReview and SubjectAccessReview, as the real server answers a delegating service
    # (kube-rbac-proxy, metrics-server, rolegate's decision API), from a small static table that a
    # test sets with POST /_emulator/delegation:
    #   {"tokens": {"<token>": {"username": "...", "groups": ["..."]}},
    #    "grants": [{"user" or "group": "...", "verb": "create", "group": "rolegate.dev",
    #                "resource": "checks", "namespace": "..." (absent: every namespace)}]}
    # A token not in the table is not authenticated; a review is allowed when a grant matches.

    def _register_delegation(self) -> None:
        # Above the generic API reaction (priority 1), which would 404 these unregistered resources.
        self.fallback['post', re.compile(r'/apis/authentication\.k8s\.io/v1/tokenreviews')] ** 2 << self._serve_token_review
        self.fallback['post', re.compile(r'/apis/authorization\.k8s\.io/v1/subjectaccessreviews')] ** 2 \
            << self._serve_access_review
        self.fallback[re.compile(r'/_emulator/delegation')] << self._serve_delegation

    async def _serve_delegation(self, request: kmock.Request) -> dict:
        if str(request.method.value).upper() == 'POST':
            body = self._body(request) or {}
            self.delegation = {'tokens': dict(body.get('tokens') or {}), 'grants': list(body.get('grants') or [])}
        return self.delegation

    async def _serve_token_review(self, request: kmock.Request) -> kmock.Response:
        review = self._body(request) or {}
        user = self.delegation['tokens'].get((review.get('spec') or {}).get('token') or '')
        status = ({'authenticated': True, 'user': {'username': user['username'], 'uid': user.get('uid', ''),
                                                   'groups': list(user.get('groups') or []) + ['system:authenticated']}}
                  if user else {'authenticated': False, 'error': 'invalid bearer token'})
        return self._respond(201, {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'TokenReview',
                                   'metadata': {}, 'spec': review.get('spec') or {}, 'status': status})

    async def _serve_access_review(self, request: kmock.Request) -> kmock.Response:
        review = self._body(request) or {}
        spec = review.get('spec') or {}
        attrs_ = spec.get('resourceAttributes') or {}
        groups = set(spec.get('groups') or [])

        def matches(g: dict) -> bool:
            who = g.get('user') == spec.get('user') or (g.get('group') in groups)
            return who and all(g.get(k, attrs_.get(k)) == attrs_.get(k) for k in ('verb', 'group', 'resource', 'namespace'))

        grant = next((g for g in self.delegation['grants'] if matches(g)), None)
        status = {'allowed': grant is not None}
        if grant is None:
            status['reason'] = 'no grant in the emulator\'s delegation table'
        return self._respond(201, {'apiVersion': 'authorization.k8s.io/v1', 'kind': 'SubjectAccessReview',
                                   'metadata': {}, 'spec': spec, 'status': status})

    # ------------------------------------------------------------------ writes

    async def _create(self, request: kmock.Request, r: Res, ns: str | None, body: Any,
                      warnings: list[str]) -> tuple[int, dict]:
        if not isinstance(body, dict):
            raise ApiError(400, 'BadRequest', 'the body of the request was not a JSON object')
        self._check_kind(r, body)
        body = self._unview(r, body)
        meta = body.setdefault('metadata', {})
        if not meta.get('name') and meta.get('generateName'):
            meta['name'] = meta['generateName'] + ''.join(random.choices(string.ascii_lowercase + string.digits, k=5))
        name = meta.get('name')
        if not name:
            raise ApiError(422, 'Invalid', f'{r.kind} "" is invalid: metadata.name: Required value: name or generateName is required')
        if r.namespaced and meta.get('namespace') and ns and meta['namespace'] != ns:
            raise ApiError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request')
        return 201, await self._store_new(request, r, ns, body, warnings)

    async def _store_new(self, request: kmock.Request, r: Res, ns: str | None, body: dict,
                         warnings: list[str], applied: dict | None = None) -> dict:
        name = body['metadata']['name']
        key = self._key(r, ns, name)
        if key in self.objects:
            raise ApiError(409, 'AlreadyExists', f'{r.qualified} "{name}" already exists',
                           {'name': name, 'group': r.group, 'kind': r.plural})
        if r.plural == 'customresourcedefinitions':
            self._check_crd(body)
        obj = self._new_object(r, ns, body)
        self._manage(request, obj, 'Apply' if applied is not None else 'Update', None, applied)
        if r.plural == 'customresourcedefinitions':
            obj['status'] = self._crd_status(obj)
        dry = self._dry_run(request)
        kind_opts = 'PatchOptions' if applied is not None else 'CreateOptions'
        warnings += await self._admit(request, r, 'CREATE', ns, name, obj, None, dry, kind_opts)
        if dry:
            return obj
        if r.namespaced:
            self._ensure_namespace(ns)
        return self._commit(key, 'ADDED', obj, None)

    async def _update(self, request: kmock.Request, r: Res, ns: str | None, name: str, sub: str | None,
                      body: Any, method: str, warnings: list[str]) -> tuple[int, dict]:
        key = self._key(r, ns, name)
        cur = self.objects.get(key)
        ctype = request.headers.get('Content-Type', 'application/json').split(';')[0].strip()
        applied = None
        if method == 'PUT':
            if not isinstance(body, dict):
                raise ApiError(400, 'BadRequest', 'the body of the request was not a JSON object')
            self._check_kind(r, body)
            if cur is None:
                raise self._not_found(r, name)
            new = self._unview(r, jcopy(body))
            rv = (body.get('metadata') or {}).get('resourceVersion')
            if not rv and not r.builtin:  # custom resources allow no unconditional update
                raise ApiError(422, 'Invalid', f'{r.kind}.{r.group} "{name}" is invalid: metadata.resourceVersion: '
                                               'Invalid value: 0x0: must be specified for an update')
        elif ctype == 'application/apply-patch+yaml':
            if not isinstance(body, dict):
                raise ApiError(400, 'BadRequest', 'the body of the request was not a JSON or YAML object')
            if not request.params.get('fieldManager'):
                raise ApiError(400, 'BadRequest', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                                  'is required for apply patch')
            self._check_kind(r, body)
            applied = self._unview(r, body)
            applied_name = (applied.get('metadata') or {}).get('name')
            if applied_name != name and (applied_name or cur is None):  # may be left out on updates
                raise ApiError(400, 'BadRequest', f'the name of the object ({applied_name or ""}) does not match '
                                                  f'the name on the URL ({name})')
            if cur is None:  # server-side apply creates
                if sub:
                    raise self._not_found(r, name)
                return 201, await self._store_new(request, r, ns, jcopy(applied), warnings, applied)
            new = self._apply(cur, applied, request.params['fieldManager'], sub)
            rv = (applied.get('metadata') or {}).get('resourceVersion')
        else:
            if cur is None:
                raise self._not_found(r, name)
            view = self._view(r, cur)
            if ctype == 'application/merge-patch+json':
                new = merge_patch(view, body)
            elif ctype == 'application/json-patch+json':
                try:
                    new = jsonpatch.apply_patch(view, body)
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as e:
                    raise ApiError(422, 'Invalid', f'the server rejected our request due to an error in our request: {e}')
            elif ctype == 'application/strategic-merge-patch+json' and r.builtin:
                new = merge_patch(view, _strip_directives(body))
            else:  # the real server has no strategic merge patch for custom resources either
                raise ApiError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - accepted media '
                                                            'types include: application/json-patch+json, application/merge-patch+json, '
                                                            'application/apply-patch+yaml')
            new = self._unview(r, new)
            rv = (body.get('metadata') or {}).get('resourceVersion') if isinstance(body, dict) else None
        if rv and rv != cur['metadata']['resourceVersion']:
            raise self._conflict(r, name, 'the object has been modified; please apply your changes to the latest version and try again')
        return 200, await self._store_update(request, r, key, cur, new, sub, warnings, applied,
                                             'PatchOptions' if method == 'PATCH' else 'UpdateOptions')

    def _apply(self, cur: dict, applied: dict, manager: str, sub: str | None) -> dict:
        """Server-side apply, approximated: fields this manager applied before but no longer applies
        are removed (unless another applier owns them), then the applied object is merged in
        (maps merge, lists are replaced). No conflict detection: as if force=true."""
        new = dict(cur)  # copied on write below: the maps on the way to a removed field
        entries = cur['metadata'].get('managedFields') or []
        mine = next((e for e in entries if e['manager'] == manager and e['operation'] == 'Apply'
                     and e.get('subresource') == sub), None)
        others = set().union(*(_leaf_paths(e.get('fieldsV1', {})) for e in entries if e is not mine and e['operation'] == 'Apply'))
        keep = _leaf_paths(self._fields(applied))
        for path in (_leaf_paths(mine.get('fieldsV1', {})) if mine else set()) - keep - others:
            if any(path[:i] in keep for i in range(1, len(path))):
                continue
            parent = new
            for part in path[:-1]:
                child = parent.get(part)
                if not isinstance(child, dict):
                    break
                parent[part] = parent = dict(child)
            else:
                parent.pop(path[-1], None)
        body = {k: v for k, v in applied.items() if k not in ('apiVersion', 'kind')}
        meta = {k: v for k, v in (body.pop('metadata', None) or {}).items() if k in APPLIED_META}

        def merge(a: Any, b: Any) -> Any:
            if isinstance(a, dict) and isinstance(b, dict):
                return {**a, **{k: merge(a.get(k), v) for k, v in b.items()}}
            return jcopy(b)

        new = merge(new, body)
        new['metadata'] = merge(new['metadata'], meta)
        return new

    def _fields(self, applied: dict) -> dict:
        """fields_v1(applied), computed once per apply (both _apply and _manage need it)."""
        if self._fields_of[0] is not applied:
            self._fields_of = (applied, fields_v1(applied))
        return self._fields_of[1]

    def _manage(self, request: kmock.Request, obj: dict, operation: str, sub: str | None, applied: dict | None) -> None:
        """Record the writer in metadata.managedFields (FieldsV1 only for appliers)."""
        manager = request.params.get('fieldManager') or request.headers.get('User-Agent', 'unknown').split('/')[0]
        entries = [e for e in obj['metadata'].get('managedFields') or []
                   if (e['manager'], e['operation'], e.get('subresource')) != (manager, operation, sub)]
        entry = {'manager': manager, 'operation': operation, 'apiVersion': obj['apiVersion'], 'time': now(),
                 'fieldsType': 'FieldsV1', 'fieldsV1': self._fields(applied) if applied is not None else {}}
        if sub:
            entry['subresource'] = sub
        obj['metadata']['managedFields'] = entries + [entry]

    async def _store_update(self, request: kmock.Request, r: Res, key: tuple, cur: dict, new: dict, sub: str | None,
                            warnings: list[str], applied: dict | None, options_kind: str) -> dict:
        name = cur['metadata']['name']
        if new.get('metadata', {}).get('name', name) != name:
            raise ApiError(400, 'BadRequest', 'the name of the object does not match the name on the URL')
        if sub == 'status':  # only .status changes through /status: the top level and metadata
            obj = {**cur, 'metadata': {**cur['metadata']}}
            if 'status' in new:
                obj['status'] = new['status']
            else:
                obj.pop('status', None)
        else:
            obj = jcopy(new)
            meta = obj.setdefault('metadata', {})
            for k in ('uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'namespace',
                      'managedFields'):
                if k in cur['metadata']:
                    meta[k] = cur['metadata'][k]
                else:
                    meta.pop(k, None)
            if r.status:  # writes to the main resource ignore .status
                if 'status' in cur:
                    obj['status'] = cur['status']
                else:
                    obj.pop('status', None)
            if cur['metadata'].get('deletionTimestamp') and set(meta.get('finalizers') or []) - set(cur['metadata'].get('finalizers') or []):
                raise ApiError(422, 'Invalid', f'{r.kind} "{name}" is invalid: metadata.finalizers: Forbidden: '
                                               'no new finalizers can be added if the object is being deleted')
            if r.plural == 'customresourcedefinitions':
                self._check_crd(obj)
                obj['status'] = self._crd_status(obj)
        obj['apiVersion'], obj['kind'] = r.gv, r.kind
        strip = lambda o, drop: {k: v for k, v in o.items() if k not in drop}  # noqa: E731
        spec_of = lambda o: strip(o, ('metadata', 'apiVersion', 'kind') + (('status',) if r.status else ()))  # noqa: E731
        if r.generation and spec_of(obj) != spec_of(cur):
            obj['metadata']['generation'] = cur['metadata'].get('generation', 1) + 1
        self._manage(request, obj, 'Apply' if applied is not None else 'Update', sub, applied)
        if not sub:
            warnings += await self._admit(request, r, 'UPDATE', key[1], name, obj, cur, self._dry_run(request), options_kind)
        same = lambda o: strip({**o, 'metadata': strip(o['metadata'], ('resourceVersion', 'managedFields'))}, ('apiVersion',))  # noqa: E731
        if self._dry_run(request) or same(obj) == same(cur):
            return obj if self._dry_run(request) else cur  # a no-op write: no new resourceVersion, no event
        if obj['metadata'].get('deletionTimestamp') and not obj['metadata'].get('finalizers'):
            return self._commit(key, 'DELETED', obj, cur)  # the last finalizer is gone
        return self._commit(key, 'MODIFIED', obj, cur)

    async def _delete(self, request: kmock.Request, r: Res, ns: str | None, name: str, options: dict,
                      warnings: list[str]) -> tuple[int, dict]:
        key = self._key(r, ns, name)
        cur = self.objects.get(key)
        if cur is None:
            raise self._not_found(r, name)
        pre = options.get('preconditions') or {}
        if pre.get('uid') and pre['uid'] != cur['metadata']['uid']:
            raise self._conflict(r, name, f'Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: {cur["metadata"]["uid"]}')
        if pre.get('resourceVersion') and pre['resourceVersion'] != cur['metadata']['resourceVersion']:
            raise self._conflict(r, name, 'the object has been modified; please apply your changes to the latest version and try again')
        dry = self._dry_run(request) or 'All' in (options.get('dryRun') or [])
        warnings += await self._admit(request, r, 'DELETE', key[1], name, None, cur, dry,
                                      'DeleteOptions', {'apiVersion': 'meta.k8s.io/v1', 'kind': 'DeleteOptions', **options})
        if cur['metadata'].get('finalizers'):
            if cur['metadata'].get('deletionTimestamp') or dry:
                return 200, cur if not dry else self._mark_deleted(cur)
            return 200, self._commit(key, 'MODIFIED', self._mark_deleted(cur), cur)
        return 200, cur if dry else self._commit(key, 'DELETED', cur, cur)

    @staticmethod
    def _dry_run(request: kmock.Request) -> bool:
        raw = request._raw_request  # kmock keeps one value per query key; dryRun may repeat
        values = raw.query.getall('dryRun', []) if raw is not None else [request.params.get('dryRun')]
        return 'All' in values

    @staticmethod
    def _check_kind(r: Res, body: dict) -> None:
        kind, api = body.get('kind'), body.get('apiVersion')
        if (kind and kind != r.kind) or (api and api.split('/')[0] != (r.group or api.split('/')[0])):
            raise ApiError(400, 'BadRequest', f'the API version in the data ({api}) does not match the expected API version ({r.gv})'
                           if kind == r.kind else f'the kind in the data ({kind}) does not match the expected kind ({r.kind})')

    def _check_crd(self, crd: dict) -> None:
        spec = crd.get('spec') or {}
        names = spec.get('names') or {}
        name = crd['metadata']['name']
        if f'{names.get("plural")}.{spec.get("group")}' != name:
            raise ApiError(422, 'Invalid', f'CustomResourceDefinition.apiextensions.k8s.io "{name}" is invalid: metadata.name: '
                                           f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group')
        if not names.get('kind') or not spec.get('versions') or spec.get('scope') not in ('Namespaced', 'Cluster'):
            raise ApiError(422, 'Invalid', f'CustomResourceDefinition.apiextensions.k8s.io "{name}" is invalid: '
                                           'spec: names.kind, versions and scope (Namespaced|Cluster) are required')

    # ------------------------------------------------------------------ admission

    @staticmethod
    def _user(request: kmock.Request) -> dict:
        """Who is asking: impersonation headers (`kubectl --as`), else the bearer token or basic-auth
        user name taken verbatim as the user name (no authentication here), else the admin."""
        raw = request._raw_request
        headers = raw.headers if raw is not None else request.headers
        user = headers.get('Impersonate-User')
        auth = headers.get('Authorization', '')
        if user:
            groups = list(headers.getall('Impersonate-Group', [])) if raw is not None else []
            return {'username': user, 'groups': groups + ['system:authenticated']}
        if auth.startswith('Bearer '):
            return {'username': auth[7:].strip(), 'groups': ['system:authenticated']}
        if auth.startswith('Basic '):
            user = base64.b64decode(auth[6:]).decode(errors='replace').split(':', 1)[0]
            return {'username': user, 'groups': ['system:authenticated']}
        return dict(DEFAULT_USER)

    async def _admit(self, request: kmock.Request, r: Res, op: str, ns: str | None, name: str, obj: dict | None,
                     old: dict | None, dry: bool, options_kind: str, options: dict | None = None) -> list[str]:
        """Call the validating webhook like the apiserver does; return its warnings or raise its denial."""
        if not self.webhook_url or r.group not in self.webhook_groups:
            return []
        gvk = {'group': r.group, 'version': r.version, 'kind': r.kind}
        gvr = {'group': r.group, 'version': r.version, 'resource': r.plural}
        uid = str(uuid.uuid4())
        review = {'apiVersion': 'admission.k8s.io/v1', 'kind': 'AdmissionReview', 'request': {
            'uid': uid, 'kind': gvk, 'resource': gvr, 'requestKind': gvk, 'requestResource': gvr,
            'name': name, 'namespace': ns or '', 'operation': op, 'userInfo': self._user(request),
            'object': self._view(r, obj) if obj else None, 'oldObject': self._view(r, old) if old else None,
            'dryRun': dry, 'options': options or {'apiVersion': 'meta.k8s.io/v1', 'kind': options_kind,
                                                  **({'fieldManager': request.params['fieldManager']} if request.params.get('fieldManager') else {})}}}
        url = f'{self.webhook_url}?timeout={int(self.webhook_timeout)}s'
        try:
            if self.session is None:
                ctx = ssl.create_default_context(cafile=self.webhook_ca) if self.webhook_ca else None
                self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx) if ctx else None)
            async with self.session.post(url, json=review, timeout=aiohttp.ClientTimeout(total=self.webhook_timeout)) as resp:
                if resp.status != 200:
                    raise RuntimeError(f'expected response code 200, got {resp.status}')
                answer = (await resp.json(content_type=None)).get('response') or {}
            if answer.get('uid') != uid:
                raise RuntimeError(f'expected response.uid="{uid}", got "{answer.get("uid")}"')
        except Exception as e:  # noqa: BLE001 - any failure to get an answer is a webhook failure
            if self.webhook_failure_policy == 'Ignore':
                return []
            raise ApiError(500, 'InternalError', f'Internal error occurred: failed calling webhook "{self.webhook_name}": '
                                                 f'failed to call webhook: Post "{url}": {e}')
        warnings = [str(w) for w in answer.get('warnings') or []]
        if not answer.get('allowed'):
            status = answer.get('status') or {}
            denied = f'admission webhook "{self.webhook_name}" denied the request'
            message = f'{denied}: {status.get("message") or status.get("reason")}' if status.get('message') or status.get('reason') \
                else f'{denied} without explanation'
            code = status.get('code') if isinstance(status.get('code'), int) and status['code'] >= 400 else 400
            raise ApiError(code, status.get('reason') or '', message, status.get('details'), warnings)
        return warnings


# ---------------------------------------------------------------------------------------------

def kubeconfig(url: str, namespace: str = 'default') -> str:
    """A kubeconfig for kubectl and kube-rs: plain HTTP, no credentials (everyone is the admin)."""
    return (f'apiVersion: v1\nkind: Config\ncurrent-context: rolegate-emulator\n'
            f'clusters:\n- name: rolegate-emulator\n  cluster:\n    server: {url}\n'
            f'contexts:\n- name: rolegate-emulator\n  context:\n    cluster: rolegate-emulator\n'
            f'    user: rolegate-admin\n    namespace: {namespace}\n'
            f'users:\n- name: rolegate-admin\n  user: {{}}\n')


async def serve(args: argparse.Namespace) -> None:
    emulator = RolegateEmulator(
        webhook_url=args.webhook_url, webhook_ca=args.webhook_ca, webhook_name=args.webhook_name,
        webhook_groups=args.webhook_group or ['rolegate.dev'], webhook_timeout=args.webhook_timeout,
        webhook_failure_policy=args.webhook_failure_policy, bookmark_interval=args.bookmark_interval,
        verbose=args.verbose)
    for path in args.crd:
        emulator.load_crds(path)
    async with emulator, kmock.Server(emulator, host=args.host, port=args.port or None) as server:
        # aiohttp listens with a backlog of 128: a controller that opens thousands of connections at
        # once (HTTP/1.1, one request per connection) would see its SYNs dropped and connects time out.
        for site in server.server.runner.sites:
            site._sock.listen(65535)  # type: ignore[attr-defined]  # the kernel caps it (net.core.somaxconn)
        url = f'http://{args.host}:{server.port}'
        if args.kubeconfig:
            pathlib.Path(args.kubeconfig).write_text(kubeconfig(url))
        print(url, flush=True)
        await asyncio.Event().wait()  # until killed


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=0, help='0 picks a free port (default)')
    p.add_argument('--kubeconfig', help='write a kubeconfig for this server to this path')
    p.add_argument('--crd', action='append', default=[], help='CRD file or directory to register at start (repeatable)')
    p.add_argument('--webhook-url', help='validating webhook URL (https://…) called for the --webhook-group resources')
    p.add_argument('--webhook-ca', help='PEM CA bundle to verify the webhook server')
    p.add_argument('--webhook-name', default='validate.rolegate.dev', help='webhook name shown in denials')
    p.add_argument('--webhook-group', action='append', help='API group sent to the webhook (repeatable; default rolegate.dev)')
    p.add_argument('--webhook-timeout', type=float, default=10.0, help='seconds (default 10)')
    p.add_argument('--webhook-failure-policy', choices=['Fail', 'Ignore'], default='Fail')
    p.add_argument('--bookmark-interval', type=float, default=10.0, help='seconds between watch BOOKMARKs (default 10)')
    p.add_argument('-v', '--verbose', action='store_true', help='log every API request to stderr')
    args = p.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
