//! Which account a connection acts as at each linked provider: the
//! provider's own userinfo answer, read with the grant's upstream token.

use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::upstream_token;
use crate::app::AppState;
use crate::mcp::GrantCtx;
use crate::mcp::server::tool_error;
use crate::upstream::flow::fetch_identity;

pub const ACCOUNT_WHOAMI: &str = "account_whoami";

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct AccountArgs {
    /// Provider id (e.g. `github`, `gitlab`); default: the sign-in provider.
    pub provider: Option<String>,
}

pub async fn whoami(state: &AppState, grant: &GrantCtx, args: &AccountArgs) -> CallToolResult {
    let provider_id = match &args.provider {
        Some(p) => p.clone(),
        None => match state.providers.default_provider() {
            Some(p) => p.id.clone(),
            None => return tool_error("no provider is configured on this broker"),
        },
    };
    let Some(provider) = state.providers.get(&provider_id) else {
        return tool_error(format!("{provider_id} is not configured on this broker"));
    };
    // The bearer layer checked the scope from its own reading of the body;
    // check again against the arguments as rmcp parsed them.
    let call = super::Call {
        name: ACCOUNT_WHOAMI.into(),
        provider: Some(provider_id.clone()),
    };
    match super::requirement(state, &call) {
        Some((scope, _)) if state.config.scopes.satisfies(&grant.scope, &scope) => {}
        _ => return tool_error(format!("this token's scopes do not cover {provider_id}")),
    }
    let token = match upstream_token(state, grant, &provider_id).await {
        Ok(token) => token,
        Err(result) => return result,
    };
    match fetch_identity(&state.http, provider, &token.access_token).await {
        Ok(identity) => CallToolResult::success(vec![ContentBlock::text(
            json!({
                "provider": provider.id,
                "subject": identity.subject,
                "login": identity.login,
            })
            .to_string(),
        )]),
        Err(e) => tool_error(format!("{}: {e}", provider.display_name)),
    }
}
