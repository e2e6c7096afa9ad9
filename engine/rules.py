"""Who may change what, from which state to which: one small table per subject.

Read a row as: ACTION takes a task (or an instance, a timer, ...) from one of FROM to TO; users of ROLES
(admins always) may take it when every GUARD holds; it is recorded as EVENT with the old and new value
of FIELD. The use cases apply a row through `usecases/transitions.py` (lock, check, change, record);
`allowed_actions` answers from the same rows what a user may do now; docs/state-machine.md is rendered
from them (`carepath docs rules`). The idea is Prefect's orchestration rules (FROM_STATES, TO_STATES,
reject), kept to plain data. Everything here is pure: no database, no HTTP.

A refusal is checked in this order, so that it never tells more than the user may know:
role (403), the subject is visible to the user (404, as a read answers), from-state (409), guards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .errors import CarePathError, Conflict, InvalidTransition, NotFound, PermissionDenied
from .identity import Principal, Role, may_see
from .model import (
    EVERYONE,
    DeliveryState,
    ExternalTaskState,
    GrantState,
    InboxState,
    InstanceStatus,
    MessageState,
    NotificationState,
    PartnerState,
    PatientState,
    ReferralStatus,
    ServiceStatus,
    TaskState,
    TimerState,
    UserState,
    VersionState,
    audience_key,
)

WORKERS = (Role.COORDINATOR, Role.CLINICAL_LEAD, Role.SUPERVISOR)
SUPERVISORS = (Role.SUPERVISOR,)
SYSTEM = "the engine"  # who takes the rows without roles: the engine, the scheduler, a projection


def sees_unrouted(principal: Principal) -> bool:
    """Supervisors also see (and route) the tasks nobody can pick up; lists ask the same in SQL."""
    return principal.role is Role.SUPERVISOR


def is_unrouted(assignee: str | None, audience: Iterable[str], staffed: frozenset[str]) -> bool:
    """Nobody can pick the task up: unassigned, offered to no one by name nor to everyone, and none of its
    groups has an active member (queries._unrouted says the same in SQL, for lists)."""
    keys = list(audience)
    if assignee is not None or any(not key.startswith("group:") for key in keys):
        return False
    return not ({key.split(":", 1)[1] for key in keys} & staffed)


@dataclass(frozen=True)
class TaskFacts:
    """What the rules read of a task. `staffed` (groups with an active member) is only needed for a task
    nobody is offered to by name: a callable reads it when, and only when, a rule asks."""

    id: str
    name: str
    state: TaskState
    assignee: str | None = None
    owner: str | None = None
    audience: tuple[str, ...] = ()
    has_draft: bool = False
    staffed: frozenset[str] | Callable[[], frozenset[str]] = frozenset()
    patient_id: str | None = None

    @classmethod
    def of(cls, row: Any, staffed: frozenset[str] | Callable[[], frozenset[str]]) -> TaskFacts:
        """From a `tasks` row (or anything with its columns)."""
        return cls(id=row.id, name=row.name, state=row.state, assignee=row.assignee, owner=row.owner,
                   audience=tuple(row.audience or ()), has_draft=bool(row.draft), staffed=staffed,
                   patient_id=row.patient_id)

    @property
    def groups(self) -> set[str]:
        return {key.split(":", 1)[1] for key in self.audience if key.startswith("group:")}

    @property
    def unrouted(self) -> bool:
        if self.assignee is not None or any(not key.startswith("group:") for key in self.audience):
            return False  # decided without the staffed groups
        staffed = self.staffed() if callable(self.staffed) else self.staffed
        return is_unrouted(self.assignee, self.audience, staffed)

    def visible_to(self, principal: Principal) -> bool:
        """In the user's view: theirs, or offered to them, their groups or everyone (the worklists' rule);
        supervisors also see the tasks nobody can pick up, to route them."""
        if may_see(principal, self.assignee, self.audience):
            return True
        return sees_unrouted(principal) and self.unrouted

    def not_found(self) -> NotFound:
        return NotFound(f"task {self.id} does not exist")

    def hidden(self, principal: Principal) -> CarePathError:
        """Why a user who may not see the task cannot act on it: not found, unless a break-glass grant lets
        them read it (then they know it exists, and are told the grant reads only)."""
        if principal.grant_for(self.patient_id) is not None:
            return PermissionDenied(READ_ONLY.format(what=f"task '{self.name}'", user=principal.name))
        return self.not_found()


READ_ONLY = ("break-glass access lets user '{user}' read the patient's record, not act on it: {what} belongs "
             "to another team")


@dataclass(frozen=True)
class InstanceFacts:
    id: str
    state: InstanceStatus
    readable: bool = True  # the caller may read the instance (instances_visible_to)
    glass_only: bool = False  # ... only under a break-glass grant, which reads and does not act

    def visible_to(self, principal: Principal) -> bool:
        return self.readable and not self.glass_only

    def not_found(self) -> NotFound:
        return NotFound(f"instance {self.id} does not exist")

    def hidden(self, principal: Principal) -> CarePathError:
        if self.readable and self.glass_only:
            return PermissionDenied(READ_ONLY.format(what=f"instance {self.id}", user=principal.name))
        return self.not_found()


@dataclass(frozen=True)
class GrantFacts:
    """A break-glass grant: its holder sees it, and so do those who review every grant (auditors, admins);
    to anyone else it does not exist."""

    id: int
    holder: str
    state: GrantState

    def visible_to(self, principal: Principal) -> bool:
        return self.holder == principal.name or principal.is_admin or principal.role in GRANT_REVIEWERS

    def not_found(self) -> NotFound:
        return NotFound(f"break-glass grant {self.id} does not exist")

    def hidden(self, principal: Principal) -> CarePathError:
        return self.not_found()


@dataclass(frozen=True)
class UserFacts:
    """What the rules read of a user account. `admins` (the active admins) is read only when a rule asks;
    `session`: the web session an `end_session` ends (its owner is this user)."""

    name: str
    state: UserState
    role: Role
    admins: frozenset[str] | Callable[[], frozenset[str]] = frozenset()
    session: int | None = None

    @classmethod
    def of(cls, row: Any, admins: frozenset[str] | Callable[[], frozenset[str]] = frozenset(),
           session: int | None = None) -> UserFacts:
        """From a `users` row."""
        return cls(row.name, UserState.ACTIVE if row.active else UserState.DEACTIVATED, Role(row.role), admins,
                   session)

    @property
    def last_admin(self) -> bool:
        admins = self.admins() if callable(self.admins) else self.admins
        return admins == {self.name}

    def visible_to(self, principal: Principal) -> bool:
        return True  # who may not manage users is refused by role first; sessions by their guard

    def not_found(self) -> NotFound:
        return NotFound(f"there is no user '{self.name}'")

    def hidden(self, principal: Principal) -> CarePathError:
        return self.not_found()


@dataclass(frozen=True)
class PartnerFacts:
    """A partner organization of the registry: who may not manage it is refused by role first."""

    id: str
    state: PartnerState

    def visible_to(self, principal: Principal) -> bool:
        return True

    def not_found(self) -> NotFound:
        return NotFound(f"there is no partner organization '{self.id}'")

    def hidden(self, principal: Principal) -> CarePathError:
        return self.not_found()


@dataclass(frozen=True)
class ExternalTaskFacts:
    """An external task and the worker asking (`asked_by`, from the request): the workers of a care setting
    see every external task, as integration accounts reach every instance."""

    id: str
    topic: str
    state: ExternalTaskState
    worker_id: str | None = None
    asked_by: str | None = None

    def visible_to(self, principal: Principal) -> bool:
        return True

    def not_found(self) -> NotFound:
        return NotFound(f"external task {self.id} does not exist")

    def hidden(self, principal: Principal) -> CarePathError:
        return self.not_found()


@dataclass(frozen=True)
class ReferralFacts:
    """A referral: staff see it when they may read its episode; an integration account only when it is the
    organization's own (`partner_account`), as a CBO may update only the referral Tasks it owns."""

    id: str
    state: ReferralStatus
    readable: bool
    partner_account: str | None
    consent: bool = True  # false once the patient withdrew consent to share with the organization

    @classmethod
    def of(cls, row: Any) -> ReferralFacts:
        """A referral row the caller was found to read."""
        return cls(row.id, ReferralStatus(row.status), True, row.partner_account, row.consent)

    def visible_to(self, principal: Principal) -> bool:
        if principal.role is Role.INTEGRATION:
            return self.partner_account is not None and self.partner_account == principal.name
        return self.readable

    def not_found(self) -> NotFound:
        return NotFound(f"referral {self.id} does not exist")

    def hidden(self, principal: Principal) -> CarePathError:
        return self.not_found()


