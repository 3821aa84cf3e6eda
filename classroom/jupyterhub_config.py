"""A classroom JupyterHub for the series: one server per student, each under a CPU limit.

    jupyterhub -f classroom/jupyterhub_config.py          # from the repository's root, as root

Students log in with any name and the class password (``A3C_HUB_PASSWORD``), and find their own copy
of the notebooks in their home folder. Each student's server may use ``A3C_HUB_CPUS`` cores (default
1): JupyterHub passes that on as ``CPU_LIMIT``, from which every default worker count of the
package is taken, and where the machine allows it (Linux, root, cgroup v1 or v2) ``cpu_quota.py``
enforces it with a cgroup quota, so that a student cannot take more whatever they start.
``tests/test_classroom.py`` runs exactly this file. The settings, all optional, as environment variables:

    A3C_HUB_PASSWORD   the password every student types (default: "a3c-lab")
    A3C_HUB_CPUS       cores per student (default 1)
    A3C_HUB_HOMES      where students' home folders are made (default: /tmp/a3c-lab-homes)
    A3C_HUB_API_TOKEN  a token for scripts (the tests, an instructor's): admin of users and servers
    A3C_HUB_NBGRADER_EXCHANGE  nbgrader's exchange folder of a graded class (``a3c-lab editions --exchange``):
                       each student's server then fetches and submits there, as that student
    A3C_HUB_COURSE_ID  nbgrader's course id (default "a3c-lab")
"""

import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HOMES = Path(os.environ.get("A3C_HUB_HOMES", "/tmp/a3c-lab-homes"))
CPUS = float(os.environ.get("A3C_HUB_CPUS", "1"))

c = get_config()  # noqa: F821  (JupyterHub defines it when it reads this file)

# Any user name, one shared password: the hub is for one class, on a machine the instructor controls.
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = os.environ.get("A3C_HUB_PASSWORD", "a3c-lab")
c.Authenticator.allow_all = True

# One local process per student, started as the hub's user, with its own home folder.
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = str(HOMES / "{username}")
c.Spawner.cpu_limit = CPUS
c.Spawner.cmd = [sys.executable, str(HERE / "cpu_quota.py"), str(Path(sys.executable).with_name("jupyterhub-singleuser"))]
c.Spawner.args = ["--allow-root"] if os.geteuid() == 0 else []
c.Spawner.default_url = "/lab/tree/notebooks/00_setup.ipynb"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120


def copy_notebooks(spawner):
    """Before a student's first start: their own copy of the series (the package's copy_course); for a
    graded class without the reference solutions, and with their nbgrader settings (the exchange, and
    their hub name as student id)."""
    from a3c_core.course import copy_course
    graded = bool(os.environ.get("A3C_HUB_NBGRADER_EXCHANGE"))
    home = copy_course(HOMES / spawner.user.name, solutions=not graded)
    if graded:
        from a3c_core.editions import student_nbgrader_config
        settings = home / ".jupyter" / "nbgrader_config.py"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(student_nbgrader_config(os.environ.get("A3C_HUB_COURSE_ID", "a3c-lab"),
                                                    Path(os.environ["A3C_HUB_NBGRADER_EXCHANGE"]), spawner.user.name))


def remove_quota(spawner):
    """After a student's server stopped: its cgroup, if cpu_quota.py made one."""
    sys.path.insert(0, str(HERE))
    from cpu_quota import remove_cgroup
    remove_cgroup(spawner.user.name)


c.Spawner.pre_spawn_hook = copy_notebooks
c.Spawner.post_stop_hook = remove_quota

# The proxy (npm's configurable-http-proxy): on PATH, or where `make test` installs it.
proxy = shutil.which("configurable-http-proxy") or str(REPO / ".venv/node_modules/.bin/configurable-http-proxy")
c.ConfigurableHTTPProxy.command = [proxy]

if os.environ.get("A3C_HUB_API_TOKEN"):
    c.JupyterHub.services = [{"name": "instructor", "api_token": os.environ["A3C_HUB_API_TOKEN"]}]
    c.JupyterHub.load_roles = [{"name": "instructor", "services": ["instructor"],
                                "scopes": ["admin:users", "admin:servers", "access:servers", "read:metrics"]}]
