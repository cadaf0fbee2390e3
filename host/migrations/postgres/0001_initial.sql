-- Tollgate's schema for PostgreSQL. Keep in step with ../sqlite/0001_initial.sql: the two differ
-- only where the dialects must (BLOB vs BYTEA, how the audit log's id is generated).
-- Times are Unix seconds; JSON-typed fields are TEXT holding JSON.

CREATE TABLE tenants (
    name TEXT NOT NULL PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT NOT NULL PRIMARY KEY,
    tenant TEXT REFERENCES tenants (name),
    secret_hash BYTEA NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE issuers (
    tenant TEXT NOT NULL REFERENCES tenants (name),
    name TEXT NOT NULL,
    issuer_url TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);

CREATE TABLE policies (
    tenant TEXT NOT NULL REFERENCES tenants (name),
    digest TEXT NOT NULL,
    name TEXT,
    size BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, digest)
);

CREATE TABLE identities (
    tenant TEXT NOT NULL REFERENCES tenants (name),
    id TEXT NOT NULL,
    uid TEXT NOT NULL UNIQUE,
    issuer TEXT NOT NULL,
    accepted_audiences TEXT NOT NULL,
    token_audiences TEXT NOT NULL,
    policy TEXT NOT NULL,
    config TEXT NOT NULL,
    scopes TEXT NOT NULL,
    ttl_seconds BIGINT NOT NULL,
    max_ttl_seconds BIGINT NOT NULL,
    fuel BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, issuer) REFERENCES issuers (tenant, name)
);

-- Deleting an issuer checks that no identity still names it.
CREATE INDEX identities_by_issuer ON identities (tenant, issuer);

CREATE TABLE signing_keys (
    kid TEXT NOT NULL PRIMARY KEY,
    alg TEXT NOT NULL,
    private_pkcs8 BYTEA NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- An identity column never reuses ids, so a page cursor (`before_id`) stays meaningful.
CREATE TABLE decisions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT NOT NULL,
    identity TEXT NOT NULL,
    at BIGINT NOT NULL,
    allowed BIGINT NOT NULL,
    code TEXT,
    reason TEXT,
    source TEXT,
    subject TEXT,
    issuer TEXT,
    policy_digest TEXT,
    fuel_used BIGINT NOT NULL,
    scopes TEXT NOT NULL,
    client_address TEXT,
    jti TEXT
);

CREATE INDEX decisions_by_tenant ON decisions (tenant, id);