Facts = TaskFacts | InstanceFacts | GrantFacts | UserFacts | PartnerFacts | ExternalTaskFacts | ReferralFacts


@dataclass(frozen=True)
class Guard:
    """A condition beyond role and state. `people`: a check on who acts, which admins always pass;
    otherwise a check on the subject itself (e.g. it was delegated), which binds admins too."""

    says: str
    holds: Callable[[Any, Principal], bool]  # reads a TaskFacts or a UserFacts
    refusal: Callable[[Any, Principal], CarePathError]
    people: bool = True


def supervises(task: TaskFacts, principal: Principal) -> bool:
    if principal.role is not Role.SUPERVISOR:
        return principal.is_admin
    offered_to_everyone = audience_key("all", EVERYONE) in task.audience
    return bool(task.groups & principal.groups) or offered_to_everyone or task.unrouted


NOT_SOMEONE_ELSES = Guard(
    "unclaimed or theirs", lambda t, p: t.assignee in (None, p.name),
    lambda t, p: Conflict(f"task '{t.name}' is claimed by {t.assignee}"))
CLAIMED = Guard(
    "someone holds it", lambda t, p: t.assignee is not None,
    lambda t, p: InvalidTransition(f"task '{t.name}' is not claimed by anyone"), people=False)
HOLDER_OR_SUPERVISOR = Guard(
    "they hold it, or supervise one of its groups",
    lambda t, p: t.assignee == p.name or supervises(t, p),
    lambda t, p: PermissionDenied(f"task '{t.name}' is claimed by {t.assignee}; only they, a supervisor of "
                                  "its group or an admin can release it"))
SUPERVISES = Guard(
    "they supervise one of its groups (or it is offered to everyone, or nobody can pick it up)", supervises,
    lambda t, p: PermissionDenied(f"user '{p.name}' supervises none of the groups of task '{t.name}'"))
HOLDER = Guard(
    "they hold it", lambda t, p: t.assignee == p.name,
    lambda t, p: Conflict(f"only the task's assignee can delegate it (it is {t.assignee or 'unclaimed'})"))
DELEGATED = Guard(
    "it was delegated", lambda t, p: t.owner is not None,
    lambda t, p: InvalidTransition(f"task '{t.name}' was not delegated"), people=False)
DELEGATE = Guard(
    "they are the delegate", lambda t, p: t.assignee == p.name,
    lambda t, p: Conflict(f"task '{t.name}' is delegated to {t.assignee}; only they can resolve it"))


@dataclass(frozen=True)
class Rule:
    action: str
    title: str  # "Claiming a task": how refusals and the docs name it
    from_states: tuple[StrEnum, ...]
    to: tuple[StrEnum, ...] = ()  # () : the state does not change; several: `note` says which
    roles: tuple[Role, ...] = ()  # () : only the engine takes it (admins may take every other row)
    guards: tuple[Guard, ...] = ()
    event: str | None = None
    field: str | None = None  # the column whose old and new values the event records
    noop: Callable[[Any, Principal], bool] | None = None  # already so: succeeds, changes nothing
    note: str = ""

    @property
    def by_system(self) -> bool:
        return not self.roles


OPEN = (TaskState.READY, TaskState.IN_PROGRESS, TaskState.ON_HOLD)
WORKABLE = (TaskState.READY, TaskState.IN_PROGRESS)
ANY_TASK_STATE = tuple(TaskState)


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {rule.action: rule for rule in rules}


