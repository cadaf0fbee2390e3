//! The in-policy matcher against the host's regular expression, on generated patterns and
//! texts: any disagreement is a bug in one of them.

use super::{Glob, matches, to_regex, validate};
use alloc::string::String;
use alloc::vec::Vec;

/// A small deterministic generator (xorshift64*): reproducible failures, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const PATTERN_PIECES: &[&str] = &[
    "a", "b", "ab", ":", "/", "-", "*", "*", "**", "?", "[ab]", "[!a]", "[^:]", "[a-c]", "[]a]",
    "[a-]", "[-b]", "[:/]", "{a,b}", "{a*,b:}", "{,a}", "{x/**,?}", "\\*", "\\[", "é", "]", "}",
    ",", "[a-c-e]", "[z-a]", "{", "[", "\\", "\\\\", "\\é", "\\,", "x",
];
const TEXT_PIECES: &[&str] = &[
    "a", "b", "c", "e", ":", "/", "-", "*", "[", "]", "é", "\n", "ab", "x", ",", "}",
];

fn generate(rng: &mut Rng, pieces: &[&str], max: u64) -> String {
    let len = rng.next() % (max + 1);
    (0..len).map(|_| rng.pick(pieces)).collect()
}

#[test]
fn in_policy_matcher_agrees_with_the_host_regex() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut valid, mut matched) = (0, 0);
    for _ in 0..4_000 {
        let pattern = generate(&mut rng, PATTERN_PIECES, 6);
        let regex = to_regex(&pattern)
            .ok()
            .map(|source| regex::Regex::new(&source).unwrap_or_else(|e| panic!("{pattern}: {e}")));
        assert_eq!(regex.is_some(), validate(&pattern).is_ok(), "{pattern}");
        assert_eq!(regex.is_some(), Glob::new(&pattern).is_ok(), "{pattern}");
        valid += usize::from(regex.is_some());
        let texts: Vec<String> = (0..40)
            .map(|_| generate(&mut rng, TEXT_PIECES, 8))
            .chain([pattern.clone(), pattern.replace(['*', '?', '\\'], "")])
            .collect();
        for text in &texts {
            let want = regex.as_ref().is_some_and(|re| re.is_match(text));
            assert_eq!(
                matches(&pattern, text),
                want,
                "pattern {pattern:?} text {text:?}"
            );
            matched += usize::from(want);
        }
    }
    // The generator must exercise both outcomes, or the comparison proves little.
    assert!(
        valid > 2_000 && matched > 5_000,
        "valid {valid}, matched {matched}"
    );
}

#[test]
fn no_backtracking_blow_up() {
    let pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*b{x,y}";
    let text = "a".repeat(5_000);
    assert!(!matches(pattern, &text));
    let pattern = "**a**a**a**a**a**a**a**a**a**a**a**b";
    assert!(!matches(pattern, &text));
}

#[test]
fn separators_bound_single_stars() {
    assert!(matches("team-a*", "team-a1"));
    assert!(!matches("team-a*", "team-a:x"));
    assert!(!matches("prod:app", "prod:app-evil"));
    assert!(!matches("prod:app", "prod:app\n"));
    assert!(matches(
        "system:serviceaccount:team-*:deployer",
        "system:serviceaccount:team-x:deployer"
    ));
    assert!(!matches(
        "system:serviceaccount:team-*:deployer",
        "system:serviceaccount:team-x:y:deployer"
    ));
    assert!(matches("a/**", "a/b/c:d"));
    assert!(!matches("[z-a]", "b"));
}
