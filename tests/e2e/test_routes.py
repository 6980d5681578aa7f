"""docs/api.md and the daemon's route table (ROUTES[] in src/daemon/http.c)
say the same thing: every route's method, path, who may call it (no key, a
key, the admin key) and the query parameters it accepts.

Two places in docs/api.md are checked against ROUTES[]: the route table at
the top of "## Endpoints", and each endpoint's heading
("### `PUT /v1/sandboxes/{id}/files?path=P[&mode=0644]`", "(admin)" after
it). No daemon is needed: the C table is read from the source, which is what
the daemon is compiled from.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HTTP_C = ROOT / "src" / "daemon" / "http.c"
API_MD = ROOT / "docs" / "api.md"

METHODS = "GET|POST|PUT|DELETE|PATCH|HEAD"


def code_routes(text=None):
    """{(method, path, auth, frozenset(query))} from ROUTES[]; path with "*"."""
    text = HTTP_C.read_text() if text is None else text
    m = re.search(r"static const struct route ROUTES\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
    assert m, "ROUTES[] not found in %s" % HTTP_C
    # drop comments, not the "/*" of a pattern like "/v1/sandboxes/*/files"
    table = re.sub(r'"(?:\\.|[^"\\])*"|/\*.*?\*/', lambda c: c.group(0) if c.group(0)[0] == '"' else "",
                   m.group(1), flags=re.S)
    # each route starts with its pattern; its methods follow until the next one
    starts = list(re.finditer(r'\{\s*"(/[^"]*)"\s*,', table))
    assert starts, "no route patterns in ROUTES[]"
    out = set()
    for i, st in enumerate(starts):
        body = table[st.end():starts[i + 1].start() if i + 1 < len(starts) else len(table)]
        methods = list(re.finditer(r'\{\s*"(%s)"\s*,\s*([^,]+?)\s*,\s*[^,]+?\s*,\s*\{([^}]*)\}' % METHODS, body))
        assert methods, "route %s has no methods the test can read" % st.group(1)
        for mm in methods:
            flags = {f.strip() for f in mm.group(2).split("|")}
            auth = "none" if "R_NOAUTH" in flags else "admin" if "R_ADMIN" in flags else "key"
            query = frozenset(re.findall(r'"([^"]+)"', mm.group(3)))
            out.add((mm.group(1), st.group(1), auth, query))
    return out


def _doc_path(p):
    return re.sub(r"\{[^}/]+\}", "*", p)


def _endpoints_section(text):
    m = re.search(r"^## Endpoints\n(.*?)(?=^## )", text, re.S | re.M)
    assert m, "docs/api.md has no '## Endpoints' section"
    return m.group(1)


def doc_table(text=None):
    """The route table: | method | path | auth | query |."""
    sec = _endpoints_section(API_MD.read_text() if text is None else text)
    rows = re.findall(r"^\|\s*(%s)\s*\|\s*`([^`]+)`\s*\|\s*(\w+)\s*\|([^|\n]*)\|\s*$" % METHODS, sec, re.M)
    assert rows, "docs/api.md has no route table (| method | path | auth | query |) under '## Endpoints'"
    out = set()
    for method, path, auth, query in rows:
        q = frozenset(re.findall(r"`([a-z_]+)`", query))
        out.add((method, _doc_path(path), auth, q))
    assert len(out) == len(rows), "a route is listed twice in docs/api.md's route table"
    return out


def doc_headings(text=None):
    """Each endpoint's heading: (method, path, admin?, query)."""
    sec = _endpoints_section(API_MD.read_text() if text is None else text)
    out = set()
    for method, target, admin in re.findall(r"^### `(%s) ([^`]+)`( \(admin\))?\s*$" % METHODS, sec, re.M):
        path = re.split(r"\[?\?", target, maxsplit=1)[0]
        query = frozenset(re.findall(r"[?&]([a-z_]+)=", target))
        out.add((method, _doc_path(path), bool(admin), query))
    assert out, "no endpoint headings in docs/api.md"
    return out


def _diff(a, b, a_name, b_name):
    lines = ["only in %s: %s %s auth=%s query=%s" % (a_name, r[0], r[1], r[2], sorted(r[3])) for r in sorted(a - b)]
    lines += ["only in %s: %s %s auth=%s query=%s" % (b_name, r[0], r[1], r[2], sorted(r[3])) for r in sorted(b - a)]
    return "\n".join(lines)


def test_route_table_matches_routes():
    code, doc = code_routes(), doc_table()
    assert code == doc, "docs/api.md's route table and ROUTES[] disagree:\n" + _diff(code, doc, "http.c", "api.md")


def test_endpoint_headings_match_routes():
    code = {(m, p, a == "admin", q) for m, p, a, q in code_routes()}
    doc = doc_headings()
    assert code == doc, "docs/api.md's endpoint headings and ROUTES[] disagree:\n" + \
        _diff(code, doc, "http.c", "api.md headings")


def test_the_check_can_fail():
    """The parsers see a change in each of method, path, auth and query."""
    src = HTTP_C.read_text()
    base = code_routes(src)
    mutations = [
        ('{"/v1/pool", {{"GET", R_ADMIN,', '{"/v1/pool", {{"POST", R_ADMIN,'),   # method
        ('{"/v1/pool",', '{"/v1/pools",'),                                    # path
        ('{"/v1/pool", {{"GET", R_ADMIN,', '{"/v1/pool", {{"GET", 0,'),       # admin flag
        ('api_build_get, {"since"}', 'api_build_get, {"since", "n"}'),        # query
    ]
    for old, new in mutations:
        assert old in src, "mutation target %r no longer in http.c: update this test" % old
        assert code_routes(src.replace(old, new, 1)) != base, "the parser missed %r -> %r" % (old, new)
    doc = API_MD.read_text()
    row = re.search(r"^\| GET \| `/v1/pool` \| admin \|.*$", doc, re.M)
    assert row, "the /v1/pool row is not in the route table"
    assert doc_table(doc.replace(row.group(0), row.group(0).replace("admin", "key"), 1)) != doc_table(doc)


def handler_names_outside_routes(text):
    """The API handlers (declared in src/daemon/api.h) that http.c names
    anywhere but in ROUTES[]."""
    handlers = set(re.findall(r"^void (api_\w+)\(", (ROOT / "src" / "daemon" / "api.h").read_text(), re.M))
    assert handlers, "no handlers found in api.h"
    rest = re.sub(r"static const struct route ROUTES\[\]\s*=\s*\{.*?\n\};", "", text, flags=re.S)
    rest = re.sub(r'"(?:\\.|[^"\\])*"|/\*.*?\*/|//[^\n]*', "", rest, flags=re.S)
    return {h for h in handlers if re.search(r"\b%s\b" % h, rest)}


def test_http_reaches_handlers_only_through_routes():
    """Issue 12: http.c called api_files_put_* by name, beside its table."""
    assert handler_names_outside_routes(HTTP_C.read_text()) == set()
    # and the check sees such a call
    assert handler_names_outside_routes(HTTP_C.read_text() + "\nstatic void f(void) { api_files_put_end(0); }\n") \
        == {"api_files_put_end"}
