//! Key-set parsing (`tollgate::verify::jwks::KeySet::from_bytes`), as run on a JWKS answer from
//! an issuer: nothing may panic, and every key it keeps must obey the entry rules.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::verify::jwks::KeySet;
use tollgate::verify::jwt::valid_kid;

fuzz_target!(|data: &[u8]| {
    let Ok(set) = KeySet::from_bytes(data) else {
        return;
    };
    let mut kids = std::collections::HashSet::new();
    for key in &set.keys {
        if let Some(kid) = &key.kid {
            assert!(valid_kid(kid), "{kid:?}");
            assert!(kids.insert(kid.clone()), "duplicate kid {kid:?} kept");
        }
        assert!(key.alg.is_none_or(|alg| key.kind.allows(alg)), "{key:?}");
    }
    assert!(set.keys.len() + set.skipped.len() <= 100);
});
