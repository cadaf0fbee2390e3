-- The issued token's life (docs/CONTRACTS.md, "The issued token's life"). Keep in step with
-- ../postgres/0002_token_life.sql: the two are the same statements.

-- Use limits and trusted address ranges of an identity's tokens.
ALTER TABLE identities ADD COLUMN num_uses BIGINT NOT NULL DEFAULT 0;
ALTER TABLE identities ADD COLUMN trusted_cidrs TEXT NOT NULL DEFAULT '[]';

-- `admin` keys manage their tenant; `introspect` keys only introspect and revoke its tokens.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';

-- The record tells the story: what happened (exchange, renewal, introspection, revocation),
-- both token ids, the session a token belongs to (the first token's jti, kept by renewals)
-- and when that session can live no longer, and the lines the policy logged.
ALTER TABLE decisions ADD COLUMN event TEXT NOT NULL DEFAULT 'exchange';
ALTER TABLE decisions ADD COLUMN subject_jti TEXT;
ALTER TABLE decisions ADD COLUMN session TEXT;
ALTER TABLE decisions ADD COLUMN session_ends BIGINT;
ALTER TABLE decisions ADD COLUMN logs TEXT;

-- Uses consumed per session, counted in one statement each (so replicas count together).
-- Rows go once the session has ended.
CREATE TABLE token_uses (
    session TEXT NOT NULL PRIMARY KEY,
    tenant TEXT NOT NULL,
    used BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Revoked sessions, until they would have ended anyway.
CREATE TABLE revoked_sessions (
    session TEXT NOT NULL PRIMARY KEY,
    tenant TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