TASK_RULES = _rules(
    Rule("claim", "Claiming a task", WORKABLE, (), WORKERS, (NOT_SOMEONE_ELSES,), "task_claimed", "assignee",
         noop=lambda t, p: t.assignee == p.name),
    Rule("unclaim", "Releasing a task", WORKABLE, (), WORKERS, (CLAIMED, HOLDER_OR_SUPERVISOR),
         "task_unclaimed", "assignee"),
    Rule("assign", "Assigning a task to someone", WORKABLE, (), SUPERVISORS, (SUPERVISES,), "task_assigned",
         "assignee", note="to an active user; assigning it to its assignee changes nothing"),
    Rule("delegate", "Delegating a task", WORKABLE, (), WORKERS, (HOLDER,), "task_delegated", "assignee",
         note="the holder becomes its owner; it comes back to them when the delegate resolves it"),
    Rule("resolve", "Resolving a delegated task", WORKABLE, (), WORKERS, (DELEGATED, DELEGATE), "task_resolved",
         "assignee", note="back to its owner"),
    Rule("hold", "Putting a task on hold", WORKABLE, (TaskState.ON_HOLD,), WORKERS, (NOT_SOMEONE_ELSES,),
         "task_held", "state", note="with a reason"),
    Rule("resume", "Resuming a task", (TaskState.ON_HOLD,), (TaskState.READY, TaskState.IN_PROGRESS), WORKERS, (),
         "task_resumed", "state", note="with a reason; in-progress when a draft is saved, else ready"),
    Rule("save_draft", "Saving a draft", WORKABLE, (TaskState.IN_PROGRESS,), WORKERS, (NOT_SOMEONE_ELSES,),
         "task_draft_saved", "state", note="claims an unclaimed task first (task_claimed)"),
    Rule("complete", "Completing a task", WORKABLE, (TaskState.COMPLETED,), WORKERS, (NOT_SOMEONE_ELSES,),
         "task_completed", "state", note="claims an unclaimed task first (task_claimed); the form is checked"),
    Rule("comment", "Commenting on a task", ANY_TASK_STATE, (), WORKERS, (), "task_comment"),
    Rule("set_priority", "Changing a task's priority", OPEN, (), SUPERVISORS, (SUPERVISES,),
         "task_priority_changed", "priority"),
    Rule("set_due_date", "Changing a task's due date", OPEN, (), SUPERVISORS, (SUPERVISES,),
         "task_due_date_changed", "due_date", note="with a reason; its alerts are rescheduled"),
    Rule("release", "Releasing a deactivated user's task", OPEN, (), (Role.ADMIN,), (), "task_released",
         "assignee", note="part of deactivating its holder: back to its owner if delegated to them, else to its "
         "queue; a task they delegated keeps its delegate and loses its owner (field `owner`)"),
    Rule("engine_complete", "The engine completes a task", OPEN, (TaskState.COMPLETED,),
         note="the workflow ran past the task completed by `complete` (no second event)"),
    Rule("engine_cancel", "The engine cancels a task", OPEN, (TaskState.CANCELLED,), event="task_cancelled",
         field="state", note="a timer fired, another branch won, the episode was cancelled"),
)

ACTIVE = (InstanceStatus.RUNNING, InstanceStatus.INCIDENT)
INSTANCE_ROLES = (Role.CLINICAL_LEAD, Role.COORDINATOR, Role.SUPERVISOR)
# Systems (a scheduling system, an ADT feed) start pathways and send messages, and do nothing else.
SENDERS = (*INSTANCE_ROLES, Role.INTEGRATION)
MIGRATORS = (Role.CLINICAL_LEAD,)  # who own the pathways (admins always)

INSTANCE_RULES = _rules(
    Rule("start", "Starting a pathway", (), (InstanceStatus.RUNNING,), SENDERS, (), "instance_started",
         note="a message start event starts one too"),
    Rule("cancel", "Cancelling an instance", ACTIVE, (InstanceStatus.CANCELLED,), INSTANCE_ROLES, (), "cancelled",
         "status", note="with a reason; its open tasks, timers and waits are cancelled"),
    Rule("cancel_by_feed", "A cancelled ADT event cancels the episode it started", ACTIVE,
         (InstanceStatus.CANCELLED,), (Role.INTEGRATION,), (), "cancelled", "status",
         note="A11 (cancel admit or visit) / A13 (cancel discharge): only the episode that the cancelled event "
         "started (same visit number, a pathway the cancelled event type starts), with the reason"),
    Rule("retry", "Retrying an incident", (InstanceStatus.INCIDENT,), (InstanceStatus.RUNNING,), INSTANCE_ROLES,
         (), "retried", note="runs the failed step again, with corrected data merged in first"),
    Rule("migrate", "Moving an episode to another version of its pathway", ACTIVE, (), MIGRATORS, (),
         "instance_migrated", "pathway_version", note="its status is unchanged; open tasks keep their assignee, "
         "claim, draft and due date, waiting timers their due time; an episode whose current step the new "
         "version lacks stays as it was (docs/migrations.md)"),
    Rule("engine_complete", "The pathway ends", ACTIVE, (InstanceStatus.COMPLETED,),
         event="completed", field="status", note="from incident when a retried step runs to the end"),
    Rule("engine_incident", "A step fails", (InstanceStatus.RUNNING,), (InstanceStatus.INCIDENT,),
         event="incident", field="status"),
    Rule("engine_resolve", "A retried step succeeds", (InstanceStatus.INCIDENT,), (InstanceStatus.RUNNING,),
         event="incident_resolved", field="status"),
)

TIMER_RULES = _rules(
    Rule("schedule", "The engine waits for a timer", (), (TimerState.PENDING,), event="timer_scheduled"),
    Rule("fire", "The scheduler fires a due timer", (TimerState.PENDING,), (TimerState.FIRED,), event="timer_fired",
         note="a cycle timer stays pending with its next due time; a deadline alert records its alert "
         "(task_reminder_alert, task_overdue_alert) and a measure window measure_outcomes instead"),
    Rule("retry_later", "Firing failed; tried again later", (TimerState.PENDING,), (TimerState.PENDING,),
         event="timer_retry_scheduled", note="stays pending, due again after a backoff"),
    Rule("give_up", "Firing failed too often", (TimerState.PENDING,), (TimerState.FAILED,), event="timer_failed",
         note="or a deadline alert could not be sent (task_alert_failed); a timer its instance could not "
         "consume (the instance is in incident, which is recorded) is marked failed unrecorded"),
    Rule("cancel", "The activity ended first", (TimerState.PENDING,), (TimerState.CANCELLED,),
         event="timer_cancelled", field="state", note="deadline alerts end with their task (one statement), and a "
         "timer whose episode ended before it fired is cancelled by the scheduler, both unrecorded"),
)

MESSAGE_RULES = _rules(
    Rule("send", "Sending a message", (), (MessageState.BUFFERED, MessageState.DELIVERED, MessageState.STARTED),
         SENDERS, event="message_received", note="recorded on each instance it reaches, else as message_buffered; "
         "reaches only instances the sender may read (integration accounts: every instance); a name no pathway "
         "in use catches or starts with is refused"),
    Rule("buffer", "No catch waits for it", (), (MessageState.BUFFERED,), event="message_buffered"),
    Rule("deliver", "A waiting catch receives it", (MessageState.BUFFERED,), (MessageState.DELIVERED,),
         event="message_received", note="at once, or later when a catch starts waiting"),
    Rule("start", "It starts an instance", (MessageState.BUFFERED,), (MessageState.STARTED,),
         event="message_received", note="a message start event"),
    Rule("expire", "Its time to live ends", (MessageState.BUFFERED,), (MessageState.EXPIRED,),
         note="the scheduler's sweep, one statement for all, unrecorded"),
    Rule("refuse", "It is beyond the JSON bounds", (MessageState.BUFFERED,), (MessageState.EXPIRED,),
         event="message_refused", field="state",
         note="buffered before the bounds existed; refused when an instance would receive it"),
)

