//! Limits on what one GraphQL request may ask, checked after parsing and before anything runs.
//!
//! Policy: depth ([`crate::MAX_DEPTH`]) and complexity ([`crate::MAX_COMPLEXITY`], where a paged
//! list counts its children `first` times) are async-graphql's own checks; this extension adds a
//! cap on aliases ([`MAX_ALIASES`]), since each alias runs its field again. Batches are not
//! accepted at all (a JSON array body is refused), so a request is one operation. The query text
//! itself is bounded by the server's body limit.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

/// The most aliased fields one request may contain (fragments counted where they are defined).
pub const MAX_ALIASES: usize = 30;

/// The alias cap as an async-graphql extension.
pub struct AliasLimit;

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimitExtension)
    }
}

struct AliasLimitExtension;

fn aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some()) + aliases(&f.node.selection_set.node)
            }
            Selection::InlineFragment(f) => aliases(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// The aliases of a whole document.
pub fn count_aliases(doc: &ExecutableDocument) -> usize {
    let operations: usize = doc
        .operations
        .iter()
        .map(|(_, op)| aliases(&op.node.selection_set.node))
        .sum();
    let fragments: usize = doc
        .fragments
        .values()
        .map(|f| aliases(&f.node.selection_set.node))
        .sum();
    operations + fragments
}

#[async_trait::async_trait]
impl Extension for AliasLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let count = count_aliases(&doc);
        if count > MAX_ALIASES {
            return Err(ServerError::new(
                format!("the query has {count} aliases; at most {MAX_ALIASES} are allowed"),
                None,
            ));
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let doc = async_graphql::parser::parse_query(
            "query { a: events { totalCount } b: events { totalCount } ...F }
             fragment F on QueryRoot { c: events { totalCount } }",
        )
        .unwrap();
        assert_eq!(count_aliases(&doc), 3);
    }
}
