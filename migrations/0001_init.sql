-- Rubrics, their versions and vectors, and evaluations.

CREATE EXTENSION IF NOT EXISTS vector;

-- Ids use the "C" collation so that ORDER BY id and the keyset condition
-- id > $after compare bytes, as the in-memory store does, whatever the
-- database's default collation is.
CREATE TABLE rubrics (
	id             text COLLATE "C" PRIMARY KEY,
	latest_version int NOT NULL,
	-- An archived rubric is neither listed nor matched; its versions stay
	-- readable for the evaluations graded with them.
	archived_at    timestamptz
);

CREATE TABLE rubric_versions (
	rubric_id    text COLLATE "C" NOT NULL REFERENCES rubrics (id),
	version      int NOT NULL,
	-- rubric.Rubric.ContentHash: a sync compares it to tell a changed file.
	content_hash text NOT NULL,
	body         jsonb NOT NULL,
	created_at   timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (rubric_id, version)
);

-- The vector has no fixed dimension, so that several embedding models can
-- share the table. An HNSW index needs one, so the store creates a partial
-- expression index per (model, dims) on first use; see
-- internal/postgres/vectors.go.
CREATE TABLE rubric_embeddings (
	id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	rubric_id text COLLATE "C" NOT NULL,
	version   int NOT NULL,
	model     text NOT NULL,
	text      text NOT NULL,
	embedding vector NOT NULL,
	dims      int NOT NULL CHECK (dims = vector_dims(embedding)),
	FOREIGN KEY (rubric_id, version) REFERENCES rubric_versions (rubric_id, version)
);

-- Finds the vectors of one rubric version: RubricsToEmbed's NOT EXISTS and
-- PutVectors' replacement.
CREATE INDEX rubric_embeddings_version_idx ON rubric_embeddings (rubric_id, version, model);

-- Only the columns that are filtered or sorted on live outside body, which
-- is the evaluation exactly as the API returns it.
CREATE TABLE evaluations (
	id             uuid PRIMARY KEY,
	created_at     timestamptz NOT NULL,
	rubric_id      text NOT NULL,
	rubric_version int NOT NULL,
	candidate_ref  text,
	status         text NOT NULL,
	body           jsonb NOT NULL
);

-- One index per listing, each matching WHERE ... AND (created_at, id) <
-- (cursor) ORDER BY created_at DESC, id DESC, so a page is an index range.
CREATE INDEX evaluations_created_idx ON evaluations (created_at DESC, id DESC);
CREATE INDEX evaluations_rubric_idx ON evaluations (rubric_id, created_at DESC, id DESC);
CREATE INDEX evaluations_candidate_idx ON evaluations (candidate_ref, created_at DESC, id DESC)
	WHERE candidate_ref IS NOT NULL;
