"""The IPython engine of the Python REPL (issue 14): InteractiveShell cells
with state and execution_count, display() and _repr_*_ as ordered results,
!cmd and magics, matplotlib/PIL/pandas rich results, a figure's structure as
data. Real daemon and sandboxes, through the Python SDK."""

import base64
import json
import re

import pytest

from e2e_support import Daemon, serving

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHART = "application/vnd.airlock.chart+json"


@pytest.fixture(scope="module")
def ip(daemon):
    """One sandbox for the module; the engine must be IPython in it."""
    s = daemon.sandbox(timeout=3600)
    r = s.run_code("import IPython; get_ipython() is not None")
    if r.error is not None and r.error.name == "ModuleNotFoundError":
        pytest.skip("python3-ipython is not installed on this host")
    assert r.error is None and r.text == "True", r
    yield s
    s.close()


def displays(r):
    return [x for x in r.results if not x.is_main_result]


def main(r):
    mains = [x for x in r.results if x.is_main_result]
    assert len(mains) <= 1, r.results
    return mains[0] if mains else None


# ---- (a) cells, state, execution_count, indentation, tracebacks --------------------

def test_state_and_execution_count(fresh):
    s = fresh()
    a = s.run_code("x = 20")
    b = s.run_code("x + 22")
    assert a.error is None and b.error is None, (a, b)
    assert b.text == "42"
    assert isinstance(a.raw["execution_count"], int)
    assert b.raw["execution_count"] == a.raw["execution_count"] + 1
    assert b.execution_count == b.raw["execution_count"]
    # an error also counts, as in Jupyter
    c = s.run_code("1/0")
    assert c.raw["execution_count"] == b.raw["execution_count"] + 1
    # IPython's Out/_ history
    assert s.run_code("_").text == "42"


def test_common_indentation_removed(ip):
    r = ip.run_code("    a = 2\n    if a:\n        b = a * 3\n    b\n")
    assert r.error is None, r
    assert r.text == "6"


def test_traceback_names_the_cell(ip):
    r = ip.run_code("def f():\n    return 1 / 0\n\nf()\n")
    assert r.error is not None and r.error.name == "ZeroDivisionError", r
    assert r.error.value == "division by zero"
    n = r.raw["execution_count"]
    tb = r.error.traceback
    # IPython 8.5 writes "Cell In [3], line 4", later ones "Cell In[3], line 4"
    assert re.search(r"In ?\[%d\], line 4" % n, tb), tb
    assert re.search(r"In ?\[%d\], line 2, in f" % n, tb), tb
    assert "return 1 / 0" in tb
    assert "\x1b[" not in tb, "no ANSI colours in the traceback"
    assert "airlock_runner" not in tb and "interactiveshell" not in tb, tb
    assert "ZeroDivisionError" in r.stderr
    # the REPL survives
    assert ip.run_code("'still here'").text == "'still here'"


def test_syntax_error_is_an_error(ip):
    r = ip.run_code("def (:\n")
    assert r.error is not None and r.error.name == "SyntaxError", r
    assert r.exit_code == 1
    assert ip.run_code("1 + 1").text == "2"


def test_sys_exit_keeps_exit_code(fresh):
    s = fresh()
    r = s.run_code("import sys; sys.exit(3)")
    assert r.exit_code == 3 and r.error is None, r
    r = s.run_code("raise SystemExit")
    assert r.exit_code == 0 and r.error is None, r
    assert s.run_code("2 * 21").text == "42"


def test_exit_and_quit_end_the_call_with_their_code(fresh):
    s = fresh()
    r = s.run_code("exit(4)")
    assert r.exit_code == 4 and r.error is None, r
    r = s.run_code("quit()")
    assert r.exit_code == 0 and r.error is None, r
    assert s.run_code("'alive'").text == "'alive'"


def test_top_level_await(ip):
    r = ip.run_code("import asyncio\nawait asyncio.sleep(0.01)\n'awaited'")
    assert r.error is None and r.text == "'awaited'", r


def test_broken_repr_still_gives_a_main_result(ip):
    r = ip.run_code("class B:\n    def __repr__(self): raise ValueError('bad repr')\nB()")
    assert r.error is None, r
    assert main(r).text == "<repr failed: B object>"
    assert "bad repr" in r.stderr


