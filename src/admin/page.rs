//! Paging through the newest-first listings. A full page (`limit` rows)
//! names where the next one starts: its last row's creation time and id, as
//! `<created_at>:<id>`. Rows are ordered by both, so of the rows there when
//! the listing began none is skipped or shown twice (a row added meanwhile
//! may or may not show).

use serde::Serialize;

use super::{AdminError, check_client_id};
use crate::store::Cursor;

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` for the next page; `None` when this one was the last.
    pub next: Option<String>,
}

/// A cursor as typed (`--after`, `?after=`).
pub fn parse_cursor(text: &str) -> Result<Cursor, AdminError> {
    let invalid = || {
        AdminError::Invalid(format!(
            "after must be a listing's `next` value (<created_at>:<id>), got {text:?}"
        ))
    };
    let (created_at, id) = text.split_once(':').ok_or_else(invalid)?;
    let created_at: i64 = created_at.parse().map_err(|_| invalid())?;
    // Ids of every kind, client ids (URLs, free text) included.
    check_client_id(id).map_err(|_| invalid())?;
    Ok(Cursor {
        created_at,
        id: id.to_string(),
    })
}

/// `items` as a page of at most `limit`; `key` gives a row's creation time
/// and id.
pub(super) fn page<T>(items: Vec<T>, limit: i64, key: impl Fn(&T) -> (i64, &str)) -> Page<T> {
    let next = match items.last() {
        Some(last) if items.len() as i64 >= limit => {
            let (created_at, id) = key(last);
            Some(format!("{created_at}:{id}"))
        }
        _ => None,
    };
    Page { items, next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_page_names_its_last_row_and_the_next_page_starts_after_it() {
        let rows = vec![(30, "c"), (20, "https://app.example/x:y")];
        let full = page(rows.clone(), 2, |r| (r.0, r.1));
        let next = full.next.unwrap();
        assert_eq!(next, "20:https://app.example/x:y");
        assert_eq!(
            parse_cursor(&next).unwrap(),
            Cursor {
                created_at: 20,
                id: "https://app.example/x:y".into()
            }
        );
        assert_eq!(
            page(rows, 3, |r| (r.0, r.1)).next,
            None,
            "not full: the last"
        );
    }

    #[test]
    fn a_cursor_that_no_listing_gave_is_invalid() {
        for bad in ["", "20", ":id", "soon:id", "20:", "20:a\nb"] {
            assert!(
                matches!(parse_cursor(bad), Err(AdminError::Invalid(_))),
                "{bad:?}"
            );
        }
    }
}
