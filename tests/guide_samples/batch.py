"""Run several sample programs in one Python process, each as its own ``__main__`` with its own
environment, and print one JSON line per program: ``{"id", "stdout", "error"}``.

The jobs come as a JSON list on stdin: ``[{"id": ..., "filename": ..., "source": ..., "env": {...}}]``.
One process for many samples: some clients take seconds to import (LiteLLM).
"""

import contextlib
import io
import json
import os
import sys
import traceback


def run(job: dict, base_env: dict) -> dict:
    os.environ.clear()
    os.environ.update(base_env)
    os.environ.update(job["env"])
    sys.argv = [job["filename"]]
    out = io.StringIO()
    error = None
    with contextlib.redirect_stdout(out):
        try:
            code = compile(job["source"], job["filename"], "exec")
            exec(code, {"__name__": "__main__", "__file__": job["filename"]})
        except SystemExit as exc:
            if exc.code not in (None, 0):
                error = f"SystemExit({exc.code!r})"
        except BaseException:
            error = traceback.format_exc()
    return {"id": job["id"], "stdout": out.getvalue(), "error": error}


def main() -> None:
    jobs = json.load(sys.stdin)
    base_env = dict(os.environ)
    for job in jobs:
        print(json.dumps(run(job, base_env)), flush=True)


if __name__ == "__main__":
    main()
