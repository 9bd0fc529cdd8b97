-- Catalog, chat history and live connections (quarry.adapters.sql_catalog).
-- Idempotent: run at every start. {schema} is substituted with a quoted identifier.

CREATE SCHEMA IF NOT EXISTS {schema};

CREATE TABLE IF NOT EXISTS {schema}.workspaces (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    owner           text NOT NULL,
    embedding_model text NOT NULL,
    dimensions      integer NOT NULL,
    chunk_size      integer NOT NULL,
    chunk_overlap   integer NOT NULL,
    hybrid          boolean NOT NULL,
    reranker        text,
    shared_with     text[] NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS workspaces_owner ON {schema}.workspaces (owner);
CREATE INDEX IF NOT EXISTS workspaces_shared_with ON {schema}.workspaces USING gin (shared_with);

CREATE TABLE IF NOT EXISTS {schema}.documents (
    workspace_id    text NOT NULL,
    id              text NOT NULL,
    name            text NOT NULL,
    source          text NOT NULL,
    status          text NOT NULL,
    status_reason   text,
    blob_key        text,
    content_type    text,
    size_bytes      bigint NOT NULL,
    content_hash    text,
    metadata        jsonb NOT NULL,
    parent_id       text,
    chunk_count     integer NOT NULL,
    idempotency_key text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS documents_listing ON {schema}.documents (workspace_id, created_at, id);
CREATE INDEX IF NOT EXISTS documents_status_age ON {schema}.documents (status, updated_at);

CREATE TABLE IF NOT EXISTS {schema}.feedback (
    session_id text NOT NULL,
    message_id text NOT NULL,
    "user"     text NOT NULL,
    rating     integer NOT NULL,
    comment    text,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, message_id, "user")
);
CREATE INDEX IF NOT EXISTS feedback_created ON {schema}.feedback (created_at);

CREATE TABLE IF NOT EXISTS {schema}.sessions (
    id           text PRIMARY KEY,
    owner        text NOT NULL,
    workspace_id text,
    title        text NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_owner ON {schema}.sessions (owner, updated_at DESC, id DESC);

-- One row per message; seq orders messages created in the same microsecond.
CREATE TABLE IF NOT EXISTS {schema}.messages (
    session_id text NOT NULL,
    id         text NOT NULL,
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    role       text NOT NULL,
    content    text NOT NULL,
    citations  jsonb NOT NULL,
    metadata   jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (session_id, id)
);
CREATE INDEX IF NOT EXISTS messages_in_order ON {schema}.messages (session_id, created_at, seq);

CREATE TABLE IF NOT EXISTS {schema}.connections (
    id         text PRIMARY KEY,
    "user"     text NOT NULL,
    expires_at timestamptz NOT NULL
);
-- When the token the connection was opened with expires (ws_message closes the connection after it).
ALTER TABLE {schema}.connections ADD COLUMN IF NOT EXISTS token_expires_at timestamptz;
CREATE INDEX IF NOT EXISTS connections_by_user ON {schema}.connections ("user");
CREATE INDEX IF NOT EXISTS connections_expiry ON {schema}.connections (expires_at);
