"""What a dashboard offers once its run has ended: evaluate the workers' saved policies (the
eval run's dashboard appears below), and Keep / Archive / Delete the run behind the same
confirm step as the RunBrowser's (issue 12's closure dialog).

The base class of :class:`~nbtrain.widgets.RunDashboard`, kept apart so that the dashboard module
stays about live updates. Every failure lands under the widget (its error area) and in the
answer to the view, never only in a log.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from nbtrain.errors import RunError
from nbtrain.widgets._common import RequestWidget
from nbtrain.widgets.retention import archive_target, confirm_summary, in_thread

if TYPE_CHECKING:
    from nbtrain.run import Run

DEFAULT_EVAL_EPISODES = 100


class RunActions(RequestWidget):
    """Evaluate / Keep / Archive / Delete for a :class:`RunDashboard` whose run has ended."""

    # the eval run started from this dashboard, shown below it
    eval_dashboard = anywidget.WidgetTrait().tag(sync=True)
    # where Archive moves the run (the confirm step lets the person change it)
    archive_to = traitlets.Unicode("").tag(sync=True)
    # what the person chose in the closure summary: "", "kept", "archived to …", "deleted: …"
    closure = traitlets.Unicode("").tag(sync=True)

    run_id: str
    _db: Path

    def _run(self) -> Run:
        raise NotImplementedError  # the dashboard's own

    def _install_actions(self) -> None:
        self._handlers.update(
            evaluate=self._evaluate_request,
            summary=self._summary_request,
            keep=self._keep_request,
            archive=self._archive_request,
            delete=self._delete_request,
        )

    def _ended(self) -> Run:
        from nbtrain.statuses import FINAL_STATUSES

        run = self._run()
        going = sorted(w for w, s in run.status().items() if s not in FINAL_STATUSES)
        if going:
            raise RunError(
                f"run {self.run_id} still has workers going ({', '.join(going)}); "
                "stop it or wait until it ends"
            )
        return run

    # -- evaluate --------------------------------------------------------------------------
    def evaluate(self, episodes: int = DEFAULT_EVAL_EPISODES) -> Run:
        """Start an eval run of this run's saved policies (``Run.evaluate``) and show its
        dashboard below this one; returns the eval run.

        Raises
        ------
        RunError
            The run still goes, or a worker has no saved policy.
        ValueError
            ``episodes`` is not a positive integer.
        """
        from nbtrain.widgets.dashboard import RunDashboard

        if isinstance(episodes, bool) or not isinstance(episodes, numbers.Integral) or episodes < 1:
            raise ValueError(f"episodes must be a positive integer, not {episodes!r}")
        evaluation = self._ended().evaluate(episodes=int(episodes))
        old = self.eval_dashboard
        self.eval_dashboard = RunDashboard(evaluation)
        if old is not None:
            old.close()
        return evaluation

    def _evaluate_request(self, params: dict[str, Any], _b: list[bytes]) -> Any:
        text = str(params.get("episodes", DEFAULT_EVAL_EPISODES)).strip()
        try:
            episodes = int(text, 10)
        except ValueError:
            raise ValueError(f"episodes: {text!r} is not an integer") from None
        evaluation = self.evaluate(episodes)
        return {"run_id": evaluation.run_id}

    # -- keep / archive / delete -----------------------------------------------------------
    def keep(self) -> None:
        """Keep the run as it is (the closure summary says so; nothing is changed)."""
        self.closure = "kept"

    def archive(self, to: str | Path | None = None) -> dict[str, int]:
        """Move the run into the archive database ``to`` (default: ``archive_to``, i.e.
        ``{db}-archive.sqlite`` beside the database); returns ``{table: rows}``."""
        target = archive_target(self._db, str(to if to is not None else self.archive_to))
        self.archive_to = str(target)
        counts = self._ended().store.archive_run(self.run_id, to=target)
        self.closure = f"archived to {target}: {_counts_text(counts)}"
        return counts

    def delete(self) -> dict[str, int]:
        """Delete every row of the run and its run folder; returns ``{table: rows}``."""
        counts = self._ended().store.delete_run(self.run_id)
        self.closure = f"deleted: {_counts_text(counts)}"
        return counts

    def _summary_request(self, params: dict[str, Any], _b: list[bytes]) -> Any:
        return confirm_summary(self._run().store, self._db, self.run_id)

    def _keep_request(self, params: dict[str, Any], _b: list[bytes]) -> Any:
        self.keep()
        return {"run_id": self.run_id}

    def _archive_request(self, params: dict[str, Any], _b: list[bytes]) -> Any:
        to = str(params.get("to") or self.archive_to)
        return in_thread(
            self, params["id"], "archive", self.run_id, lambda: self.archive(to), _nothing
        )

    def _delete_request(self, params: dict[str, Any], _b: list[bytes]) -> Any:
        return in_thread(self, params["id"], "delete", self.run_id, self.delete, _nothing)


def _nothing(_counts: dict[str, int]) -> None:
    return None


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {table}" for table, n in counts.items())


__all__ = ["DEFAULT_EVAL_EPISODES", "RunActions"]
