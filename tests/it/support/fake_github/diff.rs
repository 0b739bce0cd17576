//! Unified diffs as GitHub renders a pull request for
//! `application/vnd.github.diff`: one `diff --git` section per changed file,
//! `new file mode 100644` and `--- /dev/null` for an added one, abbreviated
//! blob ids on the `index` line, one hunk with up to three lines of context
//! (the changed lines between the common head and tail), and
//! `\ No newline at end of file` after a last line without one.

use super::repos::sha;

const CONTEXT: usize = 3;

/// The diff of `path` from `old` (`None`: the file is new) to `new`.
pub(super) fn file_diff(path: &str, old: Option<&str>, new: &str) -> String {
    let new_id = &sha(new.as_bytes())[..7];
    let mut out = format!("diff --git a/{path} b/{path}\n");
    match old {
        None => out.push_str(&format!("new file mode 100644\nindex 0000000..{new_id}\n")),
        Some(old) => out.push_str(&format!(
            "index {}..{new_id} 100644\n",
            &sha(old.as_bytes())[..7]
        )),
    }
    let (a, b) = (lines(old.unwrap_or_default()), lines(new));
    // An empty new file has no hunk, and no ---/+++ lines either.
    if a.is_empty() && b.is_empty() {
        return out;
    }
    match old {
        None => out.push_str("--- /dev/null\n"),
        Some(_) => out.push_str(&format!("--- a/{path}\n")),
    }
    out.push_str(&format!("+++ b/{path}\n"));
    out.push_str(&hunk(&a, &b));
    out
}

/// One hunk: the lines between the common head and tail, with context.
fn hunk(a: &[&str], b: &[&str]) -> String {
    let head = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let start = head - head.min(CONTEXT);
    let after = tail.min(CONTEXT);
    let (a_end, b_end) = (a.len() - tail, b.len() - tail);
    let mut out = format!(
        "@@ -{} +{} @@\n",
        range(start, a_end + after - start),
        range(start, b_end + after - start)
    );
    let mut line = |mark: char, text: &str| {
        out.push(mark);
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    };
    a[start..head].iter().for_each(|l| line(' ', l));
    a[head..a_end].iter().for_each(|l| line('-', l));
    b[head..b_end].iter().for_each(|l| line('+', l));
    a[a_end..a_end + after].iter().for_each(|l| line(' ', l));
    out
}

/// A hunk range: `start,count` from 1, the count left out when it is 1;
/// an empty range names the line before it.
fn range(start: usize, count: usize) -> String {
    match count {
        0 => format!("{start},0"),
        1 => format!("{}", start + 1),
        n => format!("{},{n}", start + 1),
    }
}

/// Lines with their endings, so a last line without one shows.
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_all_added_lines_from_dev_null() {
        let diff = file_diff("docs/a.md", None, "# A\n\nText.\n");
        let id = &sha(b"# A\n\nText.\n")[..7];
        assert_eq!(
            diff,
            format!(
                "diff --git a/docs/a.md b/docs/a.md\nnew file mode 100644\nindex 0000000..{id}\n\
                 --- /dev/null\n+++ b/docs/a.md\n@@ -0,0 +1,3 @@\n+# A\n+\n+Text.\n"
            )
        );
    }

    #[test]
    fn a_changed_line_comes_with_three_lines_of_context() {
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n";
        let new = "1\n2\n3\n4\nfive\n6\n7\n8\n";
        let diff = file_diff("n.txt", Some(old), new);
        assert!(
            diff.ends_with(
                "--- a/n.txt\n+++ b/n.txt\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"
            ),
            "{diff}"
        );
    }

    #[test]
    fn a_last_line_without_newline_is_marked() {
        let diff = file_diff("a", None, "x");
        assert!(
            diff.ends_with("@@ -0,0 +1 @@\n+x\n\\ No newline at end of file\n"),
            "{diff}"
        );
    }
}