NOTIFICATION_RULES = _rules(
    Rule("deliver", "A channel delivered it", (NotificationState.PENDING,), (NotificationState.DELIVERED,),
         event="notification_delivered"),
    Rule("retry_later", "Delivery failed; tried again later", (NotificationState.PENDING,),
         (NotificationState.PENDING,), event="notification_failed", note="stays pending, tried again after a "
         "backoff"),
    Rule("give_up", "Delivery failed too often", (NotificationState.PENDING,), (NotificationState.FAILED,),
         event="notification_failed"),
)

# Who may break the glass: the people who care for patients in teams, when a patient outside their teams
# needs them (clinical leads, auditors and admins read every record already; integration accounts read none).
BREAK_GLASS_ROLES = (Role.COORDINATOR, Role.SUPERVISOR)
GRANT_REVIEWERS = (Role.AUDITOR,)  # review every grant, and may end anyone's (admins too)
BREAK_GLASS_MINUTES, BREAK_GLASS_MAX_MINUTES = 60, 240  # how long a grant lasts unless asked otherwise; at most

GRANT_RULES = _rules(
    Rule("break_glass", "Breaking the glass (emergency access to a patient outside one's teams)", (),
         (GrantState.ACTIVE,), BREAK_GLASS_ROLES, (), "break_glass_granted",
         note=f"with a reason; for {BREAK_GLASS_MINUTES} minutes unless fewer or more are asked (at most "
         f"{BREAK_GLASS_MAX_MINUTES}); the user reads every "
         "instance and task of that patient, and acts on none beyond their teams; each read is marked with the "
         "grant"),
    Rule("end", "Ending emergency access early", (GrantState.ACTIVE,), (GrantState.ENDED,),
         (*BREAK_GLASS_ROLES, *GRANT_REVIEWERS), (), "break_glass_ended", "ended_at",
         note="the holder ends their own grant, an auditor or an admin anyone's (another user's grant is not "
         "found); from then on the grant widens nothing"),
    Rule("expire", "The grant's time ends", (GrantState.ACTIVE,), (GrantState.EXPIRED,),
         note="nothing is written: from its end time on, the grant widens nothing"),
)

USER_ADMINS = (Role.ADMIN,)
SIGNS_IN = Guard(
    "not an integration account", lambda u, p: u.role is not Role.INTEGRATION,
    lambda u, p: Conflict(f"user '{u.name}' is an integration account: a system calls the API with a token "
                          "(`carepath user token`), it does not sign in to the web app"), people=False)
NOT_THEMSELF = Guard(
    "not themself", lambda u, p: u.name != p.name,
    lambda u, p: Conflict(f"you cannot deactivate yourself ('{u.name}'); another admin can"), people=False)
NOT_LAST_ADMIN = Guard(
    "not the last active admin", lambda u, p: not u.last_admin,
    lambda u, p: Conflict(f"'{u.name}' is the last active admin: make another user admin before deactivating "
                          "them"), people=False)
OWN_SESSION = Guard(
    "their own session", lambda u, p: u.name == p.name,
    lambda u, p: NotFound(f"there is no open session {u.session}"))
EVERY_USER = tuple(role for role in Role if role is not Role.INTEGRATION)  # who signs in to the web app
BOTH = (UserState.ACTIVE, UserState.DEACTIVATED)

USER_RULES = _rules(
    Rule("add", "Adding a user", (), (UserState.ACTIVE,), USER_ADMINS, (), "user_added",
         note="with a first API token; `carepath user add` on the server's machine is its operator's"),
    Rule("set_groups", "Changing a user's groups", BOTH, (), USER_ADMINS, (), "user_groups_changed", "groups",
         note="their open tasks follow at once (candidates are groups)"),
    Rule("set_password", "Setting a user's password", (UserState.ACTIVE,), (), USER_ADMINS, (SIGNS_IN,),
         "password_set", note="sessions already signed in stay; `carepath user password` is the operator's"),
    Rule("issue_token", "Issuing an API token", (UserState.ACTIVE,), (), USER_ADMINS, (), "token_issued",
         note="earlier tokens keep working until revoked or expired"),
    Rule("revoke_token", "Revoking an API token", BOTH, (), USER_ADMINS, (), "token_revoked",
         note="revoking a revoked token changes nothing"),
    Rule("deactivate", "Deactivating a user", BOTH, (UserState.DEACTIVATED,), USER_ADMINS,
         (NOT_THEMSELF, NOT_LAST_ADMIN), "user_deactivated", "active",
         noop=lambda u, p: u.state is UserState.DEACTIVATED,
         note="their tokens are revoked, their sessions end at their next request, their open tasks are released "
         "(task row `release`); deactivating a deactivated user changes nothing. No row reactivates a user"),
    Rule("end_session", "Ending a web session", BOTH, (), EVERY_USER, (OWN_SESSION,), "session_ended",
         note="from the sessions page; someone else's session is not found (admins end anyone's)"),
    Rule("provider_sync", "The identity provider signs a user in", (UserState.ACTIVE,), (),
         event="user_role_changed", note="also `user_added`, `user_groups_changed` (`by: oidc`): the first sign-in "
         "makes the user; later ones change role and groups only with CAREPATH_OIDC_ROLES_FROM_PROVIDER=true"),
)

PATHWAY_AUTHORS = (Role.CLINICAL_LEAD,)

VERSION_RULES = _rules(
    Rule("deploy", "Deploying pathways", (), (VersionState.CURRENT,), PATHWAY_AUTHORS, (), "pathway_deployed",
         note="a package identical to a stored version answers that version and writes nothing; the version "
         "that was current becomes older and keeps its running episodes"),
    Rule("retire", "Retiring a pathway version", (VersionState.CURRENT, VersionState.OLDER),
         (VersionState.RETIRED,), PATHWAY_AUTHORS, (), "pathway_retired",
         note="its running episodes go on; no new episode starts on it; retiring a retired version changes "
         "nothing"),
)

# Who may merge and unmerge patients: the systems that own patient identity (the EHR's master patient index,
# sending ADT A40/A37 as an integration account) and admins, who fix what a feed cannot. Not supervisors or
# clinical leads: a wrong merge shows one patient's record to another's care team, so it is a records-office
# decision, made where the identities are mastered.
PATIENT_MERGERS = (Role.INTEGRATION,)

