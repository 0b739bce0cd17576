//! Server-rendered pages: consent and errors. Small enough for format! with
//! every interpolated value escaped.

use axum::http::{HeaderMap, HeaderValue, header};

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            _ => out.push(c),
        }
    }
    out
}

/// Pages must never be framed (clickjacking the approve button), cached, or
/// leak their URL (which carries the client's state) through Referer.
pub fn add_page_headers(headers: &mut HeaderMap) {
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:; frame-ancestors 'none'"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}\
h1{font-size:1.4rem}.box{border:1px solid #d0d7de;border-radius:8px;padding:1rem 1.25rem}\
.warn{background:#fff8c5;border-color:#d4a72c}button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}\
code{background:#f6f8fa;padding:0 .25rem}";

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

pub fn error_page(message: &str) -> String {
    layout(
        "Sign-in problem",
        &format!(
            "<h1>This sign-in cannot continue</h1><div class=\"box\"><p>{}</p></div>",
            escape(message)
        ),
    )
}

/// What the consent page shows.
pub struct Consent<'a> {
    /// Where the form posts: `<public URL>/consent` (the issuer may have a path).
    pub action: &'a str,
    pub request_id: &'a str,
    pub csrf_token: &'a str,
    pub client_name: &'a str,
    pub client_id: &'a str,
    pub redirect_host: &'a str,
    pub scope: &'a str,
    /// `(display name, upstream scopes)`; `None` when no provider is enabled.
    pub provider: Option<(&'a str, String)>,
    pub localhost_only: bool,
}

pub fn consent_page(c: &Consent<'_>) -> String {
    let mut body = format!(
        "<h1>Allow {name} to use your account?</h1>\
         <div class=\"box\"><p><strong>{name}</strong> <small>(client id <code>{id}</code>)</small> \
         is asking to use this MCP server on your behalf, with scope <code>{scope}</code>.</p>\
         <p>After you approve, you will be sent back to <strong>{host}</strong>.</p>",
        name = escape(c.client_name),
        id = escape(c.client_id),
        scope = escape(c.scope),
        host = escape(c.redirect_host),
    );
    if c.localhost_only {
        body.push_str(
            "<p class=\"box warn\">This application only redirects to your own computer (localhost). \
             Approve only if you just started the sign-in from an application on this device.</p>",
        );
    }
    match &c.provider {
        Some((name, scopes)) => body.push_str(&format!(
            "<p>You will sign in with <strong>{}</strong>, which will grant this server: <code>{}</code>. \
             The application never sees that token.</p></div>",
            escape(name),
            escape(scopes),
        )),
        None => body.push_str(
            "<p class=\"box warn\">No upstream sign-in provider is configured on this server, so \
             this request cannot be approved. The operator must set the provider's client id and \
             secret (see the broker's README).</p></div>",
        ),
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\">\
         <input type=\"hidden\" name=\"request_id\" value=\"{}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{}\"><p>",
        escape(c.action),
        escape(c.request_id),
        escape(c.csrf_token),
    ));
    if c.provider.is_some() {
        body.push_str(
            "<button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>",
        );
    }
    body.push_str(
        "<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></p></form>",
    );
    layout("Authorize application", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolated_values_are_escaped() {
        let page = consent_page(&Consent {
            action: "https://b.example/consent",
            request_id: "r",
            csrf_token: "t",
            client_name: "<script>alert(1)</script>",
            client_id: "c\"",
            redirect_host: "app.example",
            scope: "mcp",
            provider: Some(("GitHub", "repo".into())),
            localhost_only: false,
        });
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("value=\"approve\""));
    }

    #[test]
    fn without_a_provider_there_is_no_approve_button() {
        let page = consent_page(&Consent {
            action: "https://b.example/consent",
            request_id: "r",
            csrf_token: "t",
            client_name: "x",
            client_id: "c",
            redirect_host: "h",
            scope: "mcp",
            provider: None,
            localhost_only: true,
        });
        assert!(!page.contains("value=\"approve\""));
        assert!(page.contains("No upstream sign-in provider"));
    }
}
