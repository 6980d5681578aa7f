"""docs/openapi.yaml agrees with the daemon.

- Its paths and methods are ROUTES[] (src/daemon/http.c, read from the source
  by test_routes.code_routes), with the same auth (security) and the same
  query parameters, and every {param} of a path is declared.
- Every error code it lists (the `enum` of error.code in an error response)
  is produced somewhere in src/daemon, and every code produced in
  src/daemon is listed somewhere in it.
- A few live answers of a real daemon have the shape the document gives.

`make lint-openapi` (@redocly/cli) checks that it is valid OpenAPI 3.1.
"""

import re
from pathlib import Path

import pytest
import yaml

from test_routes import code_routes

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "docs" / "openapi.yaml"
DAEMON_SRC = ROOT / "src" / "daemon"
METHODS = ("get", "post", "put", "delete", "patch", "head")


def load(text=None):
    return yaml.safe_load(OPENAPI.read_text() if text is None else text)


def _auth(doc, op):
    sec = op.get("security", doc.get("security"))
    if sec == []:
        return "none"
    names = {n for req in sec for n in req}
    assert len(names) == 1, "operation %s: one security scheme expected, got %s" % (op.get("operationId"), names)
    return {"apiKey": "key", "adminKey": "admin"}[names.pop()]


def doc_routes(doc):
    """{(method, path with "*", auth, frozenset(query))} from the document."""
    out = set()
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [_resolve(doc, p) for p in list(item.get("parameters", [])) + list(op.get("parameters", []))]
            query = frozenset(p["name"] for p in params if p["in"] == "query")
            declared = {p["name"] for p in params if p["in"] == "path"}
            used = set(re.findall(r"\{([^}/]+)\}", path))
            assert declared == used, "%s %s: path parameters %s declared, %s in the path" % (
                method.upper(), path, sorted(declared), sorted(used))
            out.add((method.upper(), re.sub(r"\{[^}/]+\}", "*", path), _auth(doc, op), query))
    return out


def documented_codes(doc):
    """{code: {(status, "METHOD path"), ...}} from every error response."""
    out = {}
    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            for status, resp in (op or {}).get("responses", {}).items():
                for media in resp.get("content", {}).values():
                    for code in _code_enum(media.get("schema", {})):
                        out.setdefault(code, set()).add((int(status), "%s %s" % (method.upper(), path)))
    return out


def _code_enum(schema):
    """The enum of error.code in an error response's schema (allOf of Error and the codes)."""
    codes = []
    for part in schema.get("allOf", [schema]):
        enum = part.get("properties", {}).get("error", {}).get("properties", {}).get("code", {}).get("enum")
        codes += enum or []
    return codes


# api_error_set(err, r, 404, "not_found", ...), http_reply_errorf(req, 400,
# "invalid_request", ...), op_map's {410, "sandbox_expired"}, and the agent
# codes passed through (errors.c: {"no_space", 507}).
_STATUS_CODE = re.compile(r'\b([45]\d\d)u?\s*,\s*"([a-z][a-z_]*)"')
_CODE_STATUS = re.compile(r'\{\s*"([a-z][a-z_]*)"\s*,\s*([45]\d\d)\s*\}')


def produced_codes(sources=None):
    """{code: {status, ...}} of every error code src/daemon answers with."""
    if sources is None:
        # e2b_*.c answer only on the E2B listener (--e2b-listen, docs/e2b.md),
        # whose routes are E2B's and whose errors are E2B's shapes (a status
        # number or a Connect code), never Airlock's error codes: not here
        sources = {p.name: p.read_text() for p in sorted(DAEMON_SRC.glob("*.c")) if not p.name.startswith("e2b_")}
    out = {}
    for text in sources.values():
        for status, code in _STATUS_CODE.findall(text):
            out.setdefault(code, set()).add(int(status))
        for code, status in _CODE_STATUS.findall(text):
            out.setdefault(code, set()).add(int(status))
    return out


def daemon_literals():
    return set(re.findall(r'"([a-z][a-z_]*)"', "\n".join(p.read_text() for p in DAEMON_SRC.glob("*.[ch]"))))


def test_document_is_openapi_3_1():
    doc = load()
    assert doc["openapi"].startswith("3.1."), doc["openapi"]
    assert doc["components"]["schemas"]["Error"]["required"] == ["error"]


