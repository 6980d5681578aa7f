# A tiny script for `airlock run examples/hello.py`.
import platform, os
print("hello from", platform.node(), "as uid", os.getuid())
print("2 + 2 =", 2 + 2)