def test_shell_escape_is_stopped_by_the_timeout(fresh):
    s = fresh()
    s.run_code("kept = 1")
    r = s.run_code("!sleep 30\nafter = True", timeout=1)
    assert r.timed_out and r.error.name == "TimeoutError", r
    r = s.run_code("kept, 'after' in globals()")
    assert r.text == "(1, False)" and not r.repl_restarted, r


def test_interrupt_on_timeout_keeps_the_repl(fresh):
    s = fresh()
    s.run_code("kept = 'yes'")
    r = s.run_code("import time\nwhile True:\n    time.sleep(0.01)\n", timeout=1)
    assert r.timed_out and r.error.name == "TimeoutError", r
    assert "airlock_runner" not in r.error.traceback
    r = s.run_code("kept")
    assert r.text == "'yes'" and not r.repl_restarted, r


# ---- (b) display() and _repr_*_ -----------------------------------------------------

def test_display_objects_in_order_beside_the_main_result(ip):
    r = ip.run_code(
        "from IPython.display import display, HTML, Markdown, JSON\n"
        "display(HTML('<b>one</b>'))\n"
        "display(Markdown('**two**'))\n"
        "display({'three': 3})\n"
        "display(JSON({'k': [1, 2]}))\n"
        "print('between')\n"
        "'main'\n")
    assert r.error is None, r
    d = displays(r)
    assert [x.raw.get("text/html") for x in d[:1]] == ["<b>one</b>"]
    assert d[1].raw["text/markdown"] == "**two**"
    assert d[2].text == "{'three': 3}"
    assert d[3].raw["application/json"] == {"k": [1, 2]}
    assert main(r).text == "'main'"
    assert r.results[-1].is_main_result
    assert r.stdout == "between\n"


def test_display_builtin_without_import(ip):
    r = ip.run_code("display(1); display('a', 'b')")
    assert r.error is None, r
    assert [x.text for x in displays(r)] == ["1", "'a'", "'b'"]
    assert main(r) is None


def test_display_in_a_loop_stays_within_the_result_limit(ip):
    r = ip.run_code("for i in range(100000):\n    display(i)\nkeep = 'kept'\n'x' * 50000\n")
    assert r.error is None and not r.repl_restarted, r
    d = displays(r)
    assert d[0].text == "0" and d[1].text == "1"
    assert 100 < len(d) < 100000
    assert d[-1].raw.get("truncated") and "more display results dropped" in d[-1].text, d[-1]
    assert main(r).text == "'" + "x" * 50000 + "'"
    r = ip.run_code("from IPython.display import Image\nimport base64\n"
                    "for i in range(20):\n    display(Image(data=b'\\x89PNG\\r\\n\\x1a\\n' + bytes(100000)))\n")
    assert r.error is None and not r.repl_restarted, r
    assert 0 < len([x for x in r.results if "image/png" in x.raw]) < 20
    assert ip.run_code("keep").text == "'kept'"


def test_user_repr_methods(ip):
    r = ip.run_code(
        "class Rich:\n"
        "    def _repr_html_(self): return '<i>rich</i>'\n"
        "    def _repr_markdown_(self): return '*rich*'\n"
        "    def _repr_svg_(self): return '<svg xmlns=\"http://www.w3.org/2000/svg\"/>'\n"
        "    def _repr_json_(self): return {'rich': True}\n"
        "    def _repr_latex_(self): return '$r$'\n"
        "    def __repr__(self): return 'Rich()'\n"
        "class Bundle:\n"
        "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
        "        return {'text/plain': 'B', 'application/x-custom': 'yes'}\n"
        "display(Bundle())\n"
        "Rich()\n")
    assert r.error is None, r
    m = main(r).raw
    assert m["text/plain"] == "Rich()"
    assert m["text/html"] == "<i>rich</i>"
    assert m["text/markdown"] == "*rich*"
    assert m["image/svg+xml"].startswith("<svg")
    assert m["application/json"] == {"rich": True}
    assert m["text/latex"] == "$r$"
    (b,) = displays(r)
    assert b.raw["text/plain"] == "B" and b.raw["application/x-custom"] == "yes"


def test_a_dict_value_keeps_application_json(ip):
    r = ip.run_code("{'a': [1, 2]}")
    assert main(r).raw["application/json"] == {"a": [1, 2]}
    assert main(r).text == "{'a': [1, 2]}"


def test_semicolon_hides_the_value(ip):
    r = ip.run_code("1 + 1;")
    assert r.error is None and main(r) is None, r