def test_routes_match_ROUTES():
    code, doc = code_routes(), doc_routes(load())
    assert code, "no routes read from ROUTES[]"
    assert doc - code == set(), "in docs/openapi.yaml but not in ROUTES[] (method, path, auth, query): %s" % sorted(doc - code)
    assert code - doc == set(), "in ROUTES[] but not in docs/openapi.yaml (method, path, auth, query): %s" % sorted(code - doc)


def test_every_documented_code_is_produced():
    produced, literals = produced_codes(), daemon_literals()
    never = {c: sorted(w) for c, w in documented_codes(load()).items() if c not in produced or c not in literals}
    assert never == {}, "docs/openapi.yaml lists error codes src/daemon never produces: %s" % never


def test_every_produced_code_is_documented():
    documented = documented_codes(load())
    missing = {c: sorted(s) for c, s in produced_codes().items() if c not in documented}
    assert missing == {}, "src/daemon produces error codes docs/openapi.yaml does not list: %s" % missing


def test_documented_statuses_are_produced():
    """A code is documented only under a status the daemon gives it (create's
    template_not_found is turned into a 400 by api_sandboxes.c, by hand)."""
    produced = produced_codes()
    produced.setdefault("template_not_found", set()).add(400)
    wrong = sorted((c, s, w) for c, uses in documented_codes(load()).items() for s, w in uses
                   if c in produced and s not in produced[c])
    assert wrong == [], "documented under a status the daemon never gives the code: %s" % wrong


def test_checks_can_fail():
    """The checks above see a missing route, an extra code and a missing code."""
    doc = load()
    del doc["paths"]["/v1/pool"]
    assert ("GET", "/v1/pool", "admin", frozenset()) in code_routes() - doc_routes(doc)
    doc = load()
    doc["paths"]["/v1/healthz"]["get"]["parameters"] = []
    assert ("GET", "/v1/healthz", "none", frozenset()) in doc_routes(doc) - code_routes()
    doc = load()
    resp = doc["paths"]["/v1/keys"]["post"]["responses"]["403"]["content"]["application/json"]["schema"]
    resp["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"].append("no_such_code_anywhere")
    assert "no_such_code_anywhere" in documented_codes(doc)
    assert "no_such_code_anywhere" not in produced_codes()
    fake = {"x.c": 'api_error_set(err, r, 409, "brand_new_code", "x");'}
    assert produced_codes(fake) == {"brand_new_code": {409}}
    assert "brand_new_code" not in documented_codes(load())


# ---- live shapes: a small checker for the subset of JSON Schema used here


def _resolve(doc, schema):
    while "$ref" in schema:
        node = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _conforms(doc, schema, value, where="$"):
    schema = _resolve(doc, schema)
    for part in schema.get("allOf", []):
        _conforms(doc, part, value, where)
    if "oneOf" in schema:
        ok = 0
        for part in schema["oneOf"]:
            try:
                _conforms(doc, part, value, where)
                ok += 1
            except AssertionError:
                pass
        assert ok == 1, "%s: %r matches %d of oneOf" % (where, value, ok)
    types = schema.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]

        def is_type(t):
            if t == "integer":
                return isinstance(value, int) and not isinstance(value, bool)
            if t == "number":
                return isinstance(value, (int, float)) and not isinstance(value, bool)
            return isinstance(value, _TYPES[t]) and not (t != "boolean" and isinstance(value, bool))

        assert any(is_type(t) for t in types), "%s: %r is not %s" % (where, value, types)
    if "enum" in schema:
        assert value in schema["enum"], "%s: %r not in %s" % (where, value, schema["enum"])
    if "const" in schema:
        assert value == schema["const"], "%s: %r != %r" % (where, value, schema["const"])
    if isinstance(value, dict):
        for k in schema.get("required", []):
            assert k in value, "%s: no %r in %r" % (where, k, sorted(value))
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                _conforms(doc, sub, value[k], "%s.%s" % (where, k))
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            _conforms(doc, schema["items"], v, "%s[%d]" % (where, i))


def _response_schema(doc, path, method, status):
    resp = doc["paths"][path][method]["responses"][str(status)]
    return resp["content"]["application/json"]["schema"]


