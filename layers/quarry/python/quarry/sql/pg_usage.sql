-- Usage counters (quarry.adapters.sql_usage): what answers spent, per user and per workspace per day.
-- Idempotent: run at every start. {schema} is substituted with a quoted identifier.

CREATE SCHEMA IF NOT EXISTS {schema};

-- One row per counted answer: the at-most-once guard (a redelivered job finds its message here).
CREATE TABLE IF NOT EXISTS {schema}.usage_messages (
    message_id        text PRIMARY KEY,
    "user"            text NOT NULL,
    workspace_id      text,
    model             text NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    cost_usd          numeric(24, 10) NOT NULL,
    created_at        timestamptz NOT NULL
);

-- The counters: scope is 'user' or 'workspace', key the user or workspace id, day the UTC day.
CREATE TABLE IF NOT EXISTS {schema}.usage_daily (
    scope             text NOT NULL,
    key               text NOT NULL,
    day               date NOT NULL,
    model             text NOT NULL,
    requests          bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    cost_usd          numeric(24, 10) NOT NULL,
    PRIMARY KEY (scope, key, day, model)
);
