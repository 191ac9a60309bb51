//! The GraphQL contract as reviewed: any change to a type, field, argument or enum shows up as a
//! changed snapshot (`query-api/tests/snapshots/`) in review. Accept an intended change with
//! `INSTA_UPDATE=always cargo test -p query-api --test contract`.

#[test]
fn graphql_schema_contract() {
    insta::assert_snapshot!("schema", query_api::sdl());
}