def test_schema_checker_can_fail():
    doc = load()
    with pytest.raises(AssertionError):
        _conforms(doc, {"$ref": "#/components/schemas/Sandbox"}, {"id": "sb_x"})
    with pytest.raises(AssertionError):
        _conforms(doc, _response_schema(doc, "/v1/keys", "post", 403), {"error": {"code": "nope", "message": "m"}})


def test_live_answers_have_the_documented_shape(daemon, sb):
    doc = load()
    checks = [
        ("GET", "/v1/healthz", None, "/v1/healthz", "get", 200, {}),
        ("GET", "/v1/healthz?full=1", None, "/v1/healthz", "get", 200, {}),
        ("GET", "/v1/sandboxes", None, "/v1/sandboxes", "get", 200, {}),
        ("GET", "/v1/sandboxes/" + sb.id, None, "/v1/sandboxes/{id}", "get", 200, {}),
        ("POST", "/v1/sandboxes/%s/code" % sb.id, {"code": "1+1"}, "/v1/sandboxes/{id}/code", "post", 200, {}),
        ("POST", "/v1/sandboxes/%s/exec" % sb.id, {"cmd": ["true"]}, "/v1/sandboxes/{id}/exec", "post", 200, {}),
        ("GET", "/v1/sandboxes/%s/files/list" % sb.id, None, "/v1/sandboxes/{id}/files/list", "get", 200, {}),
        ("GET", "/v1/sandboxes/%s/files/list?path=/&depth=2" % sb.id, None, "/v1/sandboxes/{id}/files/list", "get",
         200, {}),
        ("GET", "/v1/sandboxes/%s/files/info?path=/etc" % sb.id, None, "/v1/sandboxes/{id}/files/info", "get", 200,
         {}),
        ("POST", "/v1/sandboxes/%s/files/mkdir?path=/data/oa/b" % sb.id, None, "/v1/sandboxes/{id}/files/mkdir",
         "post", 200, {}),
        ("POST", "/v1/sandboxes/%s/files/rename?path=/data/oa/b&to=/data/oa/c" % sb.id, None,
         "/v1/sandboxes/{id}/files/rename", "post", 200, {}),
        ("POST", "/v1/sandboxes/%s/files/rename?path=/data/oa/none&to=/data/oa/d" % sb.id, None,
         "/v1/sandboxes/{id}/files/rename", "post", 404, {}),
        ("GET", "/v1/sandboxes/%s/files/watch?path=/proc" % sb.id, None, "/v1/sandboxes/{id}/files/watch", "get",
         400, {}),
        ("POST", "/v1/sandboxes/%s/files" % sb.id,
         b'--bnd42\r\nContent-Disposition: form-data; name="file"; filename="/data/oa/m"\r\n\r\nm\r\n--bnd42--\r\n',
         "/v1/sandboxes/{id}/files", "post", 201,
         {"headers": {"Content-Type": "multipart/form-data; boundary=bnd42"}}),
        ("GET", "/v1/sandboxes/%s/logs" % sb.id, None, "/v1/sandboxes/{id}/logs", "get", 200, {}),
        ("GET", "/v1/keys", None, "/v1/keys", "get", 200, {}),
        ("GET", "/v1/pool", None, "/v1/pool", "get", 200, {}),
        ("GET", "/v1/templates", None, "/v1/templates", "get", 200, {}),
        ("GET", "/v1/sandboxes/sb_00000000000000000000000000000000", None, "/v1/sandboxes/{id}", "get", 404, {}),
        ("GET", "/v1/keys", None, "/v1/keys", "get", 401, {"key": "ak_wrong"}),
        ("POST", "/v1/sandboxes/%s/code" % sb.id, {"code": 1}, "/v1/sandboxes/{id}/code", "post", 400, {}),
        ("GET", "/v1/templates/no-such-template", None, "/v1/templates/{name}", "get", 404, {}),
    ]
    for method, url, body, path, op, status, kw in checks:
        got, _, raw, js = daemon.request(method, url, body, **kw)
        assert got == status, "%s %s: %s %r" % (method, url, got, raw[:300])
        _conforms(doc, _response_schema(doc, path, op, status), js, "%s %s" % (method, url))
