"""The sidecar's `referral_steps`: the user tasks whose completion sends or updates a referral.

    "referral_steps": [{"task": "choose_service", "action": "send"},
                       {"task": "follow_up_referral", "action": "record"},
                       {"task": "decide_next_step", "action": "record", "outcome_field": "next_step"}]

`send`: completing the task creates the referral to the service its `service_id` names, for the
`domain` and with the `consent_to_share` in the task's data, in the same transaction
(engine/usecases/referrals.py). `record`: a completion that carries a `status` (with `status_reason`)
or an outcome (`outcome`, or the field `outcome_field` names) updates the task's referral (`referral_id`
in its data). Deploy checks each names a user task of the process; the step is kept in the task's rule.
"""

from __future__ import annotations

from typing import Any

from ._model import ParsedProcess

ACTIONS = ("send", "record")
_KEYS = {"task", "action", "outcome_field"}


def apply_referral_steps(process: ParsedProcess, declared: Any) -> list[str]:
    """Check the declaration; on success put each step into its task's rule (`referral`)."""
    if declared is None:
        return []
    if not isinstance(declared, list):
        return ['"referral_steps" must be a list such as [{"task": "choose_service", "action": "send"}]']
    problems: list[str] = []
    for position, step in enumerate(declared, start=1):
        where = f"referral step {position}"
        if not isinstance(step, dict) or set(step) - _KEYS:
            problems.append(f"{where} must be an object with {', '.join(sorted(_KEYS))}")
            continue
        task, action = step.get("task"), step.get("action")
        if action not in ACTIONS:
            problems.append(f"{where}: action must be one of {', '.join(ACTIONS)}")
        elif task not in process.task_rules:
            problems.append(f"{where}: '{task}' is not a user task of the process")
        elif "referral" in process.task_rules[task]:
            problems.append(f"{where}: task '{task}' has a referral step already")
        else:
            process.task_rules[task]["referral"] = {"action": action,
                                                    "outcome_field": str(step.get("outcome_field") or "outcome")}
    return problems
