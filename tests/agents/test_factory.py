"""make_agent: builtin, import and pickle refs, and every way they can fail."""

from __future__ import annotations

import base64
import json
import pickle
import subprocess
import sys
import textwrap

import cloudpickle
import gymnasium as gym
import pytest
from gymnasium import spaces

from nbtrain.agents import BUILTIN_AGENTS, Agent, agent_label, make_agent, resolve_factory
from nbtrain.agents.random_agent import RandomAgent
from nbtrain.agents.tabular import ExpectedSarsaAgent, QLearningAgent, SarsaAgent
from nbtrain.worker.config_file import AgentRef

OBS = spaces.Discrete(16)
ACT = spaces.Discrete(4)


class Greedy:
    """The ten-line agent from the protocol docstring."""

    def __init__(self, observation_space, action_space, seed=None, bias=0):
        self.n = action_space.n
        self.bias = bias
        self.seed = seed

    def act(self, obs, explore=True):
        return self.bias % self.n

    def learn(self, obs, action, reward, next_obs, terminated, truncated):
        return {"bias": self.bias}


NOTEBOOK_SOURCE = '''
class CountingAgent:
    """Defined in a notebook cell: lives in __main__, so cloudpickle ships it by value."""

    def __init__(self, observation_space, action_space, seed=None, step=1):
        self.n = int(action_space.n)
        self.step = step
        self.t = seed or 0

    def act(self, obs, explore=True):
        self.t += self.step
        return self.t % self.n

    def learn(self, obs, action, reward, next_obs, terminated, truncated):
        return {"t": self.t}
'''


def notebook_class():
    namespace = {"__name__": "__main__"}
    exec(NOTEBOOK_SOURCE, namespace)
    return namespace["CountingAgent"]


def pickle_ref(obj, name="CountingAgent"):
    payload = base64.b64encode(cloudpickle.dumps(obj)).decode("ascii")
    return AgentRef(kind="pickle", name=name, source_sha256="0" * 64, payload=payload)


@pytest.fixture
def agent_module(tmp_path, monkeypatch):
    name = "nbtrain_agents_testmod"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            from nbtrain.agents.tabular import SarsaAgent

            class Outer:
                class Inner:
                    @staticmethod
                    def make(observation_space, action_space, seed=None, **kw):
                        return SarsaAgent(observation_space, action_space, seed=seed, **kw)

            def broken(observation_space, action_space, seed=None):
                raise RuntimeError("no GPU here")

            def returns_nothing_useful(observation_space, action_space, seed=None):
                return object()

            class NoLearn:
                def __init__(self, observation_space, action_space, seed=None):
                    self.learn = "not callable"

                def act(self, obs, explore=True):
                    return 0

            NOT_CALLABLE = 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("q_learning", QLearningAgent),
        ("sarsa", SarsaAgent),
        ("expected_sarsa", ExpectedSarsaAgent),
        ("random", RandomAgent),
    ],
)
def test_builtin(name, cls):
    assert name in BUILTIN_AGENTS
    agent = make_agent(AgentRef(kind="builtin", name=name), OBS, ACT, seed=5, agent_kwargs={})
    assert type(agent) is cls
    assert agent.seed == 5
    assert isinstance(agent, Agent)


def test_builtin_names_are_exactly_the_documented_ones():
    assert list(BUILTIN_AGENTS) == [
        "q_learning",
        "sarsa",
        "expected_sarsa",
        "tile_sarsa",
        "random",
    ]


def test_builtin_kwargs_are_passed():
    ref = AgentRef(kind="builtin", name="q_learning")
    agent = make_agent(ref, OBS, ACT, seed=1, agent_kwargs={"alpha": 0.3, "epsilon_decay": 0.5})
    assert (agent.alpha, agent.epsilon_decay) == (0.3, 0.5)


def test_import_nested_qualname(agent_module):
    ref = AgentRef(kind="import", name=f"{agent_module}:Outer.Inner.make")
    agent = make_agent(ref, OBS, ACT, seed=2, agent_kwargs={"gamma": 0.5})
    assert type(agent) is SarsaAgent
    assert agent.gamma == 0.5
    assert agent.seed == 2


