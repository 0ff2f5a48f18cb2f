"""Taking gymnasium's one-time checks out of an environment's wrapper chain once they are done.

``gym.make`` wraps every environment in ``PassiveEnvChecker`` (it checks the API on the
first reset, the first two steps and the first render, and warns about what is wrong) and
``OrderEnforcing`` (it refuses a step or a render before the first reset). Once those checks
have run, both only pass each call through to the next layer: two Python calls more for
every step and every reset, ~0.3 us a step, about 5 % of a FrozenLake episode
(docs/performance.md). The worker resets before it steps, so after its first episode (or
the first ones, if they had fewer than two steps) it unlinks the two layers from the chain.
Every other wrapper stays where it was, ``TimeLimit`` included: the environment steps
exactly as before, and the checks still run and still warn, once, as they do under
``gym.make``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["unlink_spent_checks"]


def unlink_spent_checks(env: Any, *, rendering: bool) -> bool:
    """Unlink every ``PassiveEnvChecker`` and ``OrderEnforcing`` below the outermost wrapper
    of ``env`` whose checks are done (the checker's render check too when ``rendering``).

    Returns True when none is left that a later call could unlink, i.e. when the caller can
    stop calling. The outermost wrapper is never unlinked: the caller holds it.
    """
    from gymnasium import Wrapper
    from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker

    done = True
    outer = env
    while isinstance(outer, Wrapper):
        inner = outer.env
        if type(inner) is PassiveEnvChecker:
            # (gymnasium < 1.1 has no data-reuse check, hence the default)
            spent = inner.checked_reset and inner.checked_step
            spent = spent and getattr(inner, "checked_data_reuse", True)
            if spent and (inner.checked_render or not rendering):
                outer.env = inner.env
                continue
            done = False
        elif type(inner) is OrderEnforcing:
            if inner.has_reset:
                outer.env = inner.env
                continue
            done = False
        outer = inner
    return done
