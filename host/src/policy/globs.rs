//! The host side of `glob-match`: patterns compiled once, shared by every instance.

use foldhash::HashMap;
use regex::Regex;
use std::sync::RwLock;

/// Compiled patterns are kept up to this count; past it the cache starts over, so a tenant
/// cannot grow host memory without bound by sending ever new patterns.
const MAX_CACHED: usize = 8192;

/// A shared cache of compiled globs. Invalid patterns are cached as `None`: they match nothing.
#[derive(Default)]
pub struct GlobCache {
    // foldhash: randomly seeded like SipHash (a policy may pass workload-controlled text as a
    // pattern), several times faster; SipHash showed up in the decision profile.
    compiled: RwLock<HashMap<String, Option<Regex>>>,
}

impl GlobCache {
    pub fn is_match(&self, pattern: &str, text: &str) -> bool {
        if let Some(entry) = self
            .compiled
            .read()
            .expect("glob cache poisoned")
            .get(pattern)
        {
            return entry.as_ref().is_some_and(|re| re.is_match(text));
        }
        let compiled = compile(pattern);
        let matched = compiled.as_ref().is_some_and(|re| re.is_match(text));
        let mut cache = self.compiled.write().expect("glob cache poisoned");
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(pattern.to_owned(), compiled);
        matched
    }
}

fn compile(pattern: &str) -> Option<Regex> {
    let source = tollgate_policy::glob::to_regex(pattern).ok()?;
    regex::RegexBuilder::new(&source)
        .size_limit(1 << 20)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::GlobCache;

    #[test]
    fn contract_semantics() {
        let globs = GlobCache::default();
        let cases = [
            ("team-a*", "team-a", true),
            ("team-a*", "team-a-prod", true),
            ("team-a*", "team-attacker:sa", false),
            (
                "system:serviceaccount:prod:*",
                "system:serviceaccount:prod:app",
                true,
            ),
            (
                "system:serviceaccount:prod:*",
                "system:serviceaccount:prod:a:b",
                false,
            ),
            (
                "system:serviceaccount:prod:app",
                "system:serviceaccount:prod:app-evil",
                false,
            ),
            (
                "system:serviceaccount:prod:app",
                "system:serviceaccount:prod:app\n",
                false,
            ),
            (
                "system:serviceaccount:**",
                "system:serviceaccount:prod:app",
                true,
            ),
            ("a/*", "a/b/c", false),
            ("a/**", "a/b/c", true),
            ("pod-?", "pod-1", true),
            ("pod-?", "pod-:", false),
            ("[abc]x", "bx", true),
            ("[!abc]x", "dx", true),
            ("[!abc]x", ":x", false),
            ("{api,web}-*", "web-1", true),
            ("{api,web}-*", "db-1", false),
            ("prod.*", "prodx", false),
            ("broken[", "broken[", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                globs.is_match(pattern, text),
                expected,
                "{pattern} vs {text:?}"
            );
            // Second lookup hits the cache and must agree.
            assert_eq!(
                globs.is_match(pattern, text),
                expected,
                "{pattern} vs {text:?} (cached)"
            );
        }
    }
}