def test_image_display_png(ip):
    r = ip.run_code(
        "import base64\n"
        "from IPython.display import Image\n"
        "png = base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==')\n"
        "Image(data=png)\n")
    assert r.error is None, r
    assert main(r).png_bytes().startswith(PNG_MAGIC)


# ---- (c) !cmd and magics ----------------------------------------------------------

def test_shell_escape_output_and_capture(ip):
    r = ip.run_code("!echo hello from bash; echo err >&2")
    assert r.error is None, r
    assert "hello from bash\n" in r.stdout
    assert "err" in r.stdout + r.stderr
    r = ip.run_code("files = !printf 'a\\nb\\n'\nlist(files)")
    assert r.error is None, r
    assert r.text == "['a', 'b']"


def test_line_and_cell_magics(ip):
    r = ip.run_code("%cd /tmp\nimport os; os.getcwd()")
    assert r.error is None, r
    assert r.text == "'/tmp'"
    r = ip.run_code("%%bash\necho from cell magic $((6*7))\n")
    assert r.error is None, r
    assert "from cell magic 42" in r.stdout
    r = ip.run_code("%%timeit -n1 -r1\nsum(range(10))\n")
    assert r.error is None, r
    assert "loop" in r.stdout
    r = ip.run_code("%who_ls")
    assert r.error is None, r
    ip.run_code("%cd /home/user")


def test_pip_magic_explains_the_seal(ip):
    # `!pip` is the real pip (it fails on its own); the magics explain
    for cell in ("%pip install requests", "%conda install numpy"):
        r = ip.run_code(cell)
        assert r.error is not None and r.error.name == "UsageError", (cell, r)
        assert "sealed" in r.error.value and "install_wheels" in r.error.value, r.error.value
        assert "sealed" in r.stderr
    assert ip.run_code("'after pip'").text == "'after pip'"


def test_unknown_magic_is_an_error(ip):
    r = ip.run_code("%nosuchmagic")
    assert r.error is not None, r
    assert ip.run_code("3").text == "3"


# ---- (d) matplotlib, PIL, pandas -----------------------------------------------------

def test_figure_as_last_expression_is_the_main_result(ip):
    r = ip.run_code(
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\n"
        "ax.plot([1, 2, 3], [1, 4, 9])\n"
        "fig\n")
    assert r.error is None, r
    m = main(r)
    assert m is not None, r.results
    assert m.png_bytes().startswith(PNG_MAGIC)
    assert m.text.startswith("<Figure")
    assert displays(r) == [], "the figure is not sent twice"


def test_plt_show_is_a_display_result(ip):
    r = ip.run_code(
        "import matplotlib.pyplot as plt\n"
        "plt.plot([0, 1], [1, 0])\n"
        "plt.show()\n"
        "print('after show')\n"
        "plt.bar(['a', 'b'], [3, 5])\n"
        "plt.show()\n"
        "'done'\n")
    assert r.error is None, r
    d = displays(r)
    assert len(d) == 2, r.results
    for x in d:
        assert x.png_bytes().startswith(PNG_MAGIC)
    assert main(r).text == "'done'"
    # shown figures are closed: nothing left for the next call
    r = ip.run_code("import matplotlib.pyplot as plt; len(plt.get_fignums())")
    assert r.text == "0" and displays(r) == [], r


def test_matplotlib_inline_magic_changes_nothing(ip):
    r = ip.run_code("%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.gcf()\n")
    assert r.error is None, r
    assert displays(r) == [] and CHART in main(r).raw, r.results
    r = ip.run_code("%matplotlib qt")
    assert r.error is not None and "no display" in r.error.value, r


def test_open_figure_at_end_of_cell_is_still_returned(ip):
    r = ip.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nx = 1\n")
    assert r.error is None, r
    (d,) = displays(r)
    assert d.png_bytes().startswith(PNG_MAGIC)


def test_pil_image_show_and_value(ip):
    r = ip.run_code(
        "from PIL import Image\n"
        "im = Image.new('RGB', (8, 8), (255, 0, 0))\n"
        "im.show()\n"
        "im\n")
    assert r.error is None, r
    (d,) = displays(r)
    assert d.png_bytes().startswith(PNG_MAGIC)
    assert main(r).png_bytes().startswith(PNG_MAGIC)


