"""The episode loop of a worker: reset, act and learn (or the one-call tabular episode),
record steps and episodes, checkpoint, flush.

The per-step path is kept to a handful of attribute-free operations
(``benchmarks/worker_overhead.py``): everything the loop reads is taken into locals once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from nbtrain.agents.tabular_fused import fused_episode
from nbtrain.seeding import episode_seed
from nbtrain.worker.emitter import FLUSH_INTERVAL
from nbtrain.worker.envchain import time_limit_bypass, unlink_spent_checks
from nbtrain.worker.frames import FrameMaker, grid_event, grid_layout

if TYPE_CHECKING:
    from nbtrain.worker.runtime import Worker

__all__ = ["train_loop"]


def _plain(value: Any) -> Any:
    """Arrays become lists at record time (an env may reuse its observation buffer)."""
    tolist = getattr(value, "tolist", None)
    return value if tolist is None else tolist()


def _bad_action(space: Any, action: Any, exc: Exception) -> ValueError | None:
    """``env.step`` raised: the error naming the agent's action when it is not one of the
    env's (deep inside gymnasium that shows as ``KeyError: 99``); None for the env's own."""
    try:
        valid = bool(space.contains(action))
    except Exception:
        valid = False
    if valid:
        return None
    return ValueError(
        f"the agent's act() returned {action!r} ({type(action).__name__}), which is not an "
        f"action of the environment's action space {space} "
        f"(env.step raised {type(exc).__name__}: {exc})"
    )


def train_loop(w: Worker) -> None:
    """Play ``w``'s episodes from ``cfg.start_episode`` until done or stopped."""
    from gymnasium import spaces

    cfg = w.cfg
    env, agent, emitter, state, flag = w.env, w.agent, w.emitter, w.state, w.flag
    run_id, worker_id = w.run_id, w.worker_id
    train = cfg.mode == "train"
    act, learn, step = agent.act, agent.learn, env.step
    # end_episode is the agent's end-of-episode learning (the ε schedule): not in eval mode
    end_episode = getattr(agent, "end_episode", None) if train else None
    conv_obs = None if isinstance(env.observation_space, spaces.Discrete) else _plain
    conv_act = None if isinstance(env.action_space, spaces.Discrete) else _plain
    steps_cfg = cfg.telemetry.steps
    record = emitter.sink.wants_steps and steps_cfg != "none"
    every = 1 if steps_cfg in ("all", "none") else int(steps_cfg)
    frames = None
    if cfg.telemetry.frames != "none":
        frames = FrameMaker(env, cfg.telemetry.frames, run_id, worker_id)
    frame_every = cfg.telemetry.frame_every
    layout = grid_layout(env)
    delay = cfg.step_delay
    every_ckpt = (cfg.checkpoint_every or 0) if train else 0
    rows = emitter.rows
    append = rows.append
    encode_at = emitter.MAX_STEPS_PER_EVENT
    add_episode = emitter.episodes.append
    flush = w.flush
    now = time.time
    deadline = now() + FLUSH_INTERVAL
    extras: Any = None
    end_extras: Any = None  # end_episode()'s dict, or ε from the one-call episode
    checks_left = True  # gymnasium's one-time checks still in the wrapper chain
    first = cfg.start_episode
    base_seed = cfg.seed
    # Built-in tabular agents: act and learn inline, one call an episode.
    fused = None
    if train and frames is None and not delay and every == 1 and conv_obs is conv_act is None:
        fused = fused_episode(agent, step, flag, state, append if record else None, now, flush)
    # its step rows carry ε and the TD error and its episodes ε: no dict
    emitter.td_extras = fused is not None
    if fused is not None:
        # it returns no per-step extras: the heartbeat's ε until the first episode ends
        state.extras = (None, agent.epsilon)

    for ep in range(cfg.start_episode, cfg.episodes):
        if flag.stop:
            break
        seed = episode_seed(base_seed, ep)  # (state.ep_index is ep already)
        obs, _ = env.reset(seed=seed)
        started_at = now()
        if layout is not None and ep == first:
            # The map does not change between episodes: once per worker process.
            emitter.hold(grid_event(run_id, worker_id, ep, layout))
        if fused is not None:
            total, t, terminated, truncated, deadline, end_extras = fused(obs, ep, deadline)
        else:
            total = 0.0
            t = 0
            next_rec = 0 if record else -1  # t never equals -1: nothing recorded
            next_frame = 0 if frames is not None else -1
            terminated = truncated = False
            while True:
                action = act(obs, explore=train)
                try:  # free unless it raises (3.11's zero-cost exceptions)
                    next_obs, reward, terminated, truncated, _ = step(action)
                except Exception as exc:
                    bad = _bad_action(env.action_space, action, exc)
                    if bad is None:
                        raise
                    raise bad from exc
                if train:
                    extras = learn(obs, action, reward, next_obs, terminated, truncated)
                total += reward
                if t == next_rec:
                    next_rec += every
                    ts = now()
                    append(
                        (
                            ep,
                            t,
                            action if conv_act is None else conv_act(action),
                            reward,
                            terminated,
                            truncated,
                            next_obs if conv_obs is None else conv_obs(next_obs),
                            extras,
                            ts,
                        )
                    )
                    if ts >= deadline:
                        deadline = flush()
                if t == next_frame:
                    next_frame += frame_every
                    frame = frames.frame(ep, t) if frames is not None else None
                    if frame is not None:
                        emitter.emit(frame, push=False)
                t += 1
                state.steps_done += 1
                obs = next_obs
                if terminated or truncated or flag.stop:
                    break
                if delay:
                    deadline = flush()
                    w.sleep(delay)
                    if flag.stop:
                        break
        if not (terminated or truncated):
            break  # stopped mid-episode: no Episode event for it
        if fused is None:  # (the fused episode ended itself for the agent)
            end_extras = end_episode() if end_episode is not None else None
            if not isinstance(end_extras, dict):
                end_extras = {}
        # else end_extras is ε: the emitter sends it as the episodes' extras column
        state.extras = (end_extras, extras)
        ended_at = now()
        add_episode(
            (
                ep,
                float(total),
                t,
                bool(terminated),
                bool(truncated),
                seed,
                started_at,
                ended_at,
                end_extras,
            )
        )
        state.episodes_done += 1
        state.ep_index = ep + 1
        if checks_left:  # once they have run: ~0.37 us a step less (envchain.py)
            checks_left = not unlink_spent_checks(env, rendering=frames is not None)
            bypass = None if checks_left or fused is None else time_limit_bypass(env)
            if bypass is not None:  # and ~0.1 us more: the one call truncates itself
                fused = fused_episode(
                    agent,
                    bypass[0],
                    flag,
                    state,
                    append if record else None,
                    now,
                    flush,
                    limit=bypass[1],
                )
        if len(rows) >= encode_at:
            emitter.encode_steps()
        if every_ckpt and (ep + 1) % every_ckpt == 0 and ep + 1 < cfg.episodes:
            flushed = w.checkpoint(ep + 1)
            if flushed is not None:
                deadline = flushed
        if ended_at >= deadline or delay or ep == first:
            # The first episode goes out at once: a new run shows data without waiting.
            deadline = flush()
    w.discard_snapshot()  # the final save follows (train mode)
    emitter.flush()
