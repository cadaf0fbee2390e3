//! Text output shared by the admin subcommands: aligned tables, times, resources rendered as
//! `apply` documents.

use serde_json::Value;

/// Prints the server's answer for `--format json`.
pub fn json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

/// Prints rows with columns padded to the widest cell (the last column is not padded).
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i == last {
                    (*cell).to_owned()
                } else {
                    format!("{cell:<width$}", width = widths[i])
                }
            })
            .collect();
        println!("{}", padded.join("  "));
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// A string field, or `-`.
pub fn text(value: &Value, field: &str) -> String {
    match &value[field] {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Null => "-".into(),
        Value::String(_) => "-".into(),
        other => other.to_string(),
    }
}

/// A list of strings joined by `,`, or `-`.
pub fn list(value: &Value, field: &str) -> String {
    let items: Vec<&str> = value[field]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(",")
    }
}

/// Unix seconds as `2026-11-22T12:08:09Z`.
pub fn time(value: &Value) -> String {
    let Some(unix) = value.as_i64() else {
        return "-".into();
    };
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil conversion: no date crate for one format.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `fields` of `record`, in order, after `kind` and `tenant`, as a YAML `apply` document.
/// Absent and null fields are left out.
pub fn document(kind: &str, tenant: &str, record: &Value, fields: &[&str]) -> String {
    let mut map = serde_yaml_ng::Mapping::new();
    map.insert("kind".into(), kind.into());
    map.insert("tenant".into(), tenant.into());
    for field in fields {
        let value = &record[*field];
        if value.is_null() {
            continue;
        }
        if let Ok(value) = serde_yaml_ng::to_value(value) {
            map.insert((*field).into(), mode_first(value));
        }
    }
    serde_yaml_ng::to_string(&map).unwrap_or_default()
}

/// An issuer source reads best with its `mode` first (JSON objects come out sorted).
fn mode_first(value: serde_yaml_ng::Value) -> serde_yaml_ng::Value {
    let serde_yaml_ng::Value::Mapping(map) = value else {
        return value;
    };
    let Some(mode) = map.get("mode").cloned() else {
        return serde_yaml_ng::Value::Mapping(map);
    };
    let mut ordered = serde_yaml_ng::Mapping::new();
    ordered.insert("mode".into(), mode);
    for (key, value) in map {
        if key.as_str() != Some("mode") {
            ordered.insert(key, value);
        }
    }
    serde_yaml_ng::Value::Mapping(ordered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_are_utc_rfc3339() {
        assert_eq!(time(&json!(0)), "1970-01-01T00:00:00Z");
        assert_eq!(time(&json!(1_700_000_000)), "2023-11-14T22:13:20Z");
        assert_eq!(time(&json!(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(time(&json!(null)), "-");
    }
}
