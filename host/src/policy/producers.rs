//! What a module says made it: the `producers` custom sections (tool conventions), read from the
//! component and every core module inside it.

use serde::Serialize;

/// The language and the tools named by a module's `producers` sections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Producers {
    /// Source languages (`language` field), such as `Rust`, `Python` or `JavaScript`, in the
    /// order found; the component's own section comes first.
    pub languages: Vec<String>,
    /// Tools that built or processed it (`processed-by` and `sdk` fields), as `name version`.
    pub toolchain: Vec<String>,
}

impl Producers {
    /// Reads every `producers` section, the component's own first (a toolchain such as
    /// componentize-js names itself there); a malformed one is skipped (the module itself was
    /// already validated by the compiler).
    pub fn read(bytes: &[u8]) -> Self {
        use wasmparser::{KnownCustom, Parser, Payload};
        // (nesting depth, field name, item): the outermost component is depth 1.
        let mut found: Vec<(usize, bool, String)> = Vec::new();
        let mut depth = 0usize;
        for payload in Parser::new(0).parse_all(bytes) {
            let section = match payload {
                Ok(Payload::Version { .. }) => {
                    depth += 1;
                    continue;
                }
                Ok(Payload::End(_)) => {
                    depth = depth.saturating_sub(1);
                    continue;
                }
                Ok(Payload::CustomSection(section)) => section,
                Ok(_) => continue,
                Err(_) => break,
            };
            let KnownCustom::Producers(reader) = section.as_known() else {
                continue;
            };
            for field in reader.into_iter().flatten() {
                let language = match field.name {
                    "language" => true,
                    "processed-by" | "sdk" => false,
                    _ => continue,
                };
                for value in field.values.into_iter().flatten() {
                    let item = if language || value.version.is_empty() {
                        value.name.to_owned()
                    } else {
                        format!("{} {}", value.name, value.version)
                    };
                    if !item.is_empty() {
                        found.push((depth, language, item));
                    }
                }
            }
        }
        found.sort_by_key(|(depth, _, _)| *depth);
        let mut out = Producers::default();
        for (_, language, item) in found {
            let list = if language {
                &mut out.languages
            } else {
                &mut out.toolchain
            };
            if !list.contains(&item) {
                list.push(item);
            }
        }
        out
    }

    /// The language to report: the first one named, unless it is the C runtime an interpreter
    /// is written in (`C`, `C11`, ...), when a later one is named.
    pub fn language(&self) -> Option<&str> {
        let c_runtime =
            |l: &&String| l.as_str() == "C" || l.starts_with("C1") || l.starts_with("C9");
        self.languages
            .iter()
            .find(|l| !c_runtime(l))
            .or(self.languages.first())
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sections_of_the_component_and_its_modules() {
        let wasm = wat::parse_str(
            r#"(component
                 (@producers (language "JavaScript" "") (processed-by "ComponentizeJS" "0.23.0"))
                 (core module (@producers (language "C11" "") (processed-by "clang" "19")))
               )"#,
        )
        .unwrap();
        let producers = Producers::read(&wasm);
        assert_eq!(producers.languages, ["JavaScript", "C11"]);
        let rust = wat::parse_str(
            r#"(component (core module (@producers (language "C11" "") (language "Rust" ""))))"#,
        )
        .unwrap();
        assert_eq!(Producers::read(&rust).language(), Some("Rust"));
        assert_eq!(producers.toolchain, ["ComponentizeJS 0.23.0", "clang 19"]);
        assert_eq!(producers.language(), Some("JavaScript"));
        assert_eq!(Producers::read(b"\0asm\x0d\0\x01\0"), Producers::default());
    }
}
