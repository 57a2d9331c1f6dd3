"""The repositories, by aggregate (``storage.repos.*``), under one name; seed data from ``storage.seed``.

Commit rule (see ``storage.repos``): nothing here commits unless its name ends in ``_and_commit``;
``ensure_default_reasons`` (seed data) commits its own unit of work.
"""

from __future__ import annotations

from storage.models import ReasonCode
from storage.repos._sql import insert_or_nothing
from storage.repos.ats import ats_mappings, get_ats_mapping, put_ats_mapping
from storage.repos.audit import audit, audit_for_interview
from storage.repos.claims import take_over_claims_and_commit
from storage.repos.console import (
    add_console_login,
    add_console_session,
    end_console_session,
    get_console_login,
    get_console_session,
    purge_console_rows,
    spend_console_login,
)
from storage.repos.errors import Conflict
from storage.repos.events import platform_event_seen
from storage.repos.exits import (
    exit_counts,
    exits_between,
    exits_for_interview,
    exits_with_interviews,
    get_exit,
    termination_audits,
)
from storage.repos.inbound import (
    add_inbound,
    claim_inbound_and_commit,
    dingtalk_sign_owner,
    insert_inbound,
    note_inbound,
    purge_dingtalk_signs_and_commit,
    seen_inbound_keys,
)
from storage.repos.interviews import (
    claim_termination,
    find_candidate,
    get_candidate,
    get_interview,
    get_interview_by_pk,
    idle_interviews,
    in_scope_of,
    list_interviews,
    lock_interview,
    names_in_scope,
    open_interviews_matching,
    page_interviews,
    purge_interviews_and_commit,
    recently_ended,
    release_termination,
    stuck_interviews,
)
from storage.repos.jobs import advance_job, open_termination_jobs, take_over_job_and_commit
from storage.repos.kf import (
    add_kf_conversation,
    count_kf_reply_and_commit,
    kf_conversation,
    kf_cursor,
    latest_candidate_by_mobile,
    latest_interview_of,
    save_kf_cursor_and_commit,
)
from storage.repos.leases import get_lease, hold_lease_and_commit, release_lease_and_commit
from storage.repos.notices import (
    add_notice,
    add_notices_and_commit,
    attempts_for_notices,
    backlog_by_channel,
    claim_notice_and_commit,
    claim_notices_and_commit,
    defer_destination,
    due_notice_ids,
    existing_dedupe_keys,
    failing_notices,
    insert_notices,
    last_attempt,
    list_notices,
    mark_notices_sent,
    notice_exists,
    notices_for_interview,
    notices_with_status,
    pending_notices,
    purge_processed_and_commit,
    recent_failed_attempts,
    requeue_dead_notice,
    update_pending_notice,
)
from storage.repos.ops import OutboxCounts, outbox_counts
from storage.repos.pacing import purge_pace_marks_and_commit, take_pace_slot
from storage.repos.people import get_person, list_people, people_named
from storage.repos.prompts import (
    action_closed_by,
    close_action_and_commit,
    get_action,
    latest_open_action,
    open_actions,
    open_actions_of,
    transition_action,
    transition_action_and_commit,
)
from storage.repos.reasons import get_reason, list_reasons, reason_references
from storage.repos.reminders import (
    cancel_pending_reminders,
    claim_reminder_and_commit,
    due_reminder_ids,
    reminders_for_interview,
)
from storage.repos.shares import share_interview_and_commit
from storage.repos.summaries import claim_summary_and_commit, summaries_for_day, summary_chart
from storage.repos.timeline import Key as TimelineKey
from storage.repos.timeline import timeline_page
from storage.repos.todos import (
    finish_todo,
    finish_todos_by_ref,
    open_todo_counts,
    open_todos,
    open_todos_with_interviews,
    todos_for_interview,
)
from storage.repos.tokens import expire_shared_token_and_commit, get_shared_token, store_shared_token_and_commit
from storage.seed import DEFAULT_REASONS, ensure_default_reasons

# Stable code of the reason for exits no other reason fits (kept for callers of ``repo.REASON_OTHER``).
REASON_OTHER = ReasonCode.other

__all__ = [
    "DEFAULT_REASONS",
    "REASON_OTHER",
    "Conflict",
    "OutboxCounts",
    "TimelineKey",
    "action_closed_by",
    "add_console_login",
    "add_console_session",
    "add_inbound",
    "add_kf_conversation",
    "add_notice",
    "add_notices_and_commit",
    "advance_job",
    "ats_mappings",
    "attempts_for_notices",
    "audit",
    "audit_for_interview",
    "backlog_by_channel",
    "cancel_pending_reminders",
    "claim_inbound_and_commit",
    "claim_notice_and_commit",
    "claim_notices_and_commit",
    "claim_reminder_and_commit",
    "claim_summary_and_commit",
    "claim_termination",
    "close_action_and_commit",
    "count_kf_reply_and_commit",
    "defer_destination",
    "dingtalk_sign_owner",
    "due_notice_ids",
    "due_reminder_ids",
    "end_console_session",
    "ensure_default_reasons",
    "existing_dedupe_keys",
    "exit_counts",
    "exits_between",
    "exits_for_interview",
    "exits_with_interviews",
    "expire_shared_token_and_commit",
    "failing_notices",
    "find_candidate",
    "finish_todo",
    "finish_todos_by_ref",
    "get_action",
    "get_ats_mapping",
    "get_candidate",
    "get_console_login",
    "get_console_session",
    "get_exit",
    "get_interview",
    "get_interview_by_pk",
    "get_lease",
    "get_person",
    "get_reason",
    "get_shared_token",
    "hold_lease_and_commit",
    "idle_interviews",
    "in_scope_of",
    "insert_inbound",
    "insert_notices",
    "insert_or_nothing",
    "kf_conversation",
    "kf_cursor",
    "last_attempt",
    "latest_candidate_by_mobile",
    "latest_interview_of",
    "latest_open_action",
    "list_interviews",
    "list_notices",
    "list_people",
    "list_reasons",
    "lock_interview",
    "mark_notices_sent",
    "names_in_scope",
    "note_inbound",
    "notice_exists",
    "notices_for_interview",
    "notices_with_status",
    "open_actions",
    "open_actions_of",
    "open_interviews_matching",
    "open_termination_jobs",
    "open_todo_counts",
    "open_todos",
    "open_todos_with_interviews",
    "outbox_counts",
    "page_interviews",
    "pending_notices",
    "people_named",
    "platform_event_seen",
    "purge_console_rows",
    "purge_dingtalk_signs_and_commit",
    "purge_interviews_and_commit",
    "purge_pace_marks_and_commit",
    "purge_processed_and_commit",
    "put_ats_mapping",
    "reason_references",
    "recent_failed_attempts",
    "recently_ended",
    "release_lease_and_commit",
    "release_termination",
    "reminders_for_interview",
    "requeue_dead_notice",
    "save_kf_cursor_and_commit",
    "seen_inbound_keys",
    "share_interview_and_commit",
    "spend_console_login",
    "store_shared_token_and_commit",
    "stuck_interviews",
    "summaries_for_day",
    "summary_chart",
    "take_over_claims_and_commit",
    "take_over_job_and_commit",
    "take_pace_slot",
    "termination_audits",
    "timeline_page",
    "todos_for_interview",
    "transition_action",
    "transition_action_and_commit",
    "update_pending_notice",
]