PATIENT_RULES = _rules(
    Rule("create", "A patient is named for the first time", (), (PatientState.ACTIVE,),
         note="by a start (its patient id or patient) or a message whose identifiers match no patient; a start "
         "whose identifiers match a patient adds the new ones to it; identifiers of two different patients "
         "are refused (409): merge them first"),
    Rule("update", "Updating a patient's demographics", (PatientState.ACTIVE, PatientState.MERGED), (),
         PATIENT_MERGERS, (), "patient_updated", note="name, birth date, phone, address (ADT A08); the event "
         "names the fields that changed, not their values"),
    Rule("merge", "Merging a patient into another", (PatientState.ACTIVE,), (PatientState.MERGED,),
         PATIENT_MERGERS, (), "patient_merged", "merged_into",
         note="with a reason; links the merged patient to the survivor and moves nothing: searches by either "
         "find both patients' episodes, tasks, reads and grants; refused for a patient into itself or into one "
         "merged into it (409)"),
    Rule("unmerge", "Undoing a merge", (PatientState.MERGED,), (PatientState.ACTIVE,), PATIENT_MERGERS, (),
         "patient_unmerged", "merged_into", note="with a reason; the two identities separate again"),
)

# A message from outside (HL7 v2 over MLLP, FHIR notifications over HTTP), from its receipt to its outcome
# (usecases/inbox.py).
INBOX_RULES = _rules(
    Rule("receive", "A message is received", (), (InboxState.RECEIVED,),
         note="stored before it is acknowledged (AA; FHIR: 202); a resend (same sender MSH-3^MSH-4 and MSH-10; FHIR: "
         "the same integration account and Bundle id or Encounter visit, status and period) is acknowledged again "
         "and stored once; what fails the checks is answered AE or AR (FHIR: 4xx) and not stored; a FHIR sender "
         "is an integration account's bearer token"),
    Rule("start", "It starts an episode", (InboxState.RECEIVED,), (InboxState.STARTED,),
         note="processed in one transaction, after every earlier message of the same patient"),
    Rule("deliver", "It reaches a running episode", (InboxState.RECEIVED,), (InboxState.DELIVERED,)),
    Rule("nothing_to_do", "No routing rule matches it", (InboxState.RECEIVED,), (InboxState.NOTHING_TO_DO,),
         note="the outcome says what was looked for"),
    Rule("fail", "Processing it fails", (InboxState.RECEIVED,), (InboxState.FAILED,),
         note="the outcome says why; nothing else the processing did is kept"),
    Rule("reprocess", "Reprocessing a failed message", (InboxState.FAILED,), (InboxState.RECEIVED,), (Role.ADMIN,),
         (), "inbox_message_reprocessed", "state",
         note="after fixing the cause (a mapping, a pathway); processed again in order"),
    Rule("purge", "Its raw payload is dropped", tuple(InboxState), (),
         note="after CAREPATH_INBOX_RETENTION_DAYS: the scheduler's sweep, one statement, unrecorded; the "
         "metadata stays"),
)

# Who may load a resource directory (HSDS 3.0): admins only, as for the other data a whole care setting shares.
# Any signed-in worker may search it; a referral needs nothing more than reading it.
DIRECTORY_RULES = _rules(
    Rule("import", "Importing a resource directory", (), tuple(ServiceStatus), (Role.ADMIN,), (),
         "resources_imported", note="each service takes the status its dataset gives; services are created or "
         "updated in place by their HSDS id, each whole or not at all; a bad record is reported (file, row or "
         "item, service id, reason) and skipped; nothing is deleted"),
)

# Who may search and read the directory: the workers who refer patients, and admins; not auditors (it is no
# part of a patient's record) nor integration accounts. A read, so no row above: `check_directory_reader`.
DIRECTORY_READERS = WORKERS


def check_directory_reader(principal: Principal) -> None:
    if not (principal.is_admin or principal.role in DIRECTORY_READERS):
        allowed = ", ".join(r.value for r in (*DIRECTORY_READERS, Role.ADMIN))
        raise PermissionDenied(f"searching the resource directory needs one of the roles {allowed}; user "
                               f"'{principal.name}' is {principal.role.value}")


# The registry of partner organizations (usecases/partners.py): the only place an outbound endpoint comes from
# (never imported directory data nor a diagram), so only admins write it. Workers may read it (which
# organization takes electronic referrals); the signing secret is shown once, when made, and never read back.
PARTNER_ADMINS = (Role.ADMIN,)
PARTNER_RULES = _rules(
    Rule("add", "Adding a partner organization", (), (PartnerState.ACTIVE,), PARTNER_ADMINS, (), "partner_added",
         note="its endpoint https (http only to a loopback address when CAREPATH_PARTNER_ALLOW_HTTP_LOOPBACK is "
         "set), its integration account of role integration; answers the signing secret once"),
    Rule("update", "Changing a partner organization", tuple(PartnerState), (), PARTNER_ADMINS, (),
         "partner_updated", note="name, endpoint, directory organizations, integration account; the event names "
         "the fields that changed"),
    Rule("rotate_secret", "Replacing a partner's signing secret", tuple(PartnerState), (), PARTNER_ADMINS, (),
         "partner_secret_rotated", note="answers the new secret once; deliveries sent from then on are signed "
         "with it"),
    Rule("deactivate", "Deactivating a partner organization", (PartnerState.ACTIVE,), (PartnerState.INACTIVE,),
         PARTNER_ADMINS, (), "partner_deactivated", "active",
         note="nothing more is sent to it (its waiting deliveries become dead) and its account acts for it no more"),
    Rule("activate", "Reactivating a partner organization", (PartnerState.INACTIVE,), (PartnerState.ACTIVE,),
         PARTNER_ADMINS, (), "partner_activated", "active"),
)
PARTNER_READERS = WORKERS


def check_partner_reader(principal: Principal) -> None:
    if not (principal.is_admin or principal.role in PARTNER_READERS):
        allowed = ", ".join(r.value for r in (*PARTNER_READERS, Role.ADMIN))
        raise PermissionDenied(f"reading the partner organizations needs one of the roles {allowed}; user "
                               f"'{principal.name}' is {principal.role.value}")


