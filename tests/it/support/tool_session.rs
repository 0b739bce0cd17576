//! A signed-in MCP client calling tools against the fake GitHub, for the
//! tool suites.

use serde_json::{Value, json};

use super::oauth_client::{call_tool, register, sign_in, token_with_scope};
use super::{FakeGithub, Mode, TestBroker, TestDb, start_broker};

/// The fake's account, owner of the fixture repositories.
pub const OWNER: &str = "octo-fixture";

pub struct ToolSession {
    _db: TestDb,
    pub fake: FakeGithub,
    pub broker: TestBroker,
    pub token: String,
}

impl ToolSession {
    /// A broker on SQLite and a token for `scope` (`None`: the defaults).
    pub async fn start(mode: Mode, scope: Option<&str>) -> ToolSession {
        let db = TestDb::sqlite();
        let fake = FakeGithub::start(mode).await;
        let broker = start_broker(&db, &fake).await;
        let token = match scope {
            Some(scope) => {
                let client = register(&broker.url).await;
                token_with_scope(&broker, &client, scope).await
            }
            None => sign_in(&broker.url).await.access_token,
        };
        ToolSession {
            _db: db,
            fake,
            broker,
            token,
        }
    }

    pub async fn call(&self, tool: &str, arguments: Value) -> Value {
        call_tool(&self.broker.mcp_url(), &self.token, tool, arguments).await
    }

    /// A successful call's JSON data (the first content block).
    pub async fn data(&self, tool: &str, arguments: Value) -> Value {
        let result = self.call(tool, arguments).await;
        assert_eq!(result["isError"], json!(false), "{result}");
        serde_json::from_str(text(&result, 0)).unwrap()
    }

    /// A failed call's message.
    pub async fn error(&self, tool: &str, arguments: Value) -> String {
        let result = self.call(tool, arguments).await;
        assert_eq!(result["isError"], json!(true), "{result}");
        text(&result, 0).to_string()
    }
}

/// The text of a tool result's content block.
pub fn text(result: &Value, block: usize) -> &str {
    result["content"][block]["text"].as_str().unwrap()
}
