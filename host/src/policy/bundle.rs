//! A policy bundle: a component that carries its own cases file in a custom section
//! (`tollgate-cases`), written by `tollgate policy bundle` and run by the server at upload.
//!
//! The section is the cases file's YAML text, appended to the component's top level; a custom
//! section changes nothing the component does, and the module's digest covers its cases.

use wasmparser::{Chunk, Parser, Payload};

/// The custom section's name.
pub const CASES_SECTION: &str = "tollgate-cases";

/// Why a bundle cannot be read or made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BundleError {
    #[error("not a WebAssembly binary: {0}")]
    Malformed(String),
    #[error("the `{CASES_SECTION}` section is not UTF-8")]
    NotText,
    #[error("the module has a `{CASES_SECTION}` section already")]
    AlreadyBundled,
    #[error("the module has {0} `{CASES_SECTION}` sections; a bundle has one")]
    Several(usize),
}

/// The cases file embedded at the top level of `bytes`, if any. Nested modules are skipped,
/// not read: an 18 MiB interpreter guest is walked in a few dozen steps.
pub fn embedded_cases(bytes: &[u8]) -> Result<Option<String>, BundleError> {
    let mut parser = Parser::new(0);
    let mut rest = bytes;
    let mut found = Vec::new();
    loop {
        let (consumed, payload) = match parser.parse(rest, true) {
            Ok(Chunk::Parsed { consumed, payload }) => (consumed, payload),
            Ok(Chunk::NeedMoreData(_)) => {
                return Err(BundleError::Malformed("truncated".into()));
            }
            Err(e) => return Err(BundleError::Malformed(e.to_string())),
        };
        rest = &rest[consumed..];
        match payload {
            Payload::CustomSection(section) if section.name() == CASES_SECTION => {
                let text = std::str::from_utf8(section.data()).map_err(|_| BundleError::NotText)?;
                found.push(text.to_owned());
            }
            // The outer parser moves past a nested module; its bytes are skipped here.
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => {
                rest = rest
                    .get(unchecked_range.len()..)
                    .ok_or_else(|| BundleError::Malformed("truncated".into()))?;
            }
            Payload::End(_) => break,
            _ => {}
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => Err(BundleError::Several(n)),
    }
}

/// `module` with `cases` (a cases file's text) appended as its `tollgate-cases` section.
pub fn bundle(module: &[u8], cases: &str) -> Result<Vec<u8>, BundleError> {
    if embedded_cases(module)?.is_some() {
        return Err(BundleError::AlreadyBundled);
    }
    let mut payload = Vec::new();
    leb128(&mut payload, CASES_SECTION.len());
    payload.extend_from_slice(CASES_SECTION.as_bytes());
    payload.extend_from_slice(cases.as_bytes());
    let mut out = Vec::with_capacity(module.len() + payload.len() + 6);
    out.extend_from_slice(module);
    out.push(0); // a custom section
    leb128(&mut out, payload.len());
    out.extend_from_slice(&payload);
    Ok(out)
}

fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: its preamble only.
    const EMPTY_COMPONENT: &[u8] = &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    #[test]
    fn a_bundle_carries_its_cases_and_only_once() {
        assert_eq!(embedded_cases(EMPTY_COMPONENT), Ok(None));
        let cases = "cases:\n  - name: é\n".repeat(20);
        let bundled = bundle(EMPTY_COMPONENT, &cases).unwrap();
        assert_eq!(embedded_cases(&bundled), Ok(Some(cases.clone())));
        assert_eq!(
            bundle(&bundled, "x"),
            Err(BundleError::AlreadyBundled),
            "a second section would be ambiguous"
        );
        // Two sections written by hand are refused, not one picked.
        let mut twice = bundled.clone();
        twice.extend_from_slice(&bundled[EMPTY_COMPONENT.len()..]);
        assert_eq!(embedded_cases(&twice), Err(BundleError::Several(2)));
        assert!(matches!(
            embedded_cases(&bundled[..bundled.len() - 3]),
            Err(BundleError::Malformed(_))
        ));
    }
}
