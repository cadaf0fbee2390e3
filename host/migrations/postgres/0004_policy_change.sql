-- Changing a policy without fear (docs/CONTRACTS.md, "Policy change"). Keep in step with
-- ../sqlite/0004_policy_change.sql: the two are the same statements.

-- A tenant's named policies: each upload under a name that changes the module is a new
-- version; a rollback is a new version with an older one's module.
CREATE TABLE policy_versions (
    tenant TEXT NOT NULL REFERENCES tenants (name),
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    digest TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    description TEXT,
    PRIMARY KEY (tenant, name, version),
    FOREIGN KEY (tenant, digest) REFERENCES policies (tenant, digest)
);

-- What an identity's `policy` (NAME, NAME@VERSION, a digest or a built-in) resolves to now,
-- the identity's own cases (JSON), and its shadow candidate (JSON).
ALTER TABLE identities ADD COLUMN resolved_policy TEXT NOT NULL DEFAULT '';
UPDATE identities SET resolved_policy = policy;
ALTER TABLE identities ADD COLUMN cases TEXT NOT NULL DEFAULT '[]';
ALTER TABLE identities ADD COLUMN shadow TEXT;

-- What the policy saw (verified claims and the exchange, never the token), kept for replay
-- for the operator's window; and the shadow candidate's answer beside the policy's.
ALTER TABLE decisions ADD COLUMN request TEXT;
ALTER TABLE decisions ADD COLUMN shadow TEXT;