# Outbound deliveries to partners' endpoints (usecases/outbox.py): enqueued in the transaction of the change
# they announce, sent afterwards by the scheduler. Their payloads may carry a patient's data: admins only read
# them, and retry the dead ones.
DELIVERY_RULES = _rules(
    Rule("enqueue", "A change enqueues a delivery", (), (DeliveryState.PENDING,),
         note="in the same transaction as the change; an idempotency key already enqueued answers that delivery"),
    Rule("deliver", "The endpoint accepts it (2xx)", (DeliveryState.PENDING, DeliveryState.FAILED),
         (DeliveryState.DELIVERED,), note="signed POST, outside any transaction, redirects not followed"),
    Rule("retry_later", "An attempt fails; tried again later", (DeliveryState.PENDING, DeliveryState.FAILED),
         (DeliveryState.FAILED,), note="network error, timeout, 408, 429 or 5xx: due again after an exponential "
         "backoff on the product's clock"),
    Rule("give_up", "It cannot be delivered", (DeliveryState.PENDING, DeliveryState.FAILED), (DeliveryState.DEAD,),
         note="another 4xx or a redirect at once; or the last allowed attempt failed; or the partner is "
         "inactive or has no endpoint; or withheld (the patient withdrew consent), which is never retried"),
    Rule("retry", "Retrying a dead delivery", (DeliveryState.DEAD,), (DeliveryState.PENDING,), (Role.ADMIN,), (),
         "outbound_delivery_retried", "state", note="after fixing the cause; its attempts count again from zero"),
)



def check_delivery_reader(principal: Principal) -> None:
    if not principal.is_admin:
        raise PermissionDenied(f"reading the outbound deliveries needs the role admin; user '{principal.name}' is "
                               f"{principal.role.value}")


def check_external_task_reader(principal: Principal) -> None:
    """Who lists external tasks and connector calls (GET /api/external-tasks): their workers and admins. A
    failed call's error may quote what a partner answered, so it is not for every reader of episodes; an
    episode's incident shows on its page to whoever may read the episode."""
    if principal.is_admin or principal.role in EXTERNAL_WORKERS:
        return
    raise PermissionDenied(f"listing external tasks and connector calls needs one of the roles integration, admin; "
                           f"user '{principal.name}' is {principal.role.value} (an episode's failed step shows on "
                           "its page, under Find episodes, status incident)")


# Who works external tasks: systems, each signed in as an integration account (and admins). A worker reads only
# the variables its task hands it and changes nothing but its own task: no role that reads records is needed.
EXTERNAL_WORKERS = (Role.INTEGRATION,)
HOLDS_LOCK = Guard(
    "the worker asking holds its lock", lambda t, p: t.worker_id == t.asked_by,
    lambda t, p: Conflict(f"external task {t.id} is locked by worker '{t.worker_id}', not '{t.asked_by}': its lock "
                          "expired and another worker fetched it"), people=False)
FETCHABLE = (ExternalTaskState.AVAILABLE, ExternalTaskState.LOCKED)

EXTERNAL_TASK_RULES = _rules(
    Rule("create", "The engine reaches a service task for a topic", (), (ExternalTaskState.AVAILABLE,),
         event="external_task_created"),
    Rule("fetch_and_lock", "Fetching and locking external tasks", FETCHABLE, (ExternalTaskState.LOCKED,),
         EXTERNAL_WORKERS, (), "external_task_locked", "worker_id",
         note="of the topics asked, highest priority then oldest first; an available one once its retry timeout "
         "has passed, a locked one once its lock has expired; claimed with SELECT ... FOR UPDATE SKIP LOCKED, so "
         "two workers never lock the same task"),
    Rule("extend_lock", "Extending a lock", (ExternalTaskState.LOCKED,), (), EXTERNAL_WORKERS, (HOLDS_LOCK,),
         "external_task_lock_extended", "lock_expires_at"),
    Rule("unlock", "Unlocking an external task", (ExternalTaskState.LOCKED,), (ExternalTaskState.AVAILABLE,),
         EXTERNAL_WORKERS, (), "external_task_unlocked", "state", note="any worker may (as Camunda's unlock)"),
    Rule("complete", "Completing an external task", (ExternalTaskState.LOCKED,), (ExternalTaskState.COMPLETED,),
         EXTERNAL_WORKERS, (HOLDS_LOCK,), "external_task_completed", "state",
         note="its variables go into the episode's data and the pathway goes on, in the same transaction; a lock "
         "that expired still lets its worker complete until another worker fetches the task (as Camunda)"),
    Rule("failure", "Reporting a failure", (ExternalTaskState.LOCKED,),
         (ExternalTaskState.AVAILABLE, ExternalTaskState.FAILED), EXTERNAL_WORKERS, (HOLDS_LOCK,),
         "external_task_failed", "state", note="with retries left: available again after the retry timeout; none "
         "left: failed, and the episode is in incident (retrying the incident hands the task to a worker again)"),
    Rule("bpmn_error", "Reporting a business error", (ExternalTaskState.LOCKED,),
         (ExternalTaskState.COMPLETED, ExternalTaskState.FAILED), EXTERNAL_WORKERS, (HOLDS_LOCK,),
         "external_task_bpmn_error", "state", note="thrown as the BPMN error of that code from the task: caught by "
         "an error event (completed), else failed and the episode is in incident"),
    Rule("engine_cancel", "The pathway moves on without it", (*FETCHABLE, ExternalTaskState.FAILED),
         (ExternalTaskState.CANCELLED,), event="external_task_cancelled", field="state",
         note="a boundary event fired, another branch won, the episode was cancelled"),
    Rule("engine_retry", "A retried incident hands it to a worker again", (ExternalTaskState.FAILED,),
         (ExternalTaskState.AVAILABLE,), note="recorded as the episode's `retried`; its retries start afresh"),
)

