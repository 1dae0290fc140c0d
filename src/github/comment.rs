//! The sticky pull-request comment: one comment per marker, found by a hidden HTML comment
//! (`<!-- cortado:MARKER -->`) in a comment written by the token's own identity
//! ([`GitHubApi::identity`]), and edited on each run. Anyone can write the marker into a
//! comment of their own; such a comment is never the one cortado edits. Receives
//! pre-rendered Markdown; hands on what was done ([`CommentAction`]).

use serde_json::{Value, json};

use super::GitHubApi;
use crate::error::{Diagnostic, Error, Result};

/// GitHub refuses comment bodies longer than this many characters.
pub const MAX_BODY_CHARS: usize = 65_536;
/// Comments per page when listing.
const PER_PAGE: usize = 100;
/// A bound on pages listed (10,000 comments), should an API never return a short page.
const MAX_PAGES: usize = 100;

/// What [`upsert_comment`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentAction {
    Created { id: u64 },
    Updated { id: u64 },
}

/// The hidden tag of a marker. Markers are short names: letters, digits, `-`, `_`, `.`, `/`.
pub fn marker_tag(marker: &str) -> Result<String> {
    let ok = !marker.is_empty()
        && marker.len() <= 100
        && marker
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if !ok {
        return Err(Error::input(
            Diagnostic::error(format!("invalid comment marker {marker:?}"))
                .hint("use up to 100 letters, digits, '-', '_', '.' or '/'"),
        ));
    }
    Ok(format!("<!-- cortado:{marker} -->"))
}

/// A comment body: the hidden marker, a header, the sections (Markdown, already rendered) and a
/// footer saying who wrote it.
pub fn comment_body(marker: &str, title: &str, sections: &[String]) -> String {
    // An invalid marker still gets a body; upsert_comment reports the marker itself.
    let tag = marker_tag(marker).unwrap_or_else(|_| "<!-- cortado -->".to_string());
    let mut s = format!("{tag}\n### {}\n", title.replace(['\n', '\r'], " "));
    for section in sections {
        s.push('\n');
        s.push_str(section.trim_end());
        s.push('\n');
    }
    if sections.is_empty() {
        s.push_str("\nNo services.\n");
    }
    s.push_str(&format!(
        "\n<sub>Written by [cortado](https://github.com/{}) {}; updated in place on each run.</sub>\n",
        super::CORTADO_REPOSITORY,
        env!("CARGO_PKG_VERSION")
    ));
    s
}

/// Cuts `body` to GitHub's limit, closing an open code fence and saying so.
pub fn truncate_body(body: &str) -> String {
    let note = "\n\n> **Note:** this comment was cut to GitHub's 65,536-character limit; the full report is in the job log.\n";
    crate::report::escape::md_truncate(body, MAX_BODY_CHARS, note)
}

/// Creates the comment tagged with `marker` on the pull request, or edits it when it exists.
/// The tag is prepended to `body` when missing; bodies over the limit are truncated with a
/// note.
pub async fn upsert_comment(api: &GitHubApi, marker: &str, body: &str) -> Result<CommentAction> {
    let tag = marker_tag(marker)?;
    let body = if body.contains(&tag) {
        body.to_string()
    } else {
        format!("{tag}\n{body}")
    };
    let body = truncate_body(&body);
    let payload = json!({ "body": body });
    match find_comment(api, &tag).await? {
        Some(id) => {
            let url = api.repo_url(&format!("/issues/comments/{id}"));
            api.call("PATCH", &url, Some(&payload)).await?;
            Ok(CommentAction::Updated { id })
        }
        None => {
            let url = api.repo_url(&format!("/issues/{}/comments", api.number));
            let created = api.call("POST", &url, Some(&payload)).await?;
            let id = created.get("id").and_then(Value::as_u64).ok_or_else(|| {
                Error::input(
                    Diagnostic::error(format!(
                        "GitHub API: POST {url} answered without a comment id"
                    ))
                    .hint("check that GITHUB_API_URL names the REST API root"),
                )
            })?;
            Ok(CommentAction::Created { id })
        }
    }
}

/// The id of the first comment on the pull request whose body contains `tag` and whose
/// author is the token's identity (asked once, when a comment with the tag shows up).
async fn find_comment(api: &GitHubApi, tag: &str) -> Result<Option<u64>> {
    let mut me: Option<String> = None;
    for page in 1..=MAX_PAGES {
        let url = api.repo_url(&format!(
            "/issues/{}/comments?per_page={PER_PAGE}&page={page}",
            api.number
        ));
        let list = api.call("GET", &url, None).await?;
        let Some(items) = list.as_array() else {
            return Err(Error::input(
                Diagnostic::error(format!(
                    "GitHub API: listing the comments of #{} did not return a list",
                    api.number
                ))
                .hint("check that GITHUB_API_URL names the REST API root"),
            ));
        };
        let tagged: Vec<&Value> = items
            .iter()
            .filter(|c| {
                c.get("body")
                    .and_then(Value::as_str)
                    .is_some_and(|b| b.contains(tag))
            })
            .collect();
        if !tagged.is_empty() && me.is_none() {
            me = Some(api.identity().await?);
        }
        let mine = |c: &&Value| {
            let author = c.pointer("/user/login").and_then(Value::as_str);
            matches!((author, &me), (Some(a), Some(m)) if a.eq_ignore_ascii_case(m))
        };
        if let Some(id) = tagged
            .into_iter()
            .find(mine)
            .and_then(|c| c.get("id").and_then(Value::as_u64))
        {
            return Ok(Some(id));
        }
        if items.len() < PER_PAGE {
            break;
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_wraps_sections_with_marker_header_and_footer() {
        let b = comment_body(
            "diff/prod",
            "cortado diff: 2 services\nchanged",
            &["**web**: 1 change\n\n".into(), "**api**: no changes".into()],
        );
        let lines: Vec<&str> = b.lines().collect();
        assert_eq!(lines[0], "<!-- cortado:diff/prod -->");
        assert_eq!(lines[1], "### cortado diff: 2 services changed");
        assert_eq!(
            &lines[2..6],
            &["", "**web**: 1 change", "", "**api**: no changes"]
        );
        assert!(lines[7].starts_with("<sub>Written by [cortado]"), "{b}");
        assert!(b.ends_with("</sub>\n"));
        assert!(comment_body("m", "t", &[]).contains("No services."));
        // A marker that could close the HTML comment is not used as is.
        assert!(!comment_body("x -->", "t", &[]).contains("x -->"));
    }

    #[test]
    fn markers_are_plain_names() {
        assert_eq!(marker_tag("diff").unwrap(), "<!-- cortado:diff -->");
        for bad in ["", "a b", "x-->", "a\nb", &"m".repeat(101)] {
            assert!(marker_tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn long_bodies_are_cut_with_a_note_and_closed_fence() {
        let short = "x".repeat(100);
        assert_eq!(truncate_body(&short), short);
        let exact = "é".repeat(MAX_BODY_CHARS);
        assert_eq!(truncate_body(&exact), exact);
        let long = format!("head\n```diff\n{}", "+ line é\n".repeat(20_000));
        let cut = truncate_body(&long);
        assert!(
            cut.chars().count() <= MAX_BODY_CHARS,
            "{}",
            cut.chars().count()
        );
        assert!(cut.starts_with("head\n```diff\n"));
        assert!(cut.contains("\n```\n\n> **Note:** this comment was cut"));
        assert_eq!(cut.matches("```").count() % 2, 0);
    }
}