def test_pandas_objects_carry_json(ip):
    r = ip.run_code(
        "import pandas as pd\n"
        "df = pd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})\n"
        "display(df['a'])\n"
        "df\n")
    assert r.error is None, r
    m = main(r).raw
    assert "<table" in m["text/html"]
    data = m["application/json"]
    assert [f["name"] for f in data["schema"]["fields"]][-2:] == ["a", "b"]
    assert [[row["a"], row["b"]] for row in data["data"]] == [[1, "x"], [2, "y"]]
    (series,) = displays(r)
    assert [row["a"] for row in series.raw["application/json"]["data"]] == [1, 2]


# ---- (e) a figure's structure as data -------------------------------------------------

def test_line_chart_structure(ip):
    r = ip.run_code(
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\n"
        "ax.plot([1, 2, 3], [2, 4, 8], label='growth')\n"
        "ax.set_title('Growth'); ax.set_xlabel('day'); ax.set_ylabel('count')\n"
        "fig\n")
    assert r.error is None, r
    chart = main(r).raw[CHART]
    json.dumps(chart)
    (axes,) = chart["axes"]
    assert axes["type"] == "line"
    assert axes["title"] == "Growth"
    assert axes["x_label"] == "day" and axes["y_label"] == "count"
    (series,) = axes["series"]
    assert series["label"] == "growth"
    assert series["points"] == [[1, 2], [2, 4], [3, 8]]


def test_bar_and_scatter_structure(ip):
    r = ip.run_code(
        "import matplotlib.pyplot as plt\n"
        "fig, (a, b) = plt.subplots(1, 2)\n"
        "a.bar(['x', 'y'], [3, 5]); a.set_title('bars')\n"
        "b.scatter([1, 2], [3, 4], label='pts'); b.set_title('dots')\n"
        "plt.show()\n")
    assert r.error is None, r
    (d,) = displays(r)
    chart = d.raw[CHART]
    bars, dots = chart["axes"]
    assert bars["type"] == "bar" and bars["title"] == "bars"
    assert [p[1] for p in bars["series"][0]["points"]] == [3, 5]
    assert [p[0] for p in bars["series"][0]["points"]] == ["x", "y"]
    assert dots["type"] == "scatter" and dots["title"] == "dots"
    assert dots["series"][0]["label"] == "pts"
    assert dots["series"][0]["points"] == [[1, 3], [2, 4]]


def test_the_shell_writes_no_files(fresh):
    """No profile directory, history database or bookmark store appears in
    the user's home or working directory."""
    s = fresh()
    r = s.run_code("%cd /tmp\n%cd -\n%bookmark here\n%dhist\nimport os\nsorted(os.listdir('/home/user')), sorted(os.listdir('/tmp'))")
    assert r.error is None, r
    assert r.text == "([], [])", r


# ---- the plain engine, when IPython is not importable ---------------------------------

@pytest.fixture(scope="module")
def nozygote(tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("ipy-nozygote"), name="ipy-nozygote",
               extra_args=["--no-zygote", "--pool-size", "0"]).start()
    yield from serving(d)


def test_engine_is_logged(daemon, ip):
    assert "python engine: ipython" in daemon.log_text()  # the zygote's warm-up
    assert "ipython engine" in daemon.log_text()  # the agent, at a REPL's first result


def test_without_ipython_the_plain_engine_runs(nozygote):
    """A template without python3-ipython: the runner falls back to the plain
    engine and says so in the log, not in results. Here an exec'd runner
    finds a broken IPython package first on its path (the working directory)."""
    d = nozygote
    with d.sandbox() as s:
        assert s.run_code("get_ipython() is not None").text == "True"
        s.upload(b"raise ImportError('no IPython in this template')\n", "IPython/__init__.py")
        r = s.run_code("import os; os._exit(0)")
        assert r.repl_restarted, r
        a = s.run_code("x = 41")
        b = s.run_code("x + 1")
        assert a.error is None and b.text == "42", (a, b)
        assert b.execution_count == a.execution_count + 1, (a.raw, b.raw)
        r = s.run_code("'get_ipython' in dir(__builtins__)")
        assert r.text == "False", r
        r = s.run_code("import sys; print(sys._getframe().f_code.co_filename)")
        assert r.stdout.startswith("<cell-"), r
        r = s.run_code("{'a': 1}")
        assert r.results[0].raw["application/json"] == {"a": 1}
        assert "basic engine" in d.log_text()
