//! The JSON API's object resources and listings, turned into
//! `object_store`'s metadata.

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::ObjectMeta;
use serde::Deserialize;

/// An object resource; GCS sends 64-bit numbers as strings.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ObjectResource {
    pub name: String,
    pub size: String,
    pub updated: Option<DateTime<Utc>>,
    pub etag: Option<String>,
    pub generation: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ObjectList {
    #[serde(default)]
    pub items: Vec<ObjectResource>,
    #[serde(default)]
    pub prefixes: Vec<String>,
    pub next_page_token: Option<String>,
}

impl ObjectResource {
    pub fn into_meta(self) -> object_store::Result<ObjectMeta> {
        let size = self.size.parse().map_err(|_| {
            super::client::generic(format!(
                "object {} has a size that is not a number: {}",
                self.name, self.size
            ))
        })?;
        Ok(ObjectMeta {
            location: Path::parse(&self.name)?,
            last_modified: self.updated.unwrap_or_default(),
            size,
            e_tag: self.etag,
            version: self.generation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_page_parses_into_metadata() {
        let page: ObjectList = serde_json::from_str(
            r#"{"kind":"storage#objects","nextPageToken":"t2","prefixes":["a/"],
                "items":[{"name":"a/b.dump.zst","size":"1234","updated":"2024-01-15T03:00:00.120Z",
                          "etag":"CJ","generation":"17","bucket":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(page.next_page_token.as_deref(), Some("t2"));
        assert_eq!(page.prefixes, vec!["a/".to_string()]);
        let meta = page.items.into_iter().next().unwrap().into_meta().unwrap();
        assert_eq!(meta.location.as_ref(), "a/b.dump.zst");
        assert_eq!(meta.size, 1234);
        assert_eq!(meta.version.as_deref(), Some("17"));
        assert_eq!(meta.last_modified.timestamp(), 1705287600);
    }

    #[test]
    fn an_empty_listing_has_no_items() {
        let page: ObjectList = serde_json::from_str(r#"{"kind":"storage#objects"}"#).unwrap();
        assert!(page.items.is_empty() && page.next_page_token.is_none());
    }
}
