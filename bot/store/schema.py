"""Versioned schema migrations. Append new ones; never edit one that has shipped."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
CREATE TABLE candidates (
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    committed_at TEXT,
    components TEXT NOT NULL DEFAULT '{}',
    body_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (service, version)
);
CREATE TABLE candidate_tests (
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    suite TEXT NOT NULL,
    status TEXT NOT NULL,
    url TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service, version, suite),
    FOREIGN KEY (service, version) REFERENCES candidates (service, version)
);
CREATE TABLE candidate_scans (
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    summary TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service, version),
    FOREIGN KEY (service, version) REFERENCES candidates (service, version)
);
CREATE TABLE releases (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    channel TEXT,
    thread_ts TEXT,
    source_env TEXT,
    previous_version TEXT,
    rollback_of INTEGER REFERENCES releases (id),
    rollback_target TEXT,
    rollback_method TEXT,
    healthy INTEGER,
    change_failure INTEGER NOT NULL DEFAULT 0,
    verdict TEXT,
    force_reason TEXT,
    forced_by TEXT,
    output_tail TEXT,
    error TEXT,
    weight INTEGER,
    colour TEXT,
    checklist TEXT NOT NULL DEFAULT '[]',
    notes TEXT
);
CREATE INDEX releases_service_env_id ON releases (service, env, id DESC);
CREATE INDEX releases_state ON releases (state)
    WHERE state IN ('queued', 'deploying', 'verifying', 'awaiting_approval');
CREATE INDEX releases_finished ON releases (finished_at);
CREATE TABLE release_events (
    id INTEGER PRIMARY KEY,
    release_id INTEGER NOT NULL REFERENCES releases (id),
    at TEXT NOT NULL,
    state TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX release_events_release ON release_events (release_id);
CREATE TABLE env_state (
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    version TEXT NOT NULL,
    release_id INTEGER NOT NULL REFERENCES releases (id),
    since TEXT NOT NULL,
    by TEXT NOT NULL,
    colour TEXT,
    PRIMARY KEY (service, env)
);
CREATE TABLE release_locks (
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    release_id INTEGER NOT NULL REFERENCES releases (id),
    holder TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    PRIMARY KEY (service, env)
);
CREATE TABLE manual_locks (
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    holder TEXT NOT NULL,
    reason TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    PRIMARY KEY (service, env)
);
CREATE TABLE adhoc_freezes (
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    until TEXT NOT NULL,
    reason TEXT NOT NULL,
    by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (service, env)
);
CREATE TABLE approvals (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    requester TEXT NOT NULL,
    required INTEGER NOT NULL,
    eligible_groups TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    subject TEXT NOT NULL,
    decided_at TEXT,
    decided_by TEXT,
    reason TEXT,
    channel TEXT,
    message_ts TEXT
);
CREATE INDEX approvals_pending ON approvals (state, expires_at);
CREATE TABLE approval_votes (
    approval_id INTEGER NOT NULL REFERENCES approvals (id),
    user TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (approval_id, user)
);
CREATE TABLE measurements (
    release_id INTEGER NOT NULL REFERENCES releases (id),
    check_name TEXT NOT NULL,
    offset_s INTEGER NOT NULL,
    due_at TEXT NOT NULL,
    state TEXT NOT NULL,
    verdict TEXT,
    value REAL,
    summary TEXT,
    query TEXT,
    measured_at TEXT,
    PRIMARY KEY (release_id, check_name, offset_s)
);
CREATE INDEX measurements_pending ON measurements (state, due_at);
CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    request_id TEXT
);
CREATE INDEX audit_at ON audit (at);
-- The audit trail is append-only: the database itself refuses edits and deletions.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TABLE jobs_done (
    key TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
""",
    ),
    (
        "0002_lookup_indexes",
        """
-- Measured at 1,000,000 releases: notes/version lookups took ~215 ms and service-wide history ~73 ms
-- without these; both are index seeks with them.
CREATE INDEX releases_service_version ON releases (service, version);
CREATE INDEX releases_service_id ON releases (service, id DESC);
CREATE INDEX releases_rollback_of ON releases (rollback_of) WHERE rollback_of IS NOT NULL;
""",
    ),
    (
        "0003_period_indexes",
        """
-- Summaries and DORA read releases by the period they finished in. Without these the weekly summary
-- took 124 ms at 100,000 releases (bench/scale.py): production outcomes walked every production release
-- of each service. Both indexes cover their query, so a period is read without touching the table.
CREATE INDEX releases_service_env_finished ON releases (service, env, finished_at, kind, state, verdict, version);
CREATE INDEX releases_finished_counts ON releases (finished_at, service, env, kind, state);
-- releases_finished_counts leads with finished_at, so this index of 0001 would only cost writes.
DROP INDEX IF EXISTS releases_finished;
""",
    ),
    (
        "0004_outbox",
        """
-- Every Slack write goes through this outbox (bot/slack/outbox.py): a row is written before Slack is
-- asked, so an outage, a rate limit or a restart loses nothing, and rows are delivered in id order per
-- lane (a channel; home:<user>; ephemeral:<channel>:<user>). thread_ref / message_ref name the outbox
-- row of a parent or an updated message that had no Slack ts yet when the row was written (no foreign
-- key: delivered rows are pruned, and a reference to a pruned row is handled like an undelivered one).
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    lane TEXT NOT NULL,
    channel TEXT,
    kind TEXT NOT NULL,              -- post | update | ephemeral | publish_home | upload
    payload TEXT NOT NULL,           -- JSON: what to send
    thread_ref INTEGER,
    message_ref INTEGER,
    coalesce_key TEXT,               -- a newer pending row with the same key supersedes older ones
    state TEXT NOT NULL DEFAULT 'pending',  -- pending | sent | dead | superseded
    attempts INTEGER NOT NULL DEFAULT 0,
    in_doubt INTEGER NOT NULL DEFAULT 0,    -- an attempt may have reached Slack: look before re-posting
    handed_out INTEGER NOT NULL DEFAULT 0,  -- its placeholder ts was returned and may be stored elsewhere
    next_attempt_at TEXT,
    sent_ts TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    last_error TEXT
);
CREATE INDEX outbox_pending ON outbox (lane, id) WHERE state = 'pending';
CREATE INDEX outbox_coalesce ON outbox (coalesce_key) WHERE state = 'pending';
-- Placeholder ts ('outbox:<id>') stored while Slack was unreachable are swapped for the real ts once the
-- message is posted; these partial indexes hold only such rows, so the swap never scans the tables.
CREATE INDEX releases_thread_placeholder ON releases (thread_ts) WHERE thread_ts LIKE 'outbox:%';
CREATE INDEX approvals_message_placeholder ON approvals (message_ts) WHERE message_ts LIKE 'outbox:%';
""",
    ),
    (
        "0005_measurement_outage_ts",
        """
-- The thread reply that reports a check's metrics backend as unreadable, set on a measurement that ended
-- "metrics unavailable": the check's next measurement edits that reply instead of posting another, so an
-- outage reads as one reply per check (bot/engine/checks.py). May hold an outbox placeholder ts.
ALTER TABLE measurements ADD COLUMN outage_ts TEXT;
""",
    ),
    (
        "0006_seen_requests",
        """
-- Keys of Slack requests already acted on (request signature, trigger_id, event_id, Socket Mode
-- envelope_id): a replay or a redelivery is acked and does nothing (bot/store/replays.py). seen_at is
-- wall-clock epoch seconds; rows older than Slack's signature window are pruned through the index.
CREATE TABLE seen_requests (
    key TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX seen_requests_seen_at ON seen_requests (seen_at);
""",
    ),
    (
        "0007_release_state_as_data",
        """
-- State that used to be read back out of release_events prose is kept as data on the release:
-- held_step: the verify step a rollout is on hold at (was the last event's "held: <step>" detail), cleared
--   when on-call decides; after_success_at: when the after-success steps (check schedule, manifest commit)
--   finished (was a "post-release steps done" event); start-up finishes those of a release without it.
ALTER TABLE releases ADD COLUMN held_step TEXT;
ALTER TABLE releases ADD COLUMN after_success_at TEXT;
UPDATE releases SET after_success_at = (
    SELECT MIN(v.at) FROM release_events v WHERE v.release_id = releases.id AND v.detail = 'post-release steps done'
);
UPDATE releases SET held_step = (
    SELECT substr(v.detail, 7) FROM release_events v WHERE v.release_id = releases.id ORDER BY v.id DESC LIMIT 1
) WHERE state = 'verifying' AND (
    SELECT v.detail FROM release_events v WHERE v.release_id = releases.id ORDER BY v.id DESC LIMIT 1
) LIKE 'held: %';
""",
    ),
    (
        "0008_scans_per_component",
        """
-- A candidate ships several images; each one's scan is its own evidence, so a scan of one image no longer
-- replaces (or stands in for) another's. Scans stored before this keep component '' and stand for the whole
-- candidate, as they did (bot/core/checklist.py judges them so).
CREATE TABLE candidate_scans_by_component (
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    component TEXT NOT NULL,
    summary TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service, version, component),
    FOREIGN KEY (service, version) REFERENCES candidates (service, version)
);
INSERT INTO candidate_scans_by_component (service, version, component, summary, updated_at)
    SELECT service, version, '', summary, updated_at FROM candidate_scans;
DROP TABLE candidate_scans;
ALTER TABLE candidate_scans_by_component RENAME TO candidate_scans;
""",
    ),
    (
        "0009_deploy_runs",
        """
-- What a provider is running for a release, written before the step starts (bot/engine/fences.py), so a
-- restarted bot finds a deploy its previous process left running and never starts a second one beside it.
-- A command step is named by its process group (pgid, with the leader's start time from /proc/<pid>/stat
-- and the kernel's boot id: a reused pid is not mistaken for it) and leaves its output and exit status in
-- files next to output_path; a remote step by the run id or status URL its service gave (remote_id).
-- role: final (its success completes the release), partial (a canary or blue/green step before the last),
-- undo (returning traffic after a failure). adopted_at: a restarted bot found it still running and follows it.
-- outcome (NULL while running): succeeded | failed | unknown (ended without a provable outcome) | not_started.
CREATE TABLE deploy_runs (
    id INTEGER PRIMARY KEY,
    release_id INTEGER NOT NULL REFERENCES releases (id),
    step TEXT NOT NULL,
    action TEXT NOT NULL,
    role TEXT NOT NULL,
    provider TEXT NOT NULL,
    weight INTEGER,
    colour TEXT,
    started_at TEXT NOT NULL,
    deadline_at TEXT NOT NULL,
    output_path TEXT,
    pgid INTEGER,
    proc_start INTEGER,
    boot_id TEXT,
    remote_id TEXT,
    adopted_at TEXT,
    ended_at TEXT,
    outcome TEXT,
    exit_status INTEGER,
    error TEXT
);
CREATE INDEX deploy_runs_release ON deploy_runs (release_id, id);
CREATE INDEX deploy_runs_open ON deploy_runs (release_id) WHERE ended_at IS NULL;
-- One row /healthz rewrites (throttled): whether the store can write is checked, not assumed.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    written_at TEXT NOT NULL
);
""",
    ),
    (
        "0010_scheduled_releases",
        """
-- `/release prod at 14:00`: the row is the truth; APScheduler only wakes it (bot/engine/schedules.py).
-- state: pending → starting (claimed by one wake-up, never taken again) → done | refused; or cancelled | missed.
-- version is NULL for a promotion: what source_env runs at its time is released.
CREATE TABLE scheduled_releases (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    version TEXT,
    source_env TEXT,
    command TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    reason TEXT,
    created_at TEXT NOT NULL,
    release_id INTEGER REFERENCES releases (id)
);
CREATE INDEX scheduled_releases_pending ON scheduled_releases (at) WHERE state = 'pending';
""",
    ),
    (
        "0011_trains",
        """
-- Release trains (bot/engine/trains.py): the rows are the truth; APScheduler only wakes them.
-- A departure: pending → boarding (its boarding call went out) → departed | held; or closed (its window is
-- closed at its time) | missed (the bot was down and the window had closed when it came back).
-- One row per train and instant: a restart or a second wake-up never makes a second departure.
CREATE TABLE train_departures (
    id INTEGER PRIMARY KEY,
    env TEXT NOT NULL,
    at TEXT NOT NULL,
    boards_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    reason TEXT,
    held_by TEXT,
    created_at TEXT NOT NULL,
    settled_at TEXT,
    UNIQUE (env, at)
);
CREATE INDEX train_departures_open ON train_departures (at) WHERE state IN ('pending', 'boarding');
CREATE INDEX train_departures_settled ON train_departures (settled_at, state);
-- A service on a departure: boarding → boarded (release_id once recorded) | refused; or left_off | skipped.
-- Nothing boards twice: one row per departure and service, and one boarded row per (env, service, version).
CREATE TABLE train_boardings (
    id INTEGER PRIMARY KEY,
    departure_id INTEGER NOT NULL REFERENCES train_departures (id),
    env TEXT NOT NULL,
    service TEXT NOT NULL,
    version TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    by TEXT,
    release_id INTEGER REFERENCES releases (id),
    checklist_ok INTEGER,
    notes TEXT,
    UNIQUE (departure_id, service)
);
CREATE UNIQUE INDEX train_boardings_once ON train_boardings (env, service, version) WHERE state = 'boarded';
""",
    ),
    (
        "0012_alerts",
        """
-- Alertmanager's alerts (POST /api/v1/alerts, bot/engine/alerts.py). One row per alert occurrence: Alertmanager
-- names an alert by its label fingerprint and re-sends it every group_interval, so (fingerprint, starts_at) is
-- the occurrence and a repeat finds its row. status: firing | resolved.
-- An incident is one service's trouble in one environment, first firing to resolved (at most one open per
-- service and environment: later alerts join it). release_id: the release in whose watch window it started
-- (DORA counts it against that release). channel/ts: its message, edited as it changes; thread_ts: the release
-- thread that message is in (NULL: posted in the service's channel).
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    release_id INTEGER REFERENCES releases (id),
    source TEXT NOT NULL DEFAULT 'alert',
    started_at TEXT NOT NULL,
    resolved_at TEXT,
    channel TEXT,
    ts TEXT,
    thread_ts TEXT,
    acknowledged_by TEXT,
    acknowledged_at TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX incidents_open ON incidents (service, env) WHERE resolved_at IS NULL;
CREATE INDEX incidents_release ON incidents (release_id) WHERE release_id IS NOT NULL;
CREATE TABLE alerts (
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    name TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    ends_at TEXT,
    incident_id INTEGER REFERENCES incidents (id),
    received_at TEXT NOT NULL,
    PRIMARY KEY (fingerprint, starts_at)
);
CREATE INDEX alerts_incident ON alerts (incident_id) WHERE incident_id IS NOT NULL;
""",
    ),
    (
        "0013_events",
        """
-- Outbound events (bot/store/events.py, docs/events.md): a transactional outbox. An event is written in the
-- same transaction as the change it describes (a release's state, an approval, a check verdict…), so a crash
-- can neither lose one nor invent one. id is the sequence receivers and `GET /api/v1/events?since=` order by
-- (AUTOINCREMENT: never reused, even after the newest rows are deleted); the CloudEvents id is the database's
-- random instance name and that sequence, so two databases never hand out the same id.
CREATE TABLE event_source (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    instance TEXT NOT NULL
);
INSERT INTO event_source (id, instance) VALUES (1, lower(hex(randomblob(6))));
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,                -- dev.releasebot.release.succeeded, …
    subject TEXT NOT NULL,             -- what it is about, e.g. notify/prod/release/12
    time TEXT NOT NULL,
    data TEXT NOT NULL                 -- JSON
);
-- One row per (event, target) whose subscription takes it, written with the event: target is a webhook URL or
-- 'github'. Delivered in event order per target (bot/events/deliver.py). state: pending | sent | dead.
-- in_doubt: an attempt may have reached the target (set before a request leaves, so a crash is remembered).
CREATE TABLE deliveries (
    event_id INTEGER NOT NULL REFERENCES events (id),
    target TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    in_doubt INTEGER NOT NULL DEFAULT 0,
    next_at TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    PRIMARY KEY (event_id, target)
) WITHOUT ROWID;
CREATE INDEX deliveries_pending ON deliveries (target, event_id) WHERE state = 'pending';
-- The GitHub deployment made for a release (bot/github_deployments.py); active: its last status was success and
-- no later release of the same service and environment has replaced it (that one is then marked inactive).
CREATE TABLE github_deployments (
    release_id INTEGER PRIMARY KEY REFERENCES releases (id),
    repo TEXT NOT NULL,
    service TEXT NOT NULL,
    env TEXT NOT NULL,
    deployment_id INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX github_deployments_active ON github_deployments (service, env) WHERE active = 1;
""",
    ),
    (
        "0014_check_watch",
        """
-- Watch-window checks (`every` + `for`): one measurement row per tick, as offsets have. every_s marks a tick
-- (NULL: an `after` offset) and failure_limit is the failures the window tolerates, so the window is judged
-- from its rows alone; reply_ts is the one thread reply that shows the window's running tally, edited in
-- place by every tick, across restarts (bot/engine/checks.py). May hold an outbox placeholder ts.
ALTER TABLE measurements ADD COLUMN every_s INTEGER;
ALTER TABLE measurements ADD COLUMN failure_limit INTEGER;
ALTER TABLE measurements ADD COLUMN reply_ts TEXT;
""",
    ),
    (
        "0015_train_calls",
        """
-- A train's boarding call is edited in place as its departure moves (held, left off, departed…), so each service's
-- row remembers the message: channel and message_ts (may hold an outbox placeholder, resolved when the edit is
-- sent). NULL: not posted yet (a crash between the boarding claim and the post; recovery posts it). Rows boarded
-- before this migration have no message to edit: '' keeps recovery from posting their calls again.
ALTER TABLE train_boardings ADD COLUMN channel TEXT;
ALTER TABLE train_boardings ADD COLUMN message_ts TEXT;
UPDATE train_boardings SET message_ts = '';
""",
    ),
    (
        "0016_alerts_rollouts",
        """
-- An incident's message ts (and the release thread it replied in) may be an outbox placeholder when Slack was
-- unreachable as the alert arrived: bot/store/alerts.py swaps it for the real ts once the outbox has posted the
-- message (before the outbox prunes its sent rows), finding the few placeholders through these partial indexes.
CREATE INDEX incidents_ts_placeholder ON incidents (ts) WHERE ts LIKE 'outbox:%';
CREATE INDEX incidents_thread_placeholder ON incidents (thread_ts) WHERE thread_ts LIKE 'outbox:%';
""",
    ),
    (
        "0017_events_retention",
        """
-- Events are pruned past `events.retention` once all their deliveries are settled (bot/store/events.py).
-- pruned_through is the highest sequence number deleted, so `GET /api/v1/events?since=` can say a replay from
-- before it is incomplete (truncated); events_time finds the old ones without reading the whole table.
ALTER TABLE event_source ADD COLUMN pruned_through INTEGER NOT NULL DEFAULT 0;
CREATE INDEX events_time ON events (time);
""",
    ),
    (
        "0018_status_generation",
        """
-- What `/release status` shows of a service (env_state, release and manual locks, ad-hoc freezes) changes only with
-- these tables: triggers count every change to them, whichever connection or process makes it, so a status read
-- can keep its rows while the count stands (bot/store/__init__.py, Store.status_snapshot).
CREATE TABLE status_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL
);
INSERT INTO status_generation (id, n) VALUES (1, 0);
CREATE TRIGGER env_state_insert_status AFTER INSERT ON env_state
    BEGIN UPDATE status_generation SET n = n + 1; END;
CREATE TRIGGER env_state_update_status AFTER UPDATE ON env_state
    BEGIN UPDATE status_generation SET n = n + 1; END;
CREATE TRIGGER env_state_delete_status AFTER DELETE ON env_state
    BEGIN UPDATE status_generation SET n = n + 1; END;
CREATE TRIGGER release_locks_insert_status AFTER INSERT ON release_locks
    BEGIN UPDATE status_generation SET n = n + 1; END;
CREATE TRIGGER release_locks_update_status AFTER UPDATE ON release_locks
    BEGIN UPDATE status_generation SET n = n + 1; END;
CREATE TRIGGER release_locks_delete_status AFTER DELETE ON release_locks
    BEGIN UPDATE status_generation SET n = n + 1; END;
CREATE TRIGGER manual_locks_insert_status AFTER INSERT ON manual_locks
    BEGIN UPDATE status_generation SET n = n + 1; END;
CREATE TRIGGER manual_locks_update_status AFTER UPDATE ON manual_locks
    BEGIN UPDATE status_generation SET n = n + 1; END;
CREATE TRIGGER manual_locks_delete_status AFTER DELETE ON manual_locks
    BEGIN UPDATE status_generation SET n = n + 1; END;
CREATE TRIGGER adhoc_freezes_insert_status AFTER INSERT ON adhoc_freezes
    BEGIN UPDATE status_generation SET n = n + 1; END;
CREATE TRIGGER adhoc_freezes_update_status AFTER UPDATE ON adhoc_freezes
    BEGIN UPDATE status_generation SET n = n + 1; END;
CREATE TRIGGER adhoc_freezes_delete_status AFTER DELETE ON adhoc_freezes
    BEGIN UPDATE status_generation SET n = n + 1; END;
""",
    ),
    (
        "0019_incidents_per_release",
        """
-- An open incident per service, environment AND release (bot/store/alerts.py attributes an alert first, then
-- joins the open incident of the same attribution): an incident open since before a release went out no longer
-- swallows an alert about that release. ifnull(release_id, 0): the incidents about no release are one group too.
-- rollback_asked_at: when on_alert: auto_rollback asked the incident's rollback (the rollback path took it); a
-- webhook call (or start) asks it for incidents of the last day that an earlier call left without it.
DROP INDEX incidents_open;
CREATE UNIQUE INDEX incidents_open ON incidents (service, env, ifnull(release_id, 0)) WHERE resolved_at IS NULL;
ALTER TABLE incidents ADD COLUMN rollback_asked_at TEXT;
-- The incidents of before: their call asked (or skipped) the rollback already; nothing of history is redone.
UPDATE incidents SET rollback_asked_at = created_at WHERE release_id IS NOT NULL;
CREATE INDEX incidents_rollback_unasked ON incidents (created_at)
    WHERE rollback_asked_at IS NULL AND release_id IS NOT NULL;
""",
    ),
]
