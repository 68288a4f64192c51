-- API keys, shared rate-limit buckets, idempotency records, and the
-- evaluation columns for ownership and the evaluation cache.

CREATE TABLE api_keys (
	id         text PRIMARY KEY,
	name       text NOT NULL,
	scopes     text[] NOT NULL,
	-- SHA-256 of the secret; the secret itself is never stored.
	hash       bytea NOT NULL,
	created_at timestamptz NOT NULL,
	revoked_at timestamptz,
	rate_rps   double precision NOT NULL DEFAULT 0,
	rate_burst int NOT NULL DEFAULT 0
);

-- One token bucket per key, updated by one atomic statement per request so
-- that every replica shares the limit (internal/postgres/ratelimit.go).
CREATE TABLE rate_limits (
	bucket     text PRIMARY KEY,
	tokens     double precision NOT NULL,
	updated_at timestamptz NOT NULL,
	-- Whether the last request got a token; returned by the same statement.
	allowed    boolean NOT NULL
);

CREATE TABLE idempotency_keys (
	owner        text NOT NULL,
	key          text NOT NULL,
	request_hash text NOT NULL,
	done         boolean NOT NULL DEFAULT false,
	status       int,
	content_type text,
	location     text,
	body         bytea,
	created_at   timestamptz NOT NULL,
	PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

ALTER TABLE evaluations ADD COLUMN api_key_id text;
ALTER TABLE evaluations ADD COLUMN cache_key text;
CREATE INDEX evaluations_key_idx ON evaluations (api_key_id, created_at DESC, id DESC)
	WHERE api_key_id IS NOT NULL;
CREATE INDEX evaluations_cache_idx ON evaluations (cache_key, created_at DESC)
	WHERE cache_key IS NOT NULL;
