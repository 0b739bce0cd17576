//! What a repository of the fake holds, in the shape its REST API answers:
//! for tests to compare tool results with the fake's own data (the seed
//! before a run, what the writes left after it).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{FakeGithub, pulls, repos, writes};

/// A repository as the fake would answer for it at one moment.
#[derive(Clone, Debug)]
pub struct Repository {
    /// Every issue (pull requests too), as `GET .../issues?state=all`.
    pub issues: Vec<Value>,
    /// Each issue's comments, by issue number.
    pub comments: BTreeMap<u64, Vec<Value>>,
    /// Every branch and its head commit.
    pub branches: Vec<(String, String)>,
    /// Each branch's files as (path, content), by branch.
    pub files: BTreeMap<String, Vec<(String, String)>>,
    /// Every pull request, as `GET .../pulls?state=all`.
    pub pulls: Vec<Value>,
    /// Each pull request's diff, as `application/vnd.github.diff` has it.
    pub diffs: BTreeMap<u64, String>,
}

impl Repository {
    pub fn issue(&self, number: u64) -> Option<&Value> {
        self.issues.iter().find(|i| i["number"] == number)
    }

    pub fn pull(&self, number: u64) -> Option<&Value> {
        self.pulls.iter().find(|p| p["number"] == number)
    }

    pub fn file(&self, branch: &str, path: &str) -> Option<&str> {
        self.files
            .get(branch)?
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, content)| content.as_str())
    }
}

impl FakeGithub {
    /// What `repo` holds now.
    pub fn repository(&self, repo: &str) -> Repository {
        let s = self.state.lock().unwrap();
        let issues = repos::all_issues(&s, repo);
        let pulls = pulls::all_pulls(&s, repo);
        let branches: Vec<(String, String)> = writes::branch_heads(&s, repo)
            .into_iter()
            .map(|(name, head, _)| (name, head))
            .collect();
        let number = |item: &Value| item["number"].as_u64().unwrap();
        Repository {
            comments: issues
                .iter()
                .map(|i| (number(i), repos::all_comments(&s, repo, number(i))))
                .collect(),
            files: branches
                .iter()
                .filter_map(|(name, _)| Some((name.clone(), writes::files_on(&s, repo, name)?)))
                .collect(),
            diffs: pulls
                .iter()
                .filter_map(|p| Some((number(p), pulls::diff_of(&s, repo, number(p))?)))
                .collect(),
            issues,
            branches,
            pulls,
        }
    }
}
