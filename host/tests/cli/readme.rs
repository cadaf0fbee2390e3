//! The README's quickstarts, read as a newcomer pastes them: each path must work the first
//! time, also after the one before it (the commands themselves run in `dev.rs`, `admin.rs` and
//! `policy.rs`; this holds the text to what those tests run).

/// The `sh` blocks of the README's quickstart sections.
fn quickstart_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    readme
        .split("\n## ")
        .filter(|section| section.starts_with("Quickstart"))
        .flat_map(|section| {
            section
                .split("```sh\n")
                .skip(1)
                .map(|block| block.split("```").next().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_quickstarts_create_distinct_tenants() {
    let blocks = quickstart_blocks();
    let mut tenants: Vec<String> = Vec::new();
    for block in &blocks {
        let curl = block.split(r#"-d '{"name":""#).skip(1);
        let cli = block.split("tenant create ").skip(1);
        for rest in curl.chain(cli) {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            assert!(!tenants.contains(&name), "tenant `{name}` is created twice");
            tenants.push(name);
        }
    }
    assert!(tenants.len() >= 2, "{tenants:?}");
}

#[test]
fn the_quickstarts_build_one_profile() {
    for block in quickstart_blocks() {
        for line in block
            .lines()
            .filter(|line| line.contains("cargo run") || line.contains("cargo build"))
        {
            assert!(
                line.contains("--release"),
                "a debug build beside release ones: {line}"
            );
        }
        if block.contains("wasm32-wasip2/") {
            assert!(!block.contains("target/debug/"), "{block}");
        }
    }
}

#[test]
fn the_quickstart_tokens_come_from_namespaces_their_identities_allow() {
    for block in quickstart_blocks() {
        for rest in block.split("dev token -n ").skip(1) {
            let namespace = rest.split_whitespace().next().unwrap();
            let allowed = [
                format!(r#""namespaces":["{namespace}"]"#),
                format!("namespaces: [{namespace}]"),
            ];
            assert!(
                allowed.iter().any(|config| block.contains(config)),
                "a token for `{namespace}`, which the block's identity does not allow:\n{block}"
            );
        }
    }
}
