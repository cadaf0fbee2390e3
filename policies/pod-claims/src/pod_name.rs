//! Reading the owning workload out of a pod name, the way Kubernetes controllers build them.
//!
//! A Deployment's ReplicaSet is named `{deployment}-{pod-template-hash}` and its pods
//! `{replicaset}-{suffix}`. The hash is a 32-bit FNV hash printed in decimal and mapped digit by
//! digit onto `4-9bcdf` (`rand.SafeEncodeString`); the suffix is 5 characters of the alphabet
//! `bcdfghjklmnpqrstvwxz2456789` (`generateName`). A StatefulSet's pods are `{statefulset}-{ordinal}`.
//! Knowing the alphabets keeps names such as `my-ds-bcdfg` (a DaemonSet pod: `s` cannot appear
//! in a hash) from being misread as a Deployment.

/// Characters of a `pod-template-hash`: `SafeEncodeString` of a decimal number.
const HASH_ALPHABET: &str = "456789bcdf";
/// Characters of the random suffix `generateName` appends.
const SUFFIX_ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";
/// `generateName` keeps at most 58 characters of the base and adds 5: a name this long may have
/// had its ReplicaSet part cut short, so it is not split.
const TRUNCATED_LEN: usize = 63;
/// Longest name Kubernetes accepts for a pod (a DNS subdomain).
const MAX_NAME_LEN: usize = 253;

/// The workload a pod belongs to, as far as its name tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workload<'a> {
    /// `{deployment}-{hash}-{suffix}`.
    Deployment {
        /// The Deployment's name.
        name: &'a str,
        /// The ReplicaSet's name: `{deployment}-{hash}`.
        replicaset: &'a str,
    },
    /// `{statefulset}-{ordinal}`.
    StatefulSet {
        /// The StatefulSet's name.
        name: &'a str,
        /// The pod's ordinal.
        ordinal: u32,
    },
    /// Any other name: a bare pod, a Job or DaemonSet pod, a truncated name.
    Other(&'a str),
}

impl<'a> Workload<'a> {
    /// The workload's name.
    pub fn name(&self) -> &'a str {
        match self {
            Self::Deployment { name, .. } | Self::StatefulSet { name, .. } | Self::Other(name) => {
                name
            }
        }
    }
}

/// Whether `name` is a valid pod name: an RFC 1123 DNS subdomain (lowercase letters, digits,
/// `-` and `.`, starting and ending with a letter or digit, at most 253 characters).
pub fn is_valid(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
}

/// Reads the workload out of a pod name.
pub fn parse(pod: &str) -> Workload<'_> {
    deployment(pod)
        .or_else(|| stateful_set(pod))
        .unwrap_or(Workload::Other(pod))
}

fn deployment(pod: &str) -> Option<Workload<'_>> {
    if pod.len() >= TRUNCATED_LEN {
        return None;
    }
    let (replicaset, suffix) = pod.rsplit_once('-')?;
    let (name, hash) = replicaset.rsplit_once('-')?;
    let suffix_ok = suffix.len() == 5 && suffix.chars().all(|c| SUFFIX_ALPHABET.contains(c));
    let hash_ok = (1..=10).contains(&hash.len()) && hash.chars().all(|c| HASH_ALPHABET.contains(c));
    (suffix_ok && hash_ok && !name.is_empty()).then_some(Workload::Deployment { name, replicaset })
}

fn stateful_set(pod: &str) -> Option<Workload<'_>> {
    let (name, ordinal) = pod.rsplit_once('-')?;
    let canonical = ordinal == "0" || !ordinal.starts_with('0');
    if name.is_empty() || !canonical || !ordinal.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // Ordinals are non-negative `int32`s.
    let ordinal: u32 = ordinal.parse().ok().filter(|n| *n <= i32::MAX as u32)?;
    Some(Workload::StatefulSet { name, ordinal })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_controller_names() {
        assert_eq!(
            parse("api-7d9f8b6c5-x2x9z"),
            Workload::Deployment {
                name: "api",
                replicaset: "api-7d9f8b6c5"
            }
        );
        assert_eq!(
            parse("db-0"),
            Workload::StatefulSet {
                name: "db",
                ordinal: 0
            }
        );
        for other in [
            "api",
            "my-ds-bcdfg",
            "db-01",
            "db-",
            "-0",
            "-7d9f8b6c5-x2x9z",
        ] {
            assert_eq!(parse(other), Workload::Other(other));
        }
    }

    #[test]
    fn validates_names() {
        assert!(is_valid("api-7d9f8b6c5-x2x9z"));
        assert!(is_valid("a.b-0"));
        for bad in [
            "",
            "API",
            "-a",
            "a-",
            "a b",
            "a_b",
            "a{b}",
            &"a".repeat(254),
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
