//! Showing events to an operator: an aligned table, or one JSON object per
//! line for tools.

use crate::store::AuditRecord;

use crate::utc::format_time;

/// One JSON object, every stored field, on one line.
pub fn json_line(record: &AuditRecord) -> String {
    json_value(record).to_string()
}

/// Every stored field, as the JSON object `json_line` prints.
pub fn json_value(record: &AuditRecord) -> serde_json::Value {
    serde_json::json!({
        "seq": record.seq,
        "time": record.time,
        "time_rfc3339": format_time(record.time),
        "kind": record.kind,
        "actor": record.actor,
        "user_id": record.user_id,
        "user_provider": record.user_provider,
        "user_subject": record.user_subject,
        "user_login": record.user_login,
        "client_id": record.client_id,
        "grant_id": record.grant_id,
        "provider": record.provider,
        "outcome": record.outcome,
        "request_id": record.request_id,
        "detail": record.detail,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    })
}

const HEADERS: [&str; 9] = [
    "SEQ", "TIME", "KIND", "ACTOR", "USER", "CLIENT", "GRANT", "PROVIDER", "OUTCOME",
];

/// Columns padded to their widest cell; absent values shown as `-`. The
/// user is shown as `provider:login` when known (it outlives the user), and
/// the detail, when any, closes the line.
pub fn table(records: &[AuditRecord]) -> String {
    let rows: Vec<([String; 9], Option<String>)> = records
        .iter()
        .map(|r| {
            let or_dash = |v: &Option<String>| v.as_deref().map_or("-".into(), printable);
            let user = match (&r.user_provider, &r.user_login, &r.user_id) {
                (Some(p), Some(l), _) => printable(&format!("{p}:{l}")),
                (_, _, id) => or_dash(id),
            };
            let cells = [
                r.seq.to_string(),
                format_time(r.time),
                printable(&r.kind),
                printable(&r.actor),
                user,
                or_dash(&r.client_id),
                or_dash(&r.grant_id),
                or_dash(&r.provider),
                printable(&r.outcome),
            ];
            (cells, r.detail.as_deref().map(printable))
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for (cells, _) in &rows {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str], detail: Option<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < cells.len() || detail.is_some() {
                out.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        if let Some(detail) = detail {
            out.push_str("  ");
            out.push_str(detail);
        }
        out.push('\n');
        out
    };
    let mut out = line(
        &HEADERS,
        rows.iter().any(|(_, d)| d.is_some()).then_some("DETAIL"),
    );
    for (cells, detail) in &rows {
        let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
        out.push_str(&line(&cells, detail.as_deref()));
    }
    out
}

/// A cell on one terminal line: control characters (a newline in a
/// refusal reason, an escape sequence in a client-chosen value) escaped.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: i64, login: Option<&str>, detail: Option<&str>) -> AuditRecord {
        AuditRecord {
            seq,
            time: 1_714_564_800,
            kind: "grant.created".into(),
            actor: "user:u1".into(),
            user_id: Some("u1".into()),
            user_provider: login.map(|_| "github".into()),
            user_subject: login.map(|_| "42".into()),
            user_login: login.map(Into::into),
            client_id: Some("client-1".into()),
            grant_id: None,
            provider: Some("github".into()),
            outcome: "ok".into(),
            request_id: None,
            detail: detail.map(Into::into),
            prev_hash: "p".into(),
            hash: "h".into(),
        }
    }

    #[test]
    fn table_aligns_columns_and_shows_absent_as_dash() {
        let text = table(&[
            record(1, Some("octocat"), None),
            record(10, None, Some("scope widened")),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("SEQ  TIME"), "{text}");
        assert!(lines[0].ends_with("DETAIL"), "{text}");
        assert!(lines[1].contains("github:octocat"), "{text}");
        assert!(lines[2].contains("u1"), "{text}");
        assert!(lines[2].ends_with("scope widened"), "{text}");
        let kind_at = |l: &str| l.find("grant.created").unwrap();
        assert_eq!(kind_at(lines[1]), kind_at(lines[2]), "{text}");
        assert!(lines[1].contains("  -  "), "{text}");
    }

    #[test]
    fn table_escapes_control_characters() {
        let mut r = record(1, None, Some("two\nlines"));
        r.outcome = "refused: \u{1b}[31mred".into();
        let text = table(&[r]);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("two\\nlines"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }

    #[test]
    fn json_line_is_one_line_with_every_field() {
        let line = json_line(&record(3, Some("octocat"), Some("a\nb")));
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["seq"], 3);
        assert_eq!(value["user_login"], "octocat");
        assert_eq!(value["grant_id"], serde_json::Value::Null);
        assert_eq!(value["time_rfc3339"], "2024-05-01T12:00:00Z");
        assert_eq!(value["detail"], "a\nb");
        assert_eq!(value["hash"], "h");
    }
}
