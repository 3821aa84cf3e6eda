"""Run every numbered notebook of a folder in smoke mode, from another working directory.

    python tests/run_notebooks.py NOTEBOOKS_FOLDER WORKING_DIRECTORY [NOTEBOOK_TO_LEAVE_OUT ...]

What tests/test_install_paths.py runs inside a fresh environment (a plain ``pip install`` of the
repository): the kernel starts in WORKING_DIRECTORY, as on Colab, and the notebooks' own set-up
(``a3c_core.course.enter_course``) must find their data. Prints one line per notebook and exits 1
if any failed.
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_notebooks import DEFAULT_TIMEOUT_S, inject_smoke_parameters, lab_metadata  # noqa: E402


def main(folder: Path, cwd: Path, leave_out: list[str]) -> int:
    failed = []
    for path in sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.name not in leave_out):
        nb = inject_smoke_parameters(nbformat.read(path, as_version=4))
        limit = float(lab_metadata(nb).get("smoke_timeout_s", DEFAULT_TIMEOUT_S))
        start = time.perf_counter()
        try:
            NotebookClient(nb, resources={"metadata": {"path": str(cwd)}},
                           timeout_func=lambda cell: max(1, int(start + 2 * limit - time.perf_counter()))).execute()
            print(f"{path.name}: ok in {time.perf_counter() - start:.0f} s", flush=True)
        except Exception as error:  # noqa: BLE001  (each notebook's failure is reported, then the next one runs)
            failed.append(path.name)
            print(f"{path.name}: FAILED after {time.perf_counter() - start:.0f} s: {str(error)[-1500:]}", flush=True)
    print(f"{len(failed)} failed: {', '.join(failed)}" if failed else "every notebook ran", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]))
