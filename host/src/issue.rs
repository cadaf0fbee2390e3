//! Tollgate's own signing keys: generation, signing, the published key set and its rotation.
//!
//! Keys are generated with aws-lc-rs and stored as PKCS#8; tokens are signed with the parsed
//! aws-lc-rs key pair (`jws.rs`, the same bytes `jsonwebtoken::encode` writes). A key's `kid` is its RFC 7638 JWK thumbprint, so the same key always gets
//! the same `kid` wherever it is reloaded.

mod algorithm;
mod jwk;
mod jws;
mod keyring;
mod keys;
mod signer;
#[cfg(test)]
mod tests;

pub use algorithm::{Algorithm, KeyError};
pub use jwk::jwk_thumbprint;
pub use keyring::KeyRing;
pub use keys::SigningKey;
pub use signer::{ACCESS_TOKEN_TYP, OwnTokenError, Signer, SignerError, sync_period};
