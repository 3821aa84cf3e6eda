"""Self-checks for the notebook exercises (notebooks 00-04 and 09).

``checks.crop(my_crop)`` runs the student's function on hidden cases, compares each answer with the package's
own code (``preprocess.crop``, ``loss.n_step_returns``, ...) and gives a :class:`CheckResult`: passed or not, and
one sentence that says what is right or what to look at; a skeleton that still raises ``NotImplementedError``
gets "not done yet", never a crash, and a function that calls the package's own answer instead of computing it
is told so (it does not pass).

Each exercise is one table, an :class:`Exercise`: the reference (the package's answer), the hidden cases
(``args`` for the student's function and names for the hints), and rules ``(test, hint)`` in order. A test is a
function of the :class:`Answer` (``a.got``, ``a.want``, ``a.before`` and the case's names); :func:`mistake`
makes one from a typical wrong solution (the answer matches it, not the reference). The first test that holds
gives its hint: a ``str.format`` template over the answer's names (``{got}``, ``{kind}``, the case's names, and
``{found}``, what the test returned), or a function of the answer. One method, :meth:`Exercise.diagnose`,
reads every table.

The machinery is :mod:`a3c_core.checks.exercise`; each notebook's tables are one module,
``checks/notebook01.py`` for notebook 01 and so on (``notebook00``: is everything installed?). The
reference solutions live in ``notebooks/solutions/``; ``tests/test_checks.py`` runs every check on them
(they must pass) and on typical wrong answers (they must fail with their hint).
"""

from .exercise import NOT_YET, PASSED, CheckResult, Exercise, mistake
from .notebook00 import rom_present, setup
from .notebook01 import crop, normalize, state
from .notebook02 import conv_output_size, conv_params, run_sequence
from .notebook03 import copy_gradients, sync_local
from .notebook04 import n_step_returns, policy_loss, value_loss
from .notebook09 import bytes_per_update, workers_per_server

__all__ = ["NOT_YET", "PASSED", "CheckResult", "Exercise", "mistake", "rom_present", "setup", "crop", "normalize",
           "state", "conv_output_size", "conv_params", "run_sequence", "copy_gradients", "sync_local",
           "n_step_returns", "policy_loss", "value_loss", "bytes_per_update", "workers_per_server"]