# Referrals to community organizations (usecases/referrals.py), by the Gravity referral Task's statuses. The
# case managers and community health workers of the episode and their supervisors enter any status after a
# phone call; the organization's integration account sets only the organization's statuses, on its own
# referrals; only the requester marks one entered in error or records an outcome after the fact.
REFERRAL_STAFF = WORKERS
REFERRAL_PARTIES = (*WORKERS, Role.INTEGRATION)
R = ReferralStatus
OPEN_REFERRAL = (R.REQUESTED, R.ACCEPTED, R.IN_PROGRESS, R.ON_HOLD)
ENDED_REFERRAL = (R.REJECTED, R.FAILED, R.CANCELLED, R.COMPLETED)
REFERRAL_RULES = _rules(
    Rule("send", "Sending a referral", (), (R.REQUESTED,), event="referral_sent",
         note="the pathway's referral step (Choose a service) completed with the patient's consent; the pathway "
         "is told at once (message referral_sent)"),
    Rule("accept", "The organization accepts a referral", (R.REQUESTED,), (R.ACCEPTED,), REFERRAL_PARTIES, (),
         "referral_status_changed", "status"),
    Rule("reject", "The organization rejects a referral", (R.REQUESTED, R.ACCEPTED), (R.REJECTED,),
         REFERRAL_PARTIES, (), "referral_status_changed", "status", note="with a reason (status_reason)"),
    Rule("start", "The organization starts serving the patient", (R.ACCEPTED, R.ON_HOLD), (R.IN_PROGRESS,),
         REFERRAL_PARTIES, (), "referral_status_changed", "status"),
    Rule("hold", "The organization puts a referral on hold", (R.ACCEPTED, R.IN_PROGRESS), (R.ON_HOLD,),
         REFERRAL_PARTIES, (), "referral_status_changed", "status", note="with a reason (status_reason)"),
    Rule("fail", "The organization could not serve the patient", OPEN_REFERRAL, (R.FAILED,), REFERRAL_PARTIES, (),
         "referral_status_changed", "status", note="with a reason (status_reason)"),
    Rule("complete", "The organization completes a referral", OPEN_REFERRAL, (R.COMPLETED,), REFERRAL_PARTIES, (),
         "referral_status_changed", "status", note="from requested too (a phone call may learn the end first); "
         "the outcome is got-help unless another is given"),
    Rule("cancel", "Cancelling a referral", (R.DRAFT, *OPEN_REFERRAL), (R.CANCELLED,), REFERRAL_PARTIES, (),
         "referral_status_changed", "status", note="with a reason (status_reason); by either side"),
    Rule("enter_in_error", "Marking a referral entered in error", (R.DRAFT, R.REQUESTED), (R.ENTERED_IN_ERROR,),
         REFERRAL_STAFF, (), "referral_status_changed", "status", note="the requester only"),
    Rule("record_outcome", "Recording a referral's outcome", ENDED_REFERRAL, (), REFERRAL_STAFF, (),
         "referral_outcome_recorded", "outcome", note="after a rejection, failure or cancellation: the reason to "
         "stop (not-eligible, no-capacity, ...), which closes the loop"),
    Rule("withdraw_consent", "Withdrawing the patient's consent to share with the organization", tuple(R), (),
         REFERRAL_STAFF, (), "referral_consent_withdrawn", "consent", noop=lambda r, p: not r.consent,
         note="for the patient and the referral's "
         "organization: its open referrals are cancelled (statusReason 'patient withdrew consent'), deliveries not "
         "yet sent are withheld, no later referral to it is sent; again: changes nothing"),
)
REASON_REQUIRED = frozenset({R.REJECTED, R.CANCELLED, R.ON_HOLD, R.FAILED})  # Gravity: statusReason required
REFERRAL_ACTIONS = {R.ACCEPTED: "accept", R.REJECTED: "reject", R.IN_PROGRESS: "start", R.ON_HOLD: "hold",
                    R.FAILED: "fail", R.COMPLETED: "complete", R.CANCELLED: "cancel",
                    R.ENTERED_IN_ERROR: "enter_in_error"}



TABLES: dict[str, dict[str, Rule]] = {"task": TASK_RULES, "instance": INSTANCE_RULES, "timer": TIMER_RULES,
                                      "message": MESSAGE_RULES, "notification": NOTIFICATION_RULES,
                                      "break-glass grant": GRANT_RULES, "pathway version": VERSION_RULES,
                                      "user": USER_RULES, "patient": PATIENT_RULES, "inbox message": INBOX_RULES,
                                      "resource directory": DIRECTORY_RULES,
                                      "partner organization": PARTNER_RULES, "outbound delivery": DELIVERY_RULES,
                                      "external task": EXTERNAL_TASK_RULES, "referral": REFERRAL_RULES}


def may_take(rule: Rule, principal: Principal) -> bool:
    return not rule.by_system and (principal.is_admin or principal.role in rule.roles)


def role_refusal(rule: Rule, principal: Principal) -> PermissionDenied | None:
    if rule.by_system:
        return PermissionDenied(f"{rule.title}: only the engine does that")
    if may_take(rule, principal):
        return None
    allowed = ", ".join(dict.fromkeys(r.value for r in (*rule.roles, Role.ADMIN)))
    return PermissionDenied(f"{rule.title} needs one of the roles {allowed}; user '{principal.name}' "
                            f"is {principal.role.value}")


def check_role(rule: Rule, principal: Principal) -> None:
    """The part of a rule that needs no row: checked before anything is read."""
    refusal = role_refusal(rule, principal)
    if refusal is not None:
        raise refusal


def refusal(rule: Rule, facts: Facts, principal: Principal) -> CarePathError | None:
    """Why this user may not take this action now, or None."""
    found = role_refusal(rule, principal)
    if found is not None:
        return found
    if not facts.visible_to(principal):
        return facts.hidden(principal)
    if facts.state not in rule.from_states:
        return _wrong_state(rule, _what(facts), facts.state)
    if isinstance(facts, TaskFacts | UserFacts | ExternalTaskFacts):  # instances, grants: role, visibility, state
        for guard in rule.guards:
            if not (guard.people and principal.is_admin) and not guard.holds(facts, principal):
                return guard.refusal(facts, principal)
    return None


def check(rule: Rule, facts: Facts, principal: Principal) -> None:
    found = refusal(rule, facts, principal)
    if found is not None:
        raise found


def engine_step(table: dict[str, Rule], action: str, state: str, what: str) -> Rule:
    """An engine row (a projection completing a task, the scheduler firing a timer): its state is checked."""
    rule = table[action]
    if state not in rule.from_states:
        raise _wrong_state(rule, what, state)
    return rule


def advance(row: Any, table: dict[str, Rule], action: str, what: str) -> Rule:
    """An engine row applied to a stored row (a timer, a message, a notification): its state is checked, then
    moved to the row's to-state. The caller records the row's event where it has one."""
    rule = engine_step(table, action, row.state, what)
    if rule.to:
        row.state = rule.to[0].value
    return rule


def is_noop(rule: Rule, facts: Facts, principal: Principal) -> bool:
    return (rule.noop is not None and isinstance(facts, TaskFacts | UserFacts | ReferralFacts)
            and rule.noop(facts, principal))


def _what(facts: Facts) -> str:
    if isinstance(facts, TaskFacts):
        return f"task '{facts.name}'"
    if isinstance(facts, UserFacts):
        return f"user '{facts.name}'"
    if isinstance(facts, PartnerFacts):
        return f"partner organization '{facts.id}'"
    if isinstance(facts, ExternalTaskFacts):
        return f"external task {facts.id}"
    if isinstance(facts, ReferralFacts):
        return f"referral {facts.id}"
    return f"instance {facts.id}" if isinstance(facts, InstanceFacts) else f"break-glass grant {facts.id}"


