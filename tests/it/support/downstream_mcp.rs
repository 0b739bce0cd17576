//! A second MCP server, as a gateway route's downstream (think GitHub's own
//! remote MCP server): it checks every request's bearer token against the
//! fake GitHub's `/user`, as a real one would, answers 401 with its own
//! challenge otherwise, and its one tool tells who GitHub says is calling.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, ServerHandler, tool, tool_handler, tool_router};

pub struct DownstreamMcp {
    pub url: String,
    seen: Arc<Mutex<Vec<String>>>,
    request_ids: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone)]
struct Checker {
    github: String,
    http: reqwest::Client,
    seen: Arc<Mutex<Vec<String>>>,
    request_ids: Arc<Mutex<Vec<String>>>,
}

impl DownstreamMcp {
    /// Serves `/mcp` on 127.0.0.1, trusting tokens the GitHub at `github`
    /// accepts.
    pub async fn start(github: &str) -> DownstreamMcp {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let request_ids = Arc::new(Mutex::new(Vec::new()));
        let checker = Checker {
            github: github.to_string(),
            http: reqwest::Client::builder()
                .user_agent("downstream-mcp-test")
                .build()
                .unwrap(),
            seen: seen.clone(),
            request_ids: request_ids.clone(),
        };
        let tool_checker = checker.clone();
        let service = StreamableHttpService::new(
            move || Ok(Downstream::new(tool_checker.clone())),
            Arc::new(LocalSessionManager::default()),
            StreamableHttpServerConfig::default(),
        );
        let app = axum::Router::new()
            .route_service("/mcp", service)
            .layer(axum::middleware::from_fn_with_state(checker, check_bearer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        DownstreamMcp {
            url,
            seen,
            request_ids,
        }
    }

    /// The `Authorization` header of every request received, in order.
    pub fn authorizations_seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// The `X-Request-Id` of every request received, in order (empty when
    /// a request carried none).
    pub fn request_ids_seen(&self) -> Vec<String> {
        self.request_ids.lock().unwrap().clone()
    }
}

fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

impl Checker {
    /// GitHub's `GET /user` with the token: the login, if GitHub accepts it.
    async fn login(&self, token: &str) -> Option<String> {
        let response = self
            .http
            .get(format!("{}/user", self.github))
            .bearer_auth(token)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let user: serde_json::Value = response.json().await.ok()?;
        user["login"].as_str().map(str::to_string)
    }
}

async fn check_bearer(State(checker): State<Checker>, request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    checker.seen.lock().unwrap().push(header);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    checker.request_ids.lock().unwrap().push(request_id);
    let live = match bearer(request.headers()) {
        Some(token) => checker.login(&token).await.is_some(),
        None => false,
    };
    if !live {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            [(
                "www-authenticate",
                "Bearer resource_metadata=\"http://downstream.invalid/.well-known/oauth-protected-resource\"",
            )],
            "bad token",
        )
            .into_response();
    }
    next.run(request).await
}

#[derive(Clone)]
struct Downstream {
    checker: Checker,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Downstream {
    fn new(checker: Checker) -> Self {
        Downstream {
            checker,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Who GitHub says the caller's token belongs to.")]
    async fn downstream_whoami(
        &self,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, McpError> {
        let token = bearer(&parts.headers).unwrap_or_default();
        let login = self.checker.login(&token).await.unwrap_or_default();
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "downstream acts as {login}"
        ))]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Downstream {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}
