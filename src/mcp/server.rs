//! The MCP server handler: tool declarations only. Each tool finds the
//! caller's grant (put there by the bearer check) and delegates to `tools/`.

use axum::http::request::Parts;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData as McpError, ServerHandler, tool, tool_handler, tool_router};

use super::GrantCtx;
use super::tools::accounts::{self, AccountArgs};
use super::tools::github::{self, ListReposArgs};
use crate::app::AppState;

#[derive(Clone)]
pub struct BrokerMcp {
    state: AppState,
    tool_router: ToolRouter<Self>,
}

fn grant(parts: &Parts) -> Result<GrantCtx, McpError> {
    // Unreachable through `/mcp` (the bearer check runs first); kept as an
    // error rather than a panic in case the service is ever mounted bare.
    parts
        .extensions
        .get::<GrantCtx>()
        .cloned()
        .ok_or_else(|| McpError::invalid_request("no authenticated grant on this request", None))
}

#[tool_router]
impl BrokerMcp {
    pub fn new(state: AppState) -> Self {
        BrokerMcp {
            state,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Show the GitHub account this connection acts as (GitHub's GET /user).")]
    async fn github_whoami(
        &self,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::whoami(&self.state, &grant).await)
    }

    #[tool(
        description = "List repositories the GitHub user can access, most recently updated first (GitHub's GET /user/repos)."
    )]
    async fn github_list_repos(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<ListReposArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::list_repos(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "Show the account this connection acts as at a linked provider (the provider's userinfo). `provider` defaults to the sign-in provider."
    )]
    async fn account_whoami(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<AccountArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(accounts::whoami(&self.state, &grant, &args).await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for BrokerMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("mcp-broker", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools act on the signed-in user's GitHub account through the broker.",
            )
    }
}

/// A tool failure the model can read and act on (never a JSON-RPC error).
pub fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}