def test_import_of_a_class():
    ref = AgentRef(kind="import", name="nbtrain.agents.tabular:ExpectedSarsaAgent")
    assert type(make_agent(ref, OBS, ACT, seed=0, agent_kwargs=None)) is ExpectedSarsaAgent


def test_pickled_notebook_class_in_this_process(train):
    cls = notebook_class()
    ref = pickle_ref(cls)
    agent = make_agent(ref, OBS, ACT, seed=3, agent_kwargs={"step": 2})
    assert type(agent).__name__ == "CountingAgent"
    assert [agent.act(0) for _ in range(3)] == [1, 3, 1]
    env = gym.make("FrozenLake-v1", is_slippery=False)
    train(env, agent, 2)


def test_pickled_class_of_registered_module():
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    try:
        payload = cloudpickle.dumps(Greedy)
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    assert __name__.encode() not in payload or b"_make_skeleton_class" in payload
    ref = AgentRef(kind="pickle", name="Greedy", payload=base64.b64encode(payload).decode())
    agent = make_agent(ref, OBS, ACT, seed=0, agent_kwargs={"bias": 6})
    assert isinstance(agent, Agent)
    assert agent.act(0) == 2
    assert agent.learn(0, 2, 0.0, 1, False, False) == {"bias": 6}


def test_pickled_class_loads_with_plain_pickle_in_a_fresh_worker_process(tmp_path):
    """The worker never imports cloudpickle itself: plain pickle finds its reconstructors."""
    ref = pickle_ref(notebook_class())
    script = textwrap.dedent(
        """
        import json, sys
        from nbtrain.agents import make_agent
        from nbtrain.worker.config_file import AgentRef
        import gymnasium as gym
        assert "cloudpickle" not in sys.modules
        ref = AgentRef(**json.loads(sys.stdin.read()))
        env = gym.make("FrozenLake-v1", is_slippery=False)
        agent = make_agent(ref, env.observation_space, env.action_space, 7, {"step": 1})
        print(json.dumps({"actions": [agent.act(0) for _ in range(4)],
                          "cloudpickle_loaded": "cloudpickle" in sys.modules,
                          "type": type(agent).__name__}))
        """
    )
    stdin = json.dumps({"kind": ref.kind, "name": ref.name, "payload": ref.payload})
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result == {"actions": [0, 1, 2, 3], "cloudpickle_loaded": True, "type": "CountingAgent"}


def test_agent_label():
    assert agent_label(AgentRef(kind="builtin", name="sarsa")) == "sarsa"
    assert agent_label(AgentRef(kind="import", name="a.b:c")) == "a.b:c"
    assert agent_label(AgentRef(kind="pickle", name="My.Agent", payload="x")) == (
        "My.Agent (notebook)"
    )


# -- errors -----------------------------------------------------------------------------


def _make(ref, **kwargs):
    return make_agent(ref, OBS, ACT, seed=0, agent_kwargs=kwargs)


def test_unknown_builtin():
    with pytest.raises(
        ValueError, match="unknown built-in agent 'dqn'; built-in agents: q_learning"
    ):
        _make(AgentRef(kind="builtin", name="dqn"))


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown agent kind 'weird'"):
        _make(AgentRef(kind="weird", name="x"))  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["no_colon", ":factory", "pkg.mod:", ""])
def test_malformed_import_path(path):
    with pytest.raises(ValueError, match=r"must look like 'pkg\.module:factory'"):
        _make(AgentRef(kind="import", name=path))


def test_import_failure():
    with pytest.raises(ImportError, match=r"agent 'no_such_pkg_xyz\.mod:f': cannot import module"):
        _make(AgentRef(kind="import", name="no_such_pkg_xyz.mod:f"))


