"""Drive the real CLI with about a hundred bad inputs and faults; print each outcome.

Not a test (it takes minutes): a probe for people, run by hand::

    python tools/hostile_probe.py [NAME-FILTER ...]     # work folder: $PHOTOPROOF_PROBE_DIR or /tmp/photoproof-probe

Each probe copies a small base batch (synthetic, printed, with photos and a tiny
ONNX model), damages one thing, runs ``python app.py ...`` and classifies the
outcome: ``error2`` (one-line error, exit 2), ``ok`` (exit 0, possibly with a
warning), ``TRACEBACK`` or ``rcN``. Disk-full probes run under a real file-size
limit (RLIMIT_FSIZE). docs/reliability.md lists what the outcomes must be.
"""

import json
import resource
import signal
import subprocess
import sys
import time
from collections import Counter

import probes_files
import probes_runs
from probekit import FULL, PY, ROOT, WORK, P, fresh, make_base

only = sys.argv[1:]  # run only the probes whose name contains one of these
print(f"{len(P)} probes registered by {probes_files.__name__} and {probes_runs.__name__}", flush=True)
make_base()


def limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))


res = {}
for name, f in P:
    if only and not any(o in name for o in only):
        continue
    d = fresh(name.replace(":", "_").replace("/", "_"))
    FULL.clear()
    try:
        argv = f(d)
    except Exception as e:
        print(f"SETUP-FAIL {name}: {e!r}"[:300])
        continue
    t = time.time()
    r = subprocess.run(
        [PY, str(ROOT / "app.py"), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit if FULL else None,
    )
    tb = "Traceback" in r.stderr or "Traceback" in r.stdout or "╭─" in r.stderr
    errl = [line for line in r.stderr.strip().splitlines() if line.strip()]
    kind = (
        "TRACEBACK"
        if tb
        else (
            "error2" if r.returncode == 2 and len(errl) == 1 else ("ok" if r.returncode == 0 else f"rc{r.returncode}")
        )
    )
    res[name] = kind
    last = (r.stderr.strip().splitlines() or [""])[-1][:230]
    print(f"{kind:9s} {name:40s} {last}", flush=True)

print(Counter(res.values()), len(res))
json.dump(res, open(WORK / "results.json", "w"), indent=1)
