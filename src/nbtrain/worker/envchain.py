"""Taking gymnasium's one-time checks out of an environment's wrapper chain once they are done.

``gym.make`` wraps every environment in ``PassiveEnvChecker`` (it checks the API on the
first reset, the first step (the first two from gymnasium 1.4 on) and the first render, and
warns about what is wrong) and ``OrderEnforcing`` (it refuses a step or a render before the
first reset). Once those checks have run, both only pass each call through to the next
layer: two Python calls more for every step and every reset, ~0.37 us a FrozenLake step
with its share of resets, about 5 % of an episode (docs/performance.md). The worker resets
before it steps, so after its first episode (or the first ones, if they were shorter than
the checks) it unlinks the two layers from the chain. Every other wrapper stays where it
was, ``TimeLimit`` included: the environment steps exactly as before, and the checks still
run and still warn, once, as they do under ``gym.make``.

The one-call tabular episode (``agents/tabular_fused.py``) can also step through the layer
below an outermost ``TimeLimit`` and truncate at its limit itself (:func:`time_limit_bypass`):
one Python call less a step, ~0.1 us of a ~6 us FrozenLake step. ``TimeLimit`` stays in the
chain, and every reset still goes through it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

__all__ = ["time_limit_bypass", "unlink_spent_checks"]


def unlink_spent_checks(env: Any, *, rendering: bool) -> bool:
    """Unlink every ``PassiveEnvChecker`` and ``OrderEnforcing`` below the outermost wrapper
    of ``env`` whose checks are done (the checker's render check too when ``rendering``).

    Returns True when none is left that a later call could unlink, i.e. when the caller can
    stop calling. The outermost wrapper is never unlinked: the caller holds it. A layer
    whose parent does not let its ``env`` be set is left where it is.
    """
    from gymnasium import Wrapper
    from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker

    # Each wrapper works out ``spec`` from the layers below it the first time it is asked,
    # and keeps it: asked now, it still says what gym.make made (checker and order guard
    # on), so ``gym.make(env.spec)`` makes the same chain after the unlinking.
    with contextlib.suppress(Exception):  # (a spec that cannot be copied: gymnasium warns)
        _ = env.spec
    done = True
    outer = env
    while isinstance(outer, Wrapper):
        inner = outer.env
        if type(inner) is PassiveEnvChecker:
            # (gymnasium < 1.4 has no data-reuse check at the second step, hence the default)
            spent = inner.checked_reset and inner.checked_step
            spent = spent and getattr(inner, "checked_data_reuse", True)
            if spent and (inner.checked_render or not rendering):
                if _unlink(outer, inner):
                    continue
            else:
                done = False
        elif type(inner) is OrderEnforcing:
            if inner.has_reset:
                if _unlink(outer, inner):
                    continue
            else:
                done = False
        outer = inner
    return done


def _unlink(outer: Any, inner: Any) -> bool:
    try:
        outer.env = inner.env
    except AttributeError:  # a custom wrapper with a read-only ``env``: leave the layer
        return False
    return True


def time_limit_bypass(env: Any) -> tuple[Callable[[Any], Any], int] | None:
    """``(step, limit)`` when ``env`` is gymnasium's own ``TimeLimit`` as it ships: ``step``
    steps the layer below it, and a caller that sets ``truncated`` once ``limit`` steps of
    an episode were taken (counted from the reset) steps exactly as ``env.step`` would.

    None for anything else (a subclass, a ``step`` replaced on the class or the instance, a
    limit that is not a positive int): the caller then steps ``env`` itself. The
    wrapper's own step counter is not advanced; nothing reads it but its ``step``, and
    ``reset`` starts it again.
    """
    from gymnasium.wrappers import TimeLimit

    if type(env) is not TimeLimit or "step" in vars(env):
        return None
    step = TimeLimit.step
    if step.__qualname__ != "TimeLimit.step" or step.__module__ != TimeLimit.__module__:
        return None  # patched: its behaviour is not the one replicated
    limit = getattr(env, "_max_episode_steps", None)
    if type(limit) is not int or limit < 1:
        return None
    return env.env.step, limit