def test_import_of_module_that_raises(tmp_path, monkeypatch):
    (tmp_path / "nbtrain_bad_import_mod.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="no_such_dependency_xyz"):
        _make(AgentRef(kind="import", name="nbtrain_bad_import_mod:f"))


def test_missing_attribute(agent_module):
    with pytest.raises(ImportError, match=f"module '{agent_module}' has no attribute 'Nope'"):
        _make(AgentRef(kind="import", name=f"{agent_module}:Nope"))
    with pytest.raises(ImportError, match=f"{agent_module}:Outer.Inner has no attribute 'mk'"):
        _make(AgentRef(kind="import", name=f"{agent_module}:Outer.Inner.mk"))


def test_not_callable(agent_module):
    with pytest.raises(TypeError, match="resolves to 42, which is not callable"):
        _make(AgentRef(kind="import", name=f"{agent_module}:NOT_CALLABLE"))
    with pytest.raises(TypeError, match="agent 'Answer \\(notebook\\)' resolves to 42"):
        _make(pickle_ref(42, name="Answer"))


def test_factory_raising(agent_module):
    with pytest.raises(ValueError, match="could not be created: RuntimeError: no GPU here") as info:
        _make(AgentRef(kind="import", name=f"{agent_module}:broken"))
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(TypeError, match=r"agent 'q_learning' could not be created: .*'alpah'"):
        _make(AgentRef(kind="builtin", name="q_learning"), alpah=0.1)
    with pytest.raises(
        ValueError, match=r"agent 'sarsa' could not be created: ValueError: alpha=2 "
    ):
        _make(AgentRef(kind="builtin", name="sarsa"), alpha=2)
    with pytest.raises(ValueError, match=r"agent 'q_learning' could not be created: .*bins="):
        make_agent(
            AgentRef(kind="builtin", name="q_learning"),
            gym.make("CartPole-v1").observation_space,
            spaces.Discrete(2),
            seed=0,
            agent_kwargs={},
        )


def test_returned_object_lacks_methods(agent_module):
    with pytest.raises(TypeError, match="without callable act and learn"):
        _make(AgentRef(kind="import", name=f"{agent_module}:returns_nothing_useful"))
    with pytest.raises(TypeError, match="returned NoLearn object without callable learn"):
        _make(AgentRef(kind="import", name=f"{agent_module}:NoLearn"))


def test_seed_in_agent_kwargs_is_rejected():
    with pytest.raises(ValueError, match="agent_kwargs must not contain 'seed'"):
        _make(AgentRef(kind="builtin", name="random"), seed=3)


def test_pickle_errors():
    with pytest.raises(ValueError, match="kind 'pickle' needs a payload"):
        _make(AgentRef(kind="pickle", name="A"))
    with pytest.raises(ValueError, match="payload is not valid base64"):
        _make(AgentRef(kind="pickle", name="A", payload="%%%not base64"))
    garbage = base64.b64encode(b"this is not a pickle").decode()
    with pytest.raises(ValueError, match="agent 'A \\(notebook\\)': payload cannot be unpickled"):
        _make(AgentRef(kind="pickle", name="A", payload=garbage))
    by_reference = base64.b64encode(b"cno_such_module_xyz\nThing\n.").decode()
    with pytest.raises(ImportError, match="needs a module this worker cannot import"):
        _make(AgentRef(kind="pickle", name="A", payload=by_reference))


def test_resolve_factory_does_not_call():
    assert resolve_factory(AgentRef(kind="builtin", name="random")) is RandomAgent
    payload = base64.b64encode(pickle.dumps(len)).decode()
    assert resolve_factory(AgentRef(kind="pickle", name="len", payload=payload)) is len


def test_worker_side_imports_stay_light(tmp_path):
    """The worker imports this package: no pandas, pydantic, pyarrow or widgets."""
    script = textwrap.dedent(
        """
        import sys
        import gymnasium as gym
        from nbtrain.agents import BUILTIN_AGENTS, make_agent
        from nbtrain.worker.config_file import AgentRef
        env = gym.make("FrozenLake-v1")
        box = gym.make("MountainCar-v0")
        for name in BUILTIN_AGENTS:
            e = box if name == "tile_sarsa" else env
            make_agent(AgentRef(kind="builtin", name=name), e.observation_space,
                       e.action_space, 0, {})
        heavy = ("pandas", "pydantic", "pyarrow", "ipywidgets", "anywidget", "cloudpickle")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
