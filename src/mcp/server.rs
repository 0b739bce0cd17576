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
use super::tools::github::issues::{CommentArgs, CreateIssueArgs, IssueArgs, ListByStateArgs};
use super::tools::github::pulls::OpenPullArgs;
use super::tools::github::repos::{
    CreateBranchArgs, ListBranchesArgs, PutFileArgs, ReadFileArgs, RepoArgs,
};
use super::tools::github::search::SearchArgs;
use super::tools::github::{self, ListReposArgs};
use super::tools::{Call, requirement};
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

    #[tool(
        description = "Show the GitHub account this connection acts as (GitHub's GET /user).",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn github_whoami(
        &self,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::whoami(&self.state, &grant).await)
    }

    #[tool(
        description = "List repositories the GitHub user can access, most recently updated first (GitHub's GET /user/repos).",
        annotations(read_only_hint = true, open_world_hint = true)
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
        description = "Get one GitHub repository: description, visibility, default branch, counts (GitHub's GET /repos/{owner}/{repo}).",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn github_get_repo(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<RepoArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::repos::get_repo(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "Read a text file from a GitHub repository at a branch, tag or commit (`ref`, default: the default branch), decoded; files over 1 MiB and directories are refused with a message (GitHub's contents API).",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn github_read_file(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<ReadFileArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::repos::read_file(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "List a GitHub repository's branches with their head commit SHA, page by page.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn github_list_branches(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<ListBranchesArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::repos::list_branches(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "List a GitHub repository's issues (pull requests are included and marked `is_pull_request`), by state, page by page.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn github_list_issues(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<ListByStateArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::issues::list_issues(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "Get one GitHub issue (or pull request) by number, with its body and its first 100 comments.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn github_get_issue(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<IssueArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::issues::get_issue(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "List a GitHub repository's pull requests by state, page by page.",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn github_list_pull_requests(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<ListByStateArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::pulls::list_pull_requests(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "Get a GitHub pull request's unified diff (up to 1 MiB).",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn github_get_pull_request_diff(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<IssueArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::pulls::get_pull_request_diff(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "Search GitHub issues and pull requests with GitHub's search syntax (e.g. `bug repo:owner/name is:open`).",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn github_search_issues(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<SearchArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::search::search_issues(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "Search code on GitHub with GitHub's code search syntax (e.g. `parse_config repo:owner/name language:rust`).",
        annotations(read_only_hint = true, open_world_hint = true)
    )]
    async fn github_search_code(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<SearchArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::search::search_code(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "Open an issue in a GitHub repository with a title, and optionally a body and labels (GitHub's POST /repos/{owner}/{repo}/issues).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn github_create_issue(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<CreateIssueArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::issues::create_issue(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "Comment on a GitHub issue or pull request (GitHub's POST /repos/{owner}/{repo}/issues/{number}/comments).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn github_comment(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<CommentArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::issues::comment(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "Create a branch in a GitHub repository at the head of `from` (default: the default branch); an existing branch is refused (GitHub's POST /repos/{owner}/{repo}/git/refs).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn github_create_branch(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<CreateBranchArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::repos::create_branch(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "Create a text file in a GitHub repository, or update it when `sha` (its current blob SHA) is given, as one commit on `branch` (default: the default branch); a stale `sha` is refused (GitHub's PUT /repos/{owner}/{repo}/contents/{path}).",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn github_put_file(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<PutFileArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::repos::put_file(&self.state, &grant, &args).await)
    }

    #[tool(
        description = "Open a pull request from `head` into `base` in a GitHub repository (GitHub's POST /repos/{owner}/{repo}/pulls).",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn github_open_pull_request(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<OpenPullArgs>,
    ) -> Result<CallToolResult, McpError> {
        let grant = grant(&parts)?;
        Ok(github::pulls::open_pull_request(&self.state, &grant, &args).await)
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
    /// Only the tools this token's scopes allow: a model should not be
    /// offered calls that would only meet a 403.
    async fn list_tools(
        &self,
        _request: Option<rmcp::model::PaginatedRequestParams>,
        context: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<rmcp::model::ListToolsResult, McpError> {
        let granted = context
            .extensions
            .get::<Parts>()
            .and_then(|parts| parts.extensions.get::<GrantCtx>())
            .map(|grant| grant.scope.clone())
            .unwrap_or_default();
        let tools = self
            .tool_router
            .list_all()
            .into_iter()
            .filter(|tool| {
                let call = Call {
                    name: tool.name.to_string(),
                    provider: None,
                };
                requirement(&self.state, &call)
                    .is_some_and(|(scope, _)| self.state.config.scopes.satisfies(&granted, &scope))
            })
            .collect();
        // The list depends on who asks: never cached for anyone else.
        let hints = context
            .protocol_version()
            .is_some_and(|v| v >= rmcp::model::ProtocolVersion::V_2026_07_28);
        Ok(rmcp::model::ListToolsResult {
            result_type: Some(rmcp::model::ResultType::COMPLETE),
            tools,
            meta: None,
            next_cursor: None,
            ttl_ms: hints.then_some(0),
            cache_scope: hints.then_some(rmcp::model::CacheScope::Private),
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::tools::TOOLS;

    /// The bearer layer checks scopes from `TOOLS`: a served tool without a
    /// row would run unchecked, a row without a tool is stale.
    #[test]
    fn every_served_tool_has_a_scope_row_and_every_row_a_tool() {
        let mut served: Vec<String> = BrokerMcp::tool_router()
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .filter(|name| name != accounts::ACCOUNT_WHOAMI)
            .collect();
        served.sort();
        let mut table: Vec<String> = TOOLS.iter().map(|t| t.0.to_string()).collect();
        table.sort();
        assert_eq!(served, table);
    }
}
