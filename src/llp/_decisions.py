"""The vocabulary of a scheduler's decisions, shared by the search (which makes them)
and the store (which checks them before it writes them)."""

from __future__ import annotations

#: What a scheduler can decide about a configuration (:class:`llp.search.Decision`): propose it
#: (first training), promote it to more data, keep it out of a promotion, drop a proposal
#: before it trained (to stay within the budget), or stop the study. Studies stored by
#: earlier versions also have ``"carried"`` (the meta-model's pick, taken to every rung)
#: and ``"runner-up"`` (one of the prior's next best, sent straight to the top rung).
DECISION_ACTIONS: tuple[str, ...] = (
    "proposed",
    "promoted",
    "kept out",
    "dropped",
    "stopped",
    "carried",
    "runner-up",
)
