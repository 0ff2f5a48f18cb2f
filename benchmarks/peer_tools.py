"""Writers and readers of ``peers.py``: the bare Q-learning loop logged with each tool, and
each tool's own way of getting every value back into pandas.

Every writer returns the loop's totals; every reader returns ``{key: values}`` in logged
order, having built pandas DataFrames on the way (what a user would analyse). Tools are
imported inside the functions: a run pays only for the tool it uses.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bare_qlearning

Values = dict[str, list[float]]


def _train(seed: int, episodes: int, log_step: Any, log_episode: Any) -> dict[str, Any]:
    counter = [0]

    def on_step(ep: int, t: int, action: int, reward: float, obs: int, td: float) -> None:
        log_step(counter[0], float(reward), td)
        counter[0] += 1

    def on_episode(ep: int, total: float, length: int) -> None:
        log_episode(ep, total, length)

    return bare_qlearning.train(
        seed, episodes, on_step=on_step if log_step else None, on_episode=on_episode
    )


# -- nbtrain ------------------------------------------------------------------------------


def write_nbtrain(mode: str, episodes: int, folder: Path, seed: int) -> dict[str, Any]:
    import nbtrain
    from nbtrain.seeding import worker_seed

    if worker_seed(0, "000001") != seed:
        raise AssertionError(
            "peers.SEED must be nbtrain's seed of worker 000001 in a run of seed 0"
        )
    cfg = nbtrain.TrainConfig(
        env_id="FrozenLake-v1",
        env_kwargs={"is_slippery": False},
        agent="q_learning",
        episodes=episodes,
        max_steps_per_episode=bare_qlearning.MAX_STEPS,
        workers=1,
        seed=0,
        telemetry={"steps": "all" if mode == "step" else "none"},
    )
    run = nbtrain.launch(cfg, db=folder / "nbtrain.sqlite")
    run.wait()
    (folder / "run_id").write_text(run.run_id)
    episodes_df = run.episodes(columns=["total_reward", "length"])
    return {"steps": int(episodes_df["length"].sum()),
            "reward_sum": float(episodes_df["total_reward"].sum())}  # fmt: skip


def read_nbtrain(mode: str, folder: Path) -> Values:
    import msgspec

    import nbtrain

    run = nbtrain.Run.open((folder / "run_id").read_text(), db=folder / "nbtrain.sqlite")
    episodes = run.episodes()
    out: Values = {"total_reward": episodes["total_reward"].tolist(),
                   "length": episodes["length"].astype(float).tolist()}  # fmt: skip
    if mode == "step":
        steps = run.steps()
        out["reward"] = steps["reward"].tolist()
        # extras is a JSON text per step; one msgspec call parses the whole column.
        extras = msgspec.json.decode("[" + ",".join(steps["extras"]) + "]")
        out["td_error"] = [x["td_error"] for x in extras]
    return out


# -- tensorboardX -------------------------------------------------------------------------


def write_tensorboardx(mode: str, episodes: int, folder: Path, seed: int) -> dict[str, Any]:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(logdir=str(folder))
    add = writer.add_scalar

    def log_step(step: int, reward: float, td: float) -> None:
        add("reward", reward, step)
        add("td_error", td, step)

    def log_episode(ep: int, total: float, length: int) -> None:
        add("total_reward", total, ep)
        add("length", length, ep)

    result = _train(seed, episodes, log_step if mode == "step" else None, log_episode)
    writer.close()
    return result


def _tfrecords(path: Path) -> Any:
    """The records of a TFRecord file: u64 length, u32 crc, data, u32 crc (TensorBoard's
    event file layout; tensorboardX ships the protobufs but no reader)."""
    data = path.read_bytes()
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        yield data[pos + 12 : pos + 12 + length]
        pos += 12 + length + 4


def read_tensorboardx(mode: str, folder: Path) -> Values:
    import pandas as pd
    from tensorboardX.proto import event_pb2

    rows: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for record in _tfrecords(path):
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                rows.setdefault(value.tag, []).append((event.step, value.simple_value))
    frames = {tag: pd.DataFrame(r, columns=["step", "value"]) for tag, r in rows.items()}
    return {tag: df["value"].tolist() for tag, df in frames.items()}


# -- MLflow -------------------------------------------------------------------------------


def write_mlflow(mode: str, episodes: int, folder: Path, seed: int) -> dict[str, Any]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = mlflow.create_experiment("bench", artifact_location=str(folder / "artifacts"))
    log = mlflow.log_metric

    def log_step(step: int, reward: float, td: float) -> None:
        log("reward", reward, step=step)
        log("td_error", td, step=step)

    def log_episode(ep: int, total: float, length: int) -> None:
        log("total_reward", total, step=ep)
        log("length", length, step=ep)

    with mlflow.start_run(experiment_id=experiment):
        result = _train(seed, episodes, log_step if mode == "step" else None, log_episode)
    return result


def read_mlflow(mode: str, folder: Path) -> Values:
    import pandas as pd
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("bench")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    out: Values = {}
    for key in run.data.metrics:
        history = client.get_metric_history(run.info.run_id, key)
        df = pd.DataFrame({"step": [m.step for m in history],
                           "value": [m.value for m in history]}).sort_values("step")  # fmt: skip
        out[key] = df["value"].tolist()
    return out


# -- Aim ----------------------------------------------------------------------------------


def write_aim(mode: str, episodes: int, folder: Path, seed: int) -> dict[str, Any]:
    from aim import Run

    run = Run(repo=str(folder), experiment="bench")
    track = run.track

    def log_step(step: int, reward: float, td: float) -> None:
        track(reward, name="reward", step=step)
        track(td, name="td_error", step=step)

    def log_episode(ep: int, total: float, length: int) -> None:
        track(total, name="total_reward", step=ep)
        track(length, name="length", step=ep)

    result = _train(seed, episodes, log_step if mode == "step" else None, log_episode)
    run.close()
    return result


def read_aim(mode: str, folder: Path) -> Values:
    from aim import Repo
    from aim.sdk.index_manager import RepoIndexManager

    repo = Repo(str(folder))
    # A script's runs reach the repo index only when something indexes them (the UI's
    # background indexer does); without this, iter_runs() finds nothing.
    index = RepoIndexManager.get_index_manager(repo)
    for run_hash in repo.list_all_runs():
        index.index(run_hash)
    out: Values = {}
    for run in repo.iter_runs():
        for metric in run.metrics():
            df = metric.dataframe()
            out[metric.name] = df["value"].tolist()
    return out


# -- W&B (offline) ------------------------------------------------------------------------


def write_wandb(mode: str, episodes: int, folder: Path, seed: int) -> dict[str, Any]:
    import wandb

    run = wandb.init(mode="offline", dir=str(folder), project="bench")
    log = run.log

    def log_step(step: int, reward: float, td: float) -> None:
        log({"reward": reward, "td_error": td})

    def log_episode(ep: int, total: float, length: int) -> None:
        log({"total_reward": total, "length": length})

    result = _train(seed, episodes, log_step if mode == "step" else None, log_episode)
    run.finish()
    return result


_BLOCK = 32768  # W&B's .wandb file is a LevelDB log: 32 KiB blocks of framed records
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _leveldb_records(data: bytes) -> Any:
    pos = 7  # ":W&B", a 2-byte magic and a version byte
    parts: list[bytes] = []
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:
            pos += left
            continue
        length, kind = struct.unpack_from("<HB", data, pos + 4)
        if kind == 0 and length == 0:
            pos += left  # zero padding to the end of the block
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            parts = [chunk]
        elif kind == _MIDDLE:
            parts.append(chunk)
        elif kind == _LAST:
            parts.append(chunk)
            yield b"".join(parts)


def read_wandb(mode: str, folder: Path) -> Values:
    import pandas as pd
    from wandb.proto import wandb_internal_pb2

    rows: list[dict[str, Any]] = []
    for path in folder.glob("wandb/offline-run-*/run-*.wandb"):
        for data in _leveldb_records(path.read_bytes()):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            if record.WhichOneof("record_type") == "history":
                rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                             for item in record.history.item})  # fmt: skip
    history = pd.DataFrame(rows)
    return {key: history[key].dropna().tolist() for key in history.columns
            if not key.startswith("_")}  # fmt: skip


Writer = Callable[[str, int, Path, int], dict[str, Any]]
WRITERS: dict[str, Writer] = {"nbtrain": write_nbtrain, "tensorboardX": write_tensorboardx,
                              "mlflow": write_mlflow, "aim": write_aim,
                              "wandb": write_wandb}  # fmt: skip
READERS: dict[str, Callable[[str, Path], Values]] = {
    "nbtrain": read_nbtrain, "tensorboardX": read_tensorboardx, "mlflow": read_mlflow,
    "aim": read_aim, "wandb": read_wandb}  # fmt: skip
