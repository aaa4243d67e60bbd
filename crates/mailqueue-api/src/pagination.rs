//! Resend's cursor pagination, shared by the list endpoints: `limit` (1 to
//! 100, default 20), and `after` (older items) or `before` (newer ones),
//! each an id. Lists run newest first and the ids are UUIDv7, so a cursor
//! needs no lookup: it is compared with the other ids.

use crate::error::ApiError;
use std::collections::HashMap;
use std::str::FromStr;

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;
const PAGE_PARAMETERS: [&str; 3] = ["limit", "after", "before"];

/// One page of a list.
#[derive(Clone, Copy, Debug)]
pub struct Page<Id> {
    pub limit: u32,
    pub after: Option<Id>,
    pub before: Option<Id>,
}

impl<Id: FromStr> Page<Id> {
    /// Reads the page from the query. `filters` names the endpoint's other
    /// parameters; any parameter that is neither is refused, as is an id
    /// that is not `id_noun` ("an email id").
    pub fn parse(
        params: &HashMap<String, String>,
        filters: &[&str],
        id_noun: &str,
    ) -> Result<Self, ApiError> {
        let known: Vec<&str> = PAGE_PARAMETERS.iter().chain(filters).copied().collect();
        if let Some(unknown) = params.keys().find(|k| !known.contains(&k.as_str())) {
            let (last, rest) = known.split_last().unwrap_or((&"limit", &[]));
            return Err(ApiError::InvalidParameter(
                format!(
                    "Unknown query parameter `{unknown}`; use {} or {last}.",
                    rest.join(", ")
                ),
                "query",
            ));
        }
        let limit = match params.get("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::InvalidParameter(
                        format!("`limit` must be 1 to {MAX_LIMIT}."),
                        "limit",
                    )
                })?,
        };
        let cursor = |name: &'static str| {
            params
                .get(name)
                .map(|raw| {
                    raw.parse().map_err(|_| {
                        ApiError::InvalidParameter(format!("`{name}` must be {id_noun}."), name)
                    })
                })
                .transpose()
        };
        let page = Page {
            limit,
            after: cursor("after")?,
            before: cursor("before")?,
        };
        if page.after.is_some() && page.before.is_some() {
            return Err(ApiError::InvalidParameter(
                "Use `after` or `before`, not both.".into(),
                "before",
            ));
        }
        Ok(page)
    }

    /// How many items to read: one more than the page holds, to learn
    /// whether more exist.
    pub fn read_limit(&self) -> u32 {
        self.limit + 1
    }

    /// Cuts what was read (up to [`Self::read_limit`] items, newest first)
    /// to the page; returns whether more items lie beyond it.
    pub fn trim<T>(&self, items: &mut Vec<T>) -> bool {
        let limit = self.limit as usize;
        let has_more = items.len() > limit;
        if has_more {
            // Towards older items the extra one is the last; towards newer
            // ones (`before`) the first.
            if self.before.is_some() {
                items.drain(..items.len() - limit);
            } else {
                items.truncate(limit);
            }
        }
        has_more
    }
}
