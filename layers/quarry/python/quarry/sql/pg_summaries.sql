-- Summary jobs (quarry.adapters.sql_summaries): one row per job, the whole job as its JSON record
-- (quarry.summary_models.job_to_record), beside the columns the listings order and filter on.
-- Idempotent: run at every start. {schema} is substituted with a quoted identifier.

CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {schema}.summary_jobs (
    workspace_id text NOT NULL,
    id           text NOT NULL,
    status       text NOT NULL,
    schedule     text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    job          jsonb NOT NULL,
    PRIMARY KEY (workspace_id, id)
);
-- A workspace's jobs, newest first (list_jobs).
CREATE INDEX IF NOT EXISTS summary_jobs_listing ON {schema}.summary_jobs (workspace_id, created_at DESC, id DESC);
-- Every job with a schedule, across workspaces (scheduled_jobs).
CREATE INDEX IF NOT EXISTS summary_jobs_scheduled ON {schema}.summary_jobs (workspace_id, id)
    WHERE schedule IS NOT NULL;
