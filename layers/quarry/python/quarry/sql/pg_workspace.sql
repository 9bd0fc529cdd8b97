-- One workspace's chunk index (quarry.adapters.pgvector). Idempotent.
-- {schema}: the workspace's own schema (quoted identifier); {dimensions}: its embedding size.

CREATE SCHEMA IF NOT EXISTS {schema};

-- Exactly one row: the embedding size and the corpus statistics BM25 needs (N, total length),
-- kept exact by the same transaction that changes chunks.
CREATE TABLE IF NOT EXISTS {schema}.stats (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    dimensions   integer NOT NULL,
    chunk_count  bigint NOT NULL DEFAULT 0,
    total_length bigint NOT NULL DEFAULT 0
);
INSERT INTO {schema}.stats (dimensions) VALUES ({dimensions}) ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS {schema}.chunks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id text NOT NULL,
    ordinal     integer NOT NULL,
    title       text NOT NULL,
    text        text NOT NULL,
    span_start  integer NOT NULL,
    span_end    integer NOT NULL,
    metadata    jsonb NOT NULL,
    embedding   vector({dimensions}) NOT NULL,
    UNIQUE (document_id, ordinal)
) WITH (autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
CREATE INDEX IF NOT EXISTS chunks_embedding ON {schema}.chunks USING hnsw (embedding vector_cosine_ops)
    WITH (m = 16, ef_construction = 128);
CREATE INDEX IF NOT EXISTS chunks_metadata ON {schema}.chunks USING gin (metadata jsonb_path_ops);

-- The inverted index: one row per (lexeme, chunk) with the term frequency and the chunk's
-- length in lexemes, so BM25 is computed from this index alone (index-only scan on lexeme).
-- Index-only scans need the visibility map, and the planner fresh statistics: vacuum early.
CREATE TABLE IF NOT EXISTS {schema}.postings (
    lexeme   text NOT NULL,
    chunk_id bigint NOT NULL,
    tf       integer NOT NULL,
    dl       integer NOT NULL
) WITH (autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
CREATE INDEX IF NOT EXISTS postings_lexeme ON {schema}.postings (lexeme) INCLUDE (chunk_id, tf, dl);
CREATE INDEX IF NOT EXISTS postings_chunk ON {schema}.postings (chunk_id);