def _wrong_state(rule: Rule, what: str, state: str) -> InvalidTransition:
    return InvalidTransition(f"{what} is {state}; {rule.title.lower()} needs one that is "
                             f"{' or '.join(s.value for s in rule.from_states)}")


def allowed_actions(facts: Facts, principal: Principal) -> list[str]:
    """What this user may do to the task, instance or grant now: every row they may take that would change it."""
    table = TASK_RULES if isinstance(facts, TaskFacts) else INSTANCE_RULES if isinstance(facts, InstanceFacts) \
        else GRANT_RULES if isinstance(facts, GrantFacts) else PARTNER_RULES if isinstance(facts, PartnerFacts) \
        else USER_RULES
    return [rule.action for rule in table.values() if rule.action not in NOT_OFFERED
            and refusal(rule, facts, principal) is None and not is_noop(rule, facts, principal)]


def referral_actions(facts: ReferralFacts, principal: Principal) -> list[str]:
    """What this user may do to the referral now: every row of REFERRAL_RULES they may take that would change it
    (a page offers these and no others)."""
    return [rule.action for rule in REFERRAL_RULES.values()
            if refusal(rule, facts, principal) is None and not is_noop(rule, facts, principal)]


# The supervisors' rows: who may take them works the team screens (dashboard, unrouted queue).
SUPERVISOR_ACTIONS = ("assign", "set_priority", "set_due_date")


def supervised_groups(principal: Principal) -> frozenset[str] | None:
    """The groups whose tasks this user supervises: a supervisor's own groups; every group (None) for an
    admin. Whoever may take none of the supervisors' rows (assign, re-prioritise, re-date) gets
    PermissionDenied: the team screens are not theirs."""
    rules = [TASK_RULES[action] for action in SUPERVISOR_ACTIONS]
    if not any(may_take(rule, principal) for rule in rules):
        roles = ", ".join(dict.fromkeys(r.value for rule in rules for r in (*rule.roles, Role.ADMIN)))
        raise PermissionDenied(f"Supervising teams needs one of the roles {roles}; user '{principal.name}' "
                               f"is {principal.role.value}")
    return None if principal.is_admin else principal.groups


def assignable_roles() -> tuple[Role, ...]:
    """The roles of the users a task may be given to: those who may work it (the `complete` row); an admin
    may take every row but is nobody's assignee by default."""
    return TASK_RULES["complete"].roles


# Rows that are not a user's action on one task, instance, grant or user: starting makes a new instance,
# breaking the glass a new grant, adding a user a new user; a release is part of deactivating a user; a
# feed's cancellation is the ADT router's (an A11/A13 message), never a button; a migration is run from the
# pathway's page, for many episodes at once.
NOT_OFFERED = frozenset({"start", "release", "break_glass", "add", "cancel_by_feed", "migrate"})


# -- docs/state-machine.md -------------------------------------------------------------------------

SUBJECT_STATES: dict[str, type[StrEnum]] = {"task": TaskState, "instance": InstanceStatus, "timer": TimerState,
                                            "message": MessageState, "notification": NotificationState,
                                            "break-glass grant": GrantState, "pathway version": VersionState,
                                            "user": UserState, "patient": PatientState, "inbox message": InboxState,
                                            "resource directory": ServiceStatus,
                                            "partner organization": PartnerState,
                                            "outbound delivery": DeliveryState, "external task": ExternalTaskState,
                                            "referral": ReferralStatus}


def _who(rule: Rule) -> str:
    if rule.by_system:
        return SYSTEM
    roles = ", ".join(dict.fromkeys(role.value for role in (*rule.roles, Role.ADMIN)))
    conditions = [guard.says + ("" if guard.people else " (admins too)") for guard in rule.guards]
    return roles + (": " + "; ".join(conditions) if conditions else "")


def _states(states: tuple[StrEnum, ...], empty: str) -> str:
    return ", ".join(f"`{s.value}`" for s in states) if states else empty


def render_markdown() -> str:
    """The tables as docs/state-machine.md shows them (a test keeps that file equal to this)."""
    lines = [
        "# Who may do what: the state machine",
        "",
        "Generated from `engine/rules.py` by `carepath docs rules > docs/state-machine.md`; do not edit by hand",
        "(a test fails when this file and the code differ).",
        "",
        "A row reads: the action takes the subject from one of the *from* states to the *to* state; the",
        "roles named may take it (admins may take every row that is not the engine's) when each condition",
        "holds; it is recorded in the history as *event*, with the old and new value of *field*. A refusal",
        "is checked in this order: role (403), the user may see the task or read the instance (404, as a",
        "read answers, so a refusal never tells whether another patient's task exists), from-state (409),",
        "conditions (403 or 409). Task workers see a task that is theirs or offered to them, one of their",
        "groups or everyone; supervisors also the tasks nobody can pick up. `GET /api/tasks`,",
        "`GET /api/tasks/{id}` and `GET /api/instances/{id}` answer `actions`: the rows the caller may take now.",
        "",
    ]
    for subject, table in TABLES.items():
        states = ", ".join(f"`{s.value}`" for s in SUBJECT_STATES[subject])
        lines += [f"## {subject.capitalize()}", "", f"States: {states}.", "",
                  "| action | what | from | to | who may | event | field | note |",
                  "|---|---|---|---|---|---|---|---|"]
        for rule in table.values():
            to = _states(rule.to, "unchanged")
            cells = [f"`{rule.action}`", rule.title, _states(rule.from_states, "(new)"), to, _who(rule),
                     f"`{rule.event}`" if rule.event else "", f"`{rule.field}`" if rule.field else "", rule.note]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)


__all__ = ["DELIVERY_RULES", "DIRECTORY_RULES", "EXTERNAL_TASK_RULES", "PARTNER_RULES", "PartnerFacts",
           "REFERRAL_RULES", "ReferralFacts", "check_external_task_reader",
           "check_delivery_reader", "check_partner_reader", "GRANT_RULES", "INBOX_RULES", "INSTANCE_RULES",
           "PATHWAY_AUTHORS", "PATIENT_RULES", "TASK_RULES", "TABLES", "USER_RULES", "VERSION_RULES", "GrantFacts",
           "Guard", "InstanceFacts", "Rule", "TaskFacts", "UserFacts", "ExternalTaskFacts", "allowed_actions",
           "referral_actions",
           "assignable_roles", "check", "check_directory_reader", "check_role", "is_unrouted", "render_markdown",
           "supervised_groups", "supervises"]


if __name__ == "__main__":
    print(render_markdown(), end="")
