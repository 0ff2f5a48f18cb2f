"""Hypothesis strategies for every wire event (shared by the wire tests)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from nbtrain.wire import events as ev

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
counts = st.integers(min_value=0, max_value=2**40)
text = st.text(max_size=40)
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=32)
common = {"run_id": text, "worker_id": ids}


def event_strategy(*, finite: bool = False) -> st.SearchStrategy[Any]:
    """Any event; ``finite`` leaves out infinities (JSON has no spelling for them)."""
    floats = st.floats(allow_nan=False, allow_infinity=not finite, width=64)
    scalars = st.one_of(st.none(), st.booleans(), ints, floats, text)
    json_like: st.SearchStrategy[Any] = st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(text, children, max_size=4)
        ),
        max_leaves=8,
    )
    extras = st.dictionaries(text, json_like, max_size=3)
    return _events(floats, extras)


@st.composite
def _steps(
    draw: st.DrawFn, floats: st.SearchStrategy[float], extras: st.SearchStrategy[Any]
) -> ev.Steps:
    n = draw(st.integers(min_value=0, max_value=20))

    def column(strategy: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(strategy, min_size=n, max_size=n))

    return ev.Steps(
        run_id=draw(text),
        worker_id=draw(ids),
        ep_index=column(counts),
        step_index=column(counts),
        action=column(st.one_of(counts, st.lists(floats, max_size=4))),
        reward=column(floats),
        terminated=column(st.booleans()),
        truncated=column(st.booleans()),
        obs=column(st.one_of(counts, st.lists(st.lists(floats, max_size=3), max_size=3))),
        extras=column(st.one_of(st.none(), extras)),
        ts=column(floats),
        extras_columns=draw(
            st.none() | st.dictionaries(text, st.lists(floats, min_size=n, max_size=n), max_size=3)
        ),
    )


def _step_rows(floats: st.SearchStrategy[float]) -> st.SearchStrategy[ev.StepRows]:
    row = st.tuples(
        counts, counts, st.one_of(counts, st.lists(floats, max_size=4)), floats,
        st.booleans(), st.booleans(),
        st.one_of(counts, st.lists(st.lists(floats, max_size=3), max_size=3)),
        floats, floats, floats,
    )  # fmt: skip
    return st.builds(ev.StepRows, **common, rows=st.lists(row, max_size=20))


@st.composite
def _episodes(
    draw: st.DrawFn, floats: st.SearchStrategy[float], extras: st.SearchStrategy[Any]
) -> ev.Episodes:
    n = draw(st.integers(min_value=0, max_value=20))

    def column(strategy: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(strategy, min_size=n, max_size=n))

    return ev.Episodes(
        run_id=draw(text),
        worker_id=draw(ids),
        ep_index=column(counts),
        total_reward=column(floats),
        length=column(counts),
        terminated=column(st.booleans()),
        truncated=column(st.booleans()),
        seed=column(counts),
        started_at=column(floats),
        ended_at=column(floats),
        **draw(
            st.fixed_dictionaries({"extras": st.just(column(extras))})
            | st.fixed_dictionaries(
                {  # the built-in tabular agents' ε as a column (wire v5)
                    "extras": st.just([]),
                    "extras_columns": st.dictionaries(
                        text, st.lists(floats, min_size=n, max_size=n), max_size=2
                    ),
                }
            )
        ),
    )


def _events(
    floats: st.SearchStrategy[float], extras: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    return st.one_of(
        _episodes(floats, extras),
        st.builds(
            ev.Started,
            **common,
            pid=counts,
            ts=floats,
            digest=text,
            env_id=text,
            agent=text,
            mode=st.sampled_from(["train", "eval"]),
            episodes=counts,
            start_episode=counts,
        ),
        _steps(floats, extras),
        _step_rows(floats),
        st.builds(
            ev.Episode,
            **common,
            ep_index=counts,
            episode_id=text,
            total_reward=floats,
            length=counts,
            terminated=st.booleans(),
            truncated=st.booleans(),
            seed=counts,
            started_at=floats,
            ended_at=floats,
            extras=extras,
        ),
        st.builds(
            ev.Progress,
            **common,
            ts=floats,
            episodes_done=counts,
            steps_done=counts,
            steps_per_s=floats,
            ep_index=counts,
            epsilon=st.none() | floats,
        ),
        st.builds(
            ev.GridMap,
            **common,
            ep_index=counts,
            kind=st.sampled_from(["frozenlake", "cliffwalking", "taxi"]),
            rows=st.lists(text, max_size=8),
        ),
        st.builds(
            ev.Frame,
            **common,
            ep_index=counts,
            step_index=counts,
            kind=st.sampled_from(["ansi", "rgb_array", "grid"]),
            text=st.none() | text,
            data=st.none() | st.binary(max_size=300),
            shape=st.none() | st.lists(counts, max_size=3),
            position=st.none() | counts,
        ),
        st.builds(ev.Artifact, **common, kind=st.just("policy"), path=text, ts=floats),
        st.builds(
            ev.Ended,
            **common,
            status=st.sampled_from(["completed", "failed", "stopped"]),
            ts=floats,
            episodes_done=counts,
            steps_done=counts,
            error=st.none() | text,
            traceback=st.none() | text,
        ),
    )


events = event_strategy()
json_events = event_strategy(finite=True)
step_rows = _step_rows(st.floats(allow_nan=False, width=64))
