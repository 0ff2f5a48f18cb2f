"""SIGTERM/SIGHUP handling of the command line (cli/signals.py), with real signals sent to
this process; ``handled()`` puts the previous handlers back."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from nbtrain.cli import signals


def test_before_a_run_exists_a_signal_is_raised_like_ctrl_c() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with signals.handled(), pytest.raises(signals.Terminated) as info:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs as os.kill returns
    assert info.value.signum == signal.SIGTERM
    assert isinstance(info.value, KeyboardInterrupt)  # the CLI's Ctrl-C path handles it
    assert signal.getsignal(signal.SIGTERM) is before  # restored


def test_while_launching_a_signal_is_noted_then_stops_the_run() -> None:
    # Regression: a SIGTERM that landed inside launch() (workers started, launch() not yet
    # returned) left a run saying "running" behind a CLI that said "workers stopped".
    stopped = threading.Event()
    with signals.handled() as termination:
        with termination.deferred():
            os.kill(os.getpid(), signal.SIGHUP)  # handled at the next bytecode: not raised
            assert termination.signum == signal.SIGHUP
        assert not stopped.is_set()
        termination.follow(stopped.set)  # launch() returned: the noted signal stops it now
        assert stopped.is_set()


def test_while_following_a_signal_stops_the_run_from_a_thread_and_a_second_is_ignored() -> None:
    stops: list[str] = []
    done = threading.Event()

    def stop() -> None:
        stops.append(threading.current_thread().name)
        done.set()

    with signals.handled() as termination:
        termination.follow(stop)
        os.kill(os.getpid(), signal.SIGTERM)
        assert done.wait(10)
        os.kill(os.getpid(), signal.SIGTERM)  # ignored now: the stop under way goes on
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    assert stops == ["nbtrain-terminate"]
    assert termination.signum == signal.SIGTERM
